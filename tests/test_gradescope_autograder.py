"""The kit as a Gradescope autograder: the zip (autograder/build_bundle.py) and run_autograder on a submission.

The zip's contents are checked in a second. Then the zip is unpacked into a temporary folder laid out like
Gradescope's /autograder (source/, submission/, results/; RESNETS_AUTOGRADER_DIR points run_autograder at
it), with the kit's .venv standing in for the one setup.sh installs, and run_autograder grades the reference
and the untouched release there (about a minute each). setup.sh runs with stand-ins for apt-get and Python
that record what it would install (installing TensorFlow is not a test); shellcheck reads both scripts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import build_bundle, grade_submission
from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import needs_bwrap
from tools.grading.grade import BWRAP_VARIABLE, UNSANDBOXED, Row
from tools.grading.grade_outputs import gradescope_results
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course, graded_notebooks

PICTURES_AND_DATA = {".jpg", ".jpeg", ".png", ".gif", ".h5", ".npz", ".npy", ".keras", ".zip"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_bundle.build(tmp_path_factory.mktemp("bundle") / "gradescope-autograder.zip")


def names(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as archive:
        return archive.namelist()


def test_the_bundle_has_setup_and_run_autograder_at_its_root_and_executable(bundle):
    with zipfile.ZipFile(bundle) as archive:
        for script in ("setup.sh", "run_autograder"):
            mode = archive.getinfo(script).external_attr >> 16
            assert mode & stat.S_IXUSR, f"{script} is not executable in the zip"


def test_the_bundle_holds_only_the_graded_source_notebooks_and_no_data_model_or_picture(bundle):
    listed = names(bundle)
    assert sorted(name for name in listed if name.startswith("notebooks/")) == sorted(
        f"notebooks/{folder}{notebook}.ipynb" for folder in ("", "zh/") for notebook in graded_notebooks())
    assert "locale/zh_CN/LC_MESSAGES/resnets_kit.mo" in listed, "Chinese submissions would get English reasons"
    assert "locale/zh_CN/figure-font.ttf" in listed, "use_language('zh_CN') refuses to run without its figure font"
    assert not [name for name in listed if Path(name).suffix.lower() in PICTURES_AND_DATA]
    assert not {name.split("/")[0] for name in listed} & {"datasets", "models", "images", "build", "release", "grades"}


def test_the_bundle_refuses_grade_options_the_grader_would_refuse(tmp_path):
    for options, problem in [("--no-sandbx", "unrecognized arguments: --no-sandbx"), ("--timeout soon", "--timeout"),
                             ("--out /tmp/elsewhere", "leave out --out")]:
        with pytest.raises(build_bundle.BadGradeOptions, match=re.escape(problem)):
            build_bundle.build(tmp_path / "bundle.zip", options)
    assert not (tmp_path / "bundle.zip").exists()


def test_the_bundle_carries_the_grade_options_it_was_built_with(tmp_path):
    with zipfile.ZipFile(build_bundle.build(tmp_path / "bundle.zip", "--no-sandbox --timeout 90")) as archive:
        assert archive.read(build_bundle.GRADE_OPTIONS).decode().split() == ["--no-sandbox", "--timeout", "90"]


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed (apt-get install shellcheck)")
def test_setup_and_run_autograder_pass_shellcheck():
    scripts = [KIT_DIR / "autograder" / name for name in build_bundle.AT_ROOT]
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_setup_installs_a_python_the_makefile_supports():
    supported = re.search(r"^SUPPORTED_PYTHONS := (.+)$", (KIT_DIR / "Makefile").read_text(), re.M)[1].split()
    tried = re.search(r"^for version in (.+); do$", (KIT_DIR / "autograder" / "setup.sh").read_text(), re.M)[1].split()
    assert tried == supported


STAND_IN = """#!/bin/bash
# A stand-in that records its command line; as Python it makes a venv of stand-ins, as apt-get it installs Pythons.
echo "${0##*/} $*" >> "$LOG"
case "${0##*/} $1" in
    "apt-get install") for package in "$@"; do
                           case "$package" in python3.1?) cp "$0" "$STAND_INS/$package";; esac
                       done;;
    python*" -c") exit "$NO_ENSUREPIP";;
    python*" -m") [ "$2" = venv ] && mkdir -p "$4/bin" && cp "$0" "$4/bin/python";;
esac
exit 0
"""


def run_setup(tmp_path: Path, pythons: list[str], ensurepip: bool) -> list[str]:
    """setup.sh's commands, on an Ubuntu stand-in with these `pythons` on PATH: apt-get, add-apt-repository and
    each Python record their command line instead of installing anything."""
    kit, stand_ins, tools = tmp_path / "source", tmp_path / "stand-ins", tmp_path / "tools"
    for folder in (kit, stand_ins, tools):
        folder.mkdir()
    shutil.copy2(KIT_DIR / "autograder" / "setup.sh", kit / "setup.sh")
    for name in ("apt-get", "add-apt-repository", *pythons):
        (stand_ins / name).write_text(STAND_IN)
        (stand_ins / name).chmod(0o755)
    for tool in ("bash", "dirname", "mkdir", "cp"):  # what setup.sh and the stand-ins use, and no Python
        (tools / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "commands.log"
    result = subprocess.run(["bash", str(kit / "setup.sh")], capture_output=True, text=True, env={
        "PATH": f"{stand_ins}:{tools}", "LOG": str(log), "STAND_INS": str(stand_ins), "NO_ENSUREPIP": str(int(not ensurepip))})
    assert result.returncode == 0, result.stderr
    return [line.replace(str(kit), "KIT") for line in log.read_text().splitlines()]


def test_setup_on_ubuntu_22_04_installs_python_3_13_from_deadsnakes_then_the_pinned_packages(tmp_path):
    assert run_setup(tmp_path, pythons=[], ensurepip=False) == [
        "apt-get update",
        "apt-get install -y --no-install-recommends bubblewrap graphviz",
        "apt-get install -y --no-install-recommends software-properties-common",
        "add-apt-repository -y ppa:deadsnakes/ppa",
        "apt-get update",
        "apt-get install -y --no-install-recommends python3.13",
        "python3.13 -c import ensurepip, venv",
        "apt-get install -y --no-install-recommends python3.13-venv",
        "python3.13 -m venv --clear KIT/.venv",
        "python -m pip install --quiet --upgrade pip",
        "python -m pip install --quiet -r KIT/requirements-dev.txt",
        "python --version",
    ]


def test_setup_uses_the_newest_supported_python_there_is(tmp_path):
    commands = run_setup(tmp_path, pythons=["python3.11", "python3.12"], ensurepip=True)
    assert "python3.12 -m venv --clear KIT/.venv" in commands
    assert not [command for command in commands if "deadsnakes" in command or "-venv" in command]


def test_notebooks_are_found_in_folders_of_the_submission_the_top_one_first(tmp_path):
    for path in ("02_residual_blocks.ipynb", "resnets/02_residual_blocks.ipynb", "resnets/03_resnet50.ipynb",
                 "resnets/.ipynb_checkpoints/03_resnet50-checkpoint.ipynb", "notes.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    assert grade_submission.submitted_notebooks(tmp_path) == {
        "02_residual_blocks.ipynb": tmp_path / "02_residual_blocks.ipynb",
        "03_resnet50.ipynb": tmp_path / "resnets" / "03_resnet50.ipynb",
    }


def test_results_json_leaves_out_the_no_sandbox_note_that_grades_csv_keeps():
    rows = [Row("s", "02_residual_blocks", "identity_block_hidden", 0.0, 3.0, "failed", f"AssertionError: wrong; {UNSANDBOXED}"),
            Row("s", "02_residual_blocks", "convolutional_block_hidden", 3.0, 3.0, "passed", UNSANDBOXED)]
    assert [test["output"] for test in gradescope_results(rows)["tests"]] == ["AssertionError: wrong", ""]


# --- run_autograder, as Gradescope runs it --------------------------------------------------------


def gradescope_layout(bundle: Path, folder: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """`folder` laid out like /autograder after Gradescope built the image and downloaded a submission."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder / "source")
        for info in archive.infolist():  # extractall drops the modes Gradescope keeps
            (folder / "source" / info.filename).chmod(info.external_attr >> 16 & 0o777)
    (folder / "source" / ".venv").symlink_to(KIT_DIR / ".venv")  # what setup.sh would install
    shutil.copy2(folder / "source" / "run_autograder", folder / "run_autograder")  # as Gradescope does
    (folder / "submission").mkdir()
    (folder / "results").mkdir()
    for name, notebook in notebooks.items():
        nbformat.write(notebook, folder / "submission" / f"{name}.ipynb")
    return folder


def run_autograder(folder: Path, **environment: str) -> tuple[dict, subprocess.CompletedProcess]:
    result = subprocess.run([str(folder / "run_autograder")], cwd=folder, capture_output=True, text=True,
                            env={**os.environ, "RESNETS_AUTOGRADER_DIR": str(folder), **environment})
    return json.loads((folder / "results" / "results.json").read_text()), result


@pytest.fixture(scope="module")
def graded(bundle, tmp_path_factory) -> dict[str, tuple[dict, subprocess.CompletedProcess]]:
    """results.json and the run of run_autograder for the reference and for the untouched release, in English and
    in Chinese."""
    work = tmp_path_factory.mktemp("gradescope")
    release, release_zh = build_course(work / "course"), build_course(work / "course-zh", "zh")
    submissions = {
        "reference": {name: fill_in(release / f"{name}.ipynb", reference_solutions()) for name in graded_notebooks()},
        "release": {name: nbformat.read(release / f"{name}.ipynb", as_version=4) for name in graded_notebooks()},
        "release_zh": {name: nbformat.read(release_zh / f"{name}.ipynb", as_version=4) for name in graded_notebooks()},
    }
    return {student: run_autograder(gradescope_layout(bundle, work / student, notebooks))
            for student, notebooks in submissions.items()}


def check_results_format(results: dict) -> None:
    """What Gradescope reads: a score, and tests each with a name, score, max_score, status and output."""
    assert isinstance(results["score"], float) and results["tests"]
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output"}, test
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"] and test["status"] in ("passed", "failed")
    assert results["score"] == sum(test["score"] for test in results["tests"])


@pytest.mark.slow
@needs_bwrap
def test_the_reference_scores_full_marks_in_the_sandbox(graded):
    results, run = graded["reference"]
    assert run.returncode == 0, run.stdout + run.stderr
    check_results_format(results)
    assert results["score"] == sum(test["max_score"] for test in results["tests"]) == 10
    assert {test["status"] for test in results["tests"]} == {"passed"}
    assert "bubblewrap sandbox" in run.stdout and "--no-sandbox" not in run.stdout


@pytest.mark.slow
@needs_bwrap
@pytest.mark.parametrize("submission, not_done", [("release", "not done yet"), ("release_zh", "这道练习还没有完成")],
                         ids=["english", "chinese"])
def test_an_untouched_release_of_either_edition_scores_zero_on_the_same_tests_told_why_in_its_language(graded, submission, not_done):
    results, run = graded[submission]
    assert run.returncode == 0, run.stdout + run.stderr
    check_results_format(results)
    assert results["score"] == 0
    assert [(test["name"], test["max_score"]) for test in results["tests"]] == [
        (test["name"], test["max_score"]) for test in graded["reference"][0]["tests"]]
    assert {test["status"] for test in results["tests"]} == {"failed"}
    assert any(not_done in test["output"] for test in results["tests"])


def hidden_test_lines() -> set[str]:
    """The longer code lines of the hidden test cells of the source notebooks: what a student must never read."""
    lines = set()
    for name in graded_notebooks():
        for cell in nbformat.read(KIT_DIR / "notebooks" / f"{name}.ipynb", as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_hidden"):
                lines |= {line.strip() for line in cell.source.splitlines() if len(line.strip()) >= 25}
    return lines


@pytest.mark.slow
@needs_bwrap
def test_results_json_holds_no_hidden_test_code(graded):
    secret = hidden_test_lines()
    assert len(secret) > 10
    for student, (results, _) in graded.items():
        shown = "\n".join([results["output"], *(test["name"] + "\n" + test["output"] for test in results["tests"])])
        leaked = [line for line in secret if line in shown]
        assert not leaked, f"{student}'s results.json shows hidden test code: {leaked}"


def test_a_grader_that_cannot_sandbox_leaves_zero_for_the_student_and_says_why_to_the_instructor(bundle, tmp_path):
    folder = gradescope_layout(bundle, tmp_path / "autograder", {})
    results, run = run_autograder(folder, **{BWRAP_VARIABLE: str(tmp_path / "no-bwrap-here")})
    assert run.returncode == 2
    assert results == {"score": 0.0, "output": grade_submission.NOT_GRADED}
    assert "cannot be sandboxed" in run.stdout and "GRADE_OPTIONS=--no-sandbox" in run.stdout
