#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu, with this zip unpacked in
# /autograder/source): the grading sandbox (bubblewrap), graphviz, a Python the kit supports, and the kit's pinned
# packages in /autograder/source/.venv, as `make setup` installs them.
set -euo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

apt-get update
apt-get install -y --no-install-recommends bubblewrap graphviz

# The newest Python the kit supports (the Makefile's SUPPORTED_PYTHONS). Ubuntu 22.04 has only 3.10, so there
# Python 3.13 comes from the deadsnakes PPA; Ubuntu 24.04 has 3.12.
python=""
for version in 3.13 3.12 3.11; do
    if command -v "python$version" >/dev/null; then python="python$version"; break; fi
done
if [ -z "$python" ]; then
    apt-get install -y --no-install-recommends software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    python=python3.13
    apt-get install -y --no-install-recommends "$python"
fi
# Debian and Ubuntu package venv's pip installer apart from Python.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get install -y --no-install-recommends "$python-venv"
fi

"$python" -m venv --clear "$kit/.venv"
"$kit/.venv/bin/python" -m pip install --quiet --upgrade pip
"$kit/.venv/bin/python" -m pip install --quiet -r "$kit/requirements-dev.txt"
echo "Set up $("$kit/.venv/bin/python" --version) in $kit/.venv with the kit's pinned packages."
