# The kit and its pinned environment, for grading on a cluster (deploy/README.md): the Kubernetes Indexed Job
# of deploy/kubernetes-grade.yaml runs this image; a Slurm cluster can run it with Apptainer.
#
#   docker build -t registry.example.edu/course/resnets-kit:2026-1 .
#
# Everything is installed at build time, so grading needs no network (and student code gets none). The kit is
# in /opt/resnets-kit, its environment in /opt/resnets-kit/.venv, as `make` lays them out; the user is 1000.
# Grading in it: python -m tools.grading.grade /submissions --out /grades (bubblewrap inside a container needs user
# namespaces, an unmasked /proc and no seccomp or AppArmor filter on mount and unshare; deploy/README.md).

# The newest Python the Makefile supports (SUPPORTED_PYTHONS); Debian 12 has the bubblewrap and graphviz packages.
FROM python:3.13-slim-bookworm

# bubblewrap: the grading sandbox (tools/grading/sandbox_kernel.py); graphviz: the model diagrams of notebook 3.
# Not pinned: Debian 12's security updates replace the versions a pin would name (hadolint's DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap graphviz \
    && rm -rf /var/lib/apt/lists/*

# A numeric non-root user, so that Kubernetes' runAsNonRoot can check it (deploy/kubernetes-grade.yaml runs as 1000).
RUN groupadd --gid 1000 grader && useradd --uid 1000 --gid 1000 --create-home grader \
    && mkdir /opt/resnets-kit && chown grader:grader /opt/resnets-kit
USER 1000:1000
WORKDIR /opt/resnets-kit
ENV PATH=/opt/resnets-kit/.venv/bin:$PATH PYTHONUNBUFFERED=1

# The Makefile's set-up, step for step (tests/test_deploy.py compares the two): the pinned packages first, in
# their own layer, so that changing a notebook does not reinstall TensorFlow; then the kit and its kernel.
COPY --chown=1000:1000 requirements.txt requirements-dev.txt ./
RUN python -m venv .venv \
    && .venv/bin/python -m pip install --no-cache-dir --quiet --upgrade pip \
    && .venv/bin/python -m pip install --no-cache-dir --quiet -r requirements-dev.txt
COPY --chown=1000:1000 . .
RUN .venv/bin/python -m pip install --no-cache-dir --quiet --no-deps -e . \
    && .venv/bin/python -m tools.course.install_kernel

CMD ["python", "-m", "tools.grading.grade", "--help"]
