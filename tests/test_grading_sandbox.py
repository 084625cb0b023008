"""`make grade` never grades unprotected by accident, and its sandbox checks itself.

Without a working bubblewrap, grading stops with exit code 2 and says how to proceed; with
--no-sandbox it grades and every row says so. A kernel launcher whose view shows something it
should hide refuses to start, and the notebook is "not graded" for a grader problem. (That
the sandbox holds wherever the kit lives: tests/test_grading_layouts.py.)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tools.grading import grade
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course
from tools.grading.sandbox_kernel import SANDBOX_FAILED

BLOCKS = "02_residual_blocks"
# Without bubblewrap, grading refuses to run, so the tests that grade skip, saying why; CI, which installs it,
# sets RESNETS_REQUIRE_SANDBOX=1 so that they run (and fail) rather than skip if it is ever missing.
needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap") and os.environ.get("RESNETS_REQUIRE_SANDBOX") != "1",
                                 reason="bubblewrap is not installed, so nothing can be graded in its sandbox (apt-get install bubblewrap)")


def grade_command(submissions: Path, out: Path, *options: str, bwrap: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.grading.grade", str(submissions), "--out", str(out), *options],
                          cwd=KIT_DIR, env={**os.environ, grade.BWRAP_VARIABLE: bwrap}, capture_output=True, text=True)


def hand_in_the_reference(tmp_path: Path) -> Path:
    """A class of one student who hands in the reference notebook 2."""
    release = build_course(tmp_path / "course")
    (tmp_path / "submissions" / "reference").mkdir(parents=True)
    notebook = fill_in(release / f"{BLOCKS}.ipynb", reference_solutions())
    nbformat.write(notebook, tmp_path / "submissions" / "reference" / f"{BLOCKS}.ipynb")
    return tmp_path / "submissions"


def reference_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv") as file:
        return {row["grade_id"]: row for row in csv.DictReader(file) if row["student_id"] == "reference"}


# --- No sandbox, no grading (unless asked) -------------------------------------------------------


@pytest.fixture
def one_student(tmp_path) -> Path:
    (tmp_path / "submissions" / "alice").mkdir(parents=True)
    return tmp_path / "submissions"


def test_grading_refuses_without_bubblewrap_and_says_how_to_proceed(one_student, tmp_path):
    result = grade_command(one_student, tmp_path / "grades", bwrap=str(tmp_path / "no" / "bwrap"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot be sandboxed" in result.stderr and "apt-get install bubblewrap" in result.stderr
    assert "--no-sandbox" in result.stderr
    assert not (tmp_path / "grades").exists()


def test_grading_refuses_where_bubblewrap_cannot_build_a_sandbox(one_student, tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    result = grade_command(one_student, tmp_path / "grades", bwrap=str(broken))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No permissions to create new namespace" in result.stderr and "--no-sandbox" in result.stderr


@pytest.mark.slow
def test_no_sandbox_grades_without_bubblewrap_and_every_row_says_so(tmp_path):
    submissions = hand_in_the_reference(tmp_path)
    result = grade_command(submissions, tmp_path / "grades", "--no-sandbox", bwrap=str(tmp_path / "no" / "bwrap"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = reference_rows(tmp_path / "grades")
    assert all(row["reason"].endswith(grade.UNSANDBOXED) for row in rows.values())
    assert float(rows["identity_block_hidden"]["score"]) == float(rows["convolutional_block_hidden"]["score"]) == 3


# --- The sandbox checks itself ------------------------------------------------------------------


def launcher_that_also_shows(path: Path, folder: Path) -> Path:
    """A kernel launcher with one mistake: its view also shows `path`. Where the worker has a kernel zygote, it builds
    its own view of the zygote's slot rather than ask the zygote (whose check tests/test_grading_zygote.py tests)."""
    launcher = folder / "faulty_sandbox_kernel.py"
    launcher.write_text(f"""import json, os, sys
sys.path.insert(0, {str(KIT_DIR)!r})
from tools.grading import sandbox_kernel
view_arguments = sandbox_kernel.view_arguments
sandbox_kernel.view_arguments = lambda *args: view_arguments(*args) + ["--ro-bind", {str(path)!r}, {str(path)!r}]
zygote = os.environ.pop(sandbox_kernel.ZYGOTE_VARIABLE, None)
if zygote:
    settings = json.load(open(sys.argv[1]))
    settings["sandbox"] = os.path.join(os.path.dirname(zygote), "slot")
    sandbox_kernel.start_in_view(settings, sys.argv[2:])
sandbox_kernel.main()
""")
    return launcher


@pytest.fixture
def launcher_settings(tmp_path) -> dict:
    """Settings of a sandbox that hides `tmp_path/secret` (holding an answers file) and shows `tmp_path/sandbox`."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "answers.txt").write_text("42")
    (tmp_path / "sandbox").mkdir()
    return {"isolated": True, "bwrap": shutil.which("bwrap"), "hide": [str(tmp_path / "secret")],
            "sandbox": str(tmp_path / "sandbox"), "memory_bytes": 2**32, "timeout": 60}


def start_launcher(launcher: Path, settings: dict, folder: Path, *worker_prefix: str) -> subprocess.CompletedProcess:
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "connection.json").write_text("{}")
    command = [*worker_prefix, sys.executable, str(launcher), str(folder / "settings.json"), "-f", str(folder / "connection.json")]
    return subprocess.run(command, cwd=settings["sandbox"], capture_output=True, text=True, timeout=60)


@needs_bwrap
def test_a_kernel_launcher_whose_view_shows_a_hidden_file_refuses_to_start(launcher_settings, tmp_path):
    worker = [shutil.which("bwrap"), *grade.WORKER_NAMESPACE, "--"]
    result = start_launcher(launcher_that_also_shows(tmp_path / "secret", tmp_path), launcher_settings, tmp_path, *worker)
    assert result.returncode != 0
    assert SANDBOX_FAILED in result.stderr and str(tmp_path / "secret" / "answers.txt") in result.stderr
    assert "IPKernelApp" not in result.stderr


@needs_bwrap
@pytest.mark.skipif([name for _, name in socket.if_nameindex()] == ["lo"], reason="this machine has no network to hide")
def test_a_kernel_launcher_outside_a_worker_without_network_refuses_to_start(launcher_settings, tmp_path):
    result = start_launcher(KIT_DIR / "tools" / "grading" / "sandbox_kernel.py", launcher_settings, tmp_path)
    assert result.returncode != 0
    assert SANDBOX_FAILED in result.stderr and "would have a network" in result.stderr
    assert "answers.txt" not in result.stderr


@pytest.mark.slow
@needs_bwrap
def test_a_sandbox_that_shows_the_source_notebooks_grades_nothing_and_names_the_grader(tmp_path, monkeypatch, capsys):
    submissions = hand_in_the_reference(tmp_path)
    monkeypatch.setattr(grade, "SANDBOX_KERNEL", launcher_that_also_shows(KIT_DIR / "notebooks", tmp_path))
    monkeypatch.setattr(sys, "argv", ["grade", str(submissions), "--out", str(tmp_path / "grades")])
    grade.main()
    rows = reference_rows(tmp_path / "grades")
    for grade_id in ("identity_block_hidden", "convolutional_block_hidden"):
        assert rows[grade_id]["status"] == "not graded" and float(rows[grade_id]["score"]) == 0
        assert rows[grade_id]["reason"].startswith("GRADER PROBLEM: the sandbox could not be set up")
        assert str(KIT_DIR / "notebooks") in rows[grade_id]["reason"]
    assert "the grader itself failed for reference" in capsys.readouterr().out
