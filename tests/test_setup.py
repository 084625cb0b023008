"""The kit installs from its own files, and its pins agree everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
REMOVED_APIS = [
    r"tf\.Session\b",
    r"tf\.placeholder\b",
    r"\blearning_phase\b",
    r"scipy\.misc\.imread",
    r"keras\.preprocessing\.image",
    r"tf\.compat\.v1",
]


def pins(lines: list[str]) -> dict[str, str]:
    return dict(re.findall(r"^\s*-?\s*([A-Za-z0-9_.-]+)==([^\s#]+)", "\n".join(lines), flags=re.M))


def test_environment_yml_pins_the_same_versions_as_requirements():
    pip_pins = pins((KIT / "requirements.txt").read_text().splitlines())
    pip_pins |= pins((KIT / "requirements-dev.txt").read_text().splitlines())
    conda_pins = pins((KIT / "environment.yml").read_text().splitlines())
    assert conda_pins == pip_pins
    assert "- -e ." in (KIT / "environment.yml").read_text(), "environment.yml must install the kit itself"


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (KIT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert "==" in line, f"{name}: '{line}' is not pinned"


def test_resnets_utils_imports_from_any_directory(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import resnets_utils; print(resnets_utils.datasets_dir())"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == KIT / "datasets"


def test_importing_resnets_utils_loads_neither_tensorflow_nor_matplotlib():
    code = "import sys, resnets_utils; print(sorted(m for m in ('tensorflow', 'matplotlib') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_no_tf1_era_or_removed_apis_in_the_kit():
    sources = [p for p in KIT.rglob("*") if p.suffix in {".py", ".ipynb"} and p.parent.name != "tests"
               and not any(part.startswith((".", "build", "release")) for part in p.relative_to(KIT).parts)]
    for path in sources:
        text = path.read_text(errors="replace")
        for pattern in REMOVED_APIS:
            assert not re.search(pattern, text), f"{path.relative_to(KIT)} uses a removed API: {pattern}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (KIT / ".ci" / "run").read_text()
    readme = (KIT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme


def test_makefile_conda_and_pyproject_agree_on_the_supported_pythons():
    supported = re.search(r"^SUPPORTED_PYTHONS := (.*)$", (KIT / "Makefile").read_text(), flags=re.M).group(1).split()
    low, high = re.search(r'requires-python = ">=(3\.\d+),<(3\.\d+)"', (KIT / "pyproject.toml").read_text()).groups()
    minors = range(int(low.split(".")[1]), int(high.split(".")[1]))
    assert sorted(supported) == sorted(f"3.{minor}" for minor in minors)
    assert f"- python={supported[0]}" in (KIT / "environment.yml").read_text(), "conda gets the newest supported Python"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported, "the tests run on a supported Python"


ONE_CONVOLUTION = "import tensorflow as tf; tf.nn.conv2d(tf.ones((1, 8, 8, 4)), tf.ones((3, 3, 4, 4)), 1, 'SAME')"


def convolutions_run_by_onednn(environment: dict[str, str]) -> int:
    """How many convolutions oneDNN ran when this environment's Python computed one with TensorFlow."""
    run = subprocess.run([sys.executable, "-c", ONE_CONVOLUTION], env=environment | {"ONEDNN_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return sum(",exec,cpu,convolution," in line for line in run.stdout.splitlines())


def test_tensorflow_uses_onednn_by_default_in_the_kits_environment_on_any_cpu():
    """TensorFlow leaves oneDNN off by default on CPUs without AVX-512 (training about three times slower there); the
    environment's start-up file turns it on, and an explicit TF_ENABLE_ONEDNN_OPTS=0 still turns it off."""
    import os

    environment = {name: value for name, value in os.environ.items() if name != "TF_ENABLE_ONEDNN_OPTS"}
    assert convolutions_run_by_onednn(environment) == 1, "run `python -m tools.course.install_kernel` (make setup does)"
    assert convolutions_run_by_onednn(environment | {"TF_ENABLE_ONEDNN_OPTS": "0"}) == 0
