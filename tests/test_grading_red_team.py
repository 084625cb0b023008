"""Every attack of the red-team catalogue (tools/grading/attacks.py) scores 0 with its reason, and harms no one else.

One class is graded once, in the sandbox: the reference solution, and one student per attack
(the reference with the attack written before its identity block). Each attack raises when the
protection holds, so its identity block scores 0 only if the attack failed; the reference's rows
and feedback page must come out as if it were graded alone.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import launcher_settings, needs_bwrap  # noqa: F401 (a fixture)
from tools.grading import grade
from tools.grading.attacks import ATTACKED_CELL, SECRET_VARIABLE, catalogue
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course
from tools.course.notebook_source import BLOCKS_NOTEBOOK
from tools.grading.sandbox_kernel import LIMIT_REACHED, kernel_exit_code

VICTIM = "reference"
CELL_TIMEOUT = 20  # the reference's cells take a few seconds; the CPU attack then runs 10 x 20 s of CPU time


def student_id(name: str) -> str:
    return "attack-" + "".join(letter if letter.isalnum() else "-" for letter in name).strip("-")


@needs_bwrap
def test_a_kernel_past_its_cpu_time_is_stopped_and_its_launcher_says_so(launcher_settings, tmp_path):
    launcher_settings["timeout"] = 0.2  # 1 s of CPU time
    (tmp_path / "settings.json").write_text(json.dumps(launcher_settings))
    (tmp_path / "connection.json").write_text("{}")
    spinning_kernel = [sys.executable, str(grade.SANDBOX_KERNEL), str(tmp_path / "settings.json"), "-f", str(tmp_path / "connection.json"),
                       "--IPKernelApp.exec_lines=['while True: pass']"]
    worker = [shutil.which("bwrap"), *grade.WORKER_NAMESPACE, "--"]
    result = subprocess.run([*worker, *spinning_kernel], cwd=launcher_settings["sandbox"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"{LIMIT_REACHED}: the kernel was stopped after 1 s of CPU time" in result.stderr


def cpu_usage(seconds: float) -> resource.struct_rusage:
    return resource.struct_rusage((seconds, 0.0, *[0] * 14))


@pytest.mark.parametrize("used", [1.0, 0.978])  # Linux samples the limit at clock ticks: a loaded machine stops it early
def test_a_kernel_stopped_at_its_cpu_time_as_linux_counts_it_is_said_to_be(used, capfd):
    assert kernel_exit_code(signal.SIGXCPU, cpu_usage(used), cpu_seconds=1) == 128 + signal.SIGXCPU
    assert f"{LIMIT_REACHED}: the kernel was stopped after 1 s of CPU time" in capfd.readouterr().err


def test_a_kernel_that_sent_itself_the_cpu_signal_at_once_is_not_said_to_be_past_its_cpu_time(capfd):
    assert kernel_exit_code(signal.SIGXCPU, cpu_usage(0.05), cpu_seconds=1) == 128 + signal.SIGXCPU
    assert LIMIT_REACHED not in capfd.readouterr().err


def test_a_kernel_killed_before_its_cpu_time_ran_out_is_not_said_to_be_past_it(capfd):
    assert kernel_exit_code(signal.SIGKILL, cpu_usage(0.6), cpu_seconds=1) == 128 + signal.SIGKILL
    assert LIMIT_REACHED not in capfd.readouterr().err


@pytest.fixture(scope="module")
def red_team(tmp_path_factory) -> dict:
    """Grade the class once; return its folders, the attacks by student id, and grades.csv as student -> grade_id -> row."""
    work = tmp_path_factory.mktemp("red-team")
    release = build_course(work / "course")
    submissions, out = work / "submissions", work / "grades"
    attacks = {student_id(attack.name): attack for attack in catalogue(KIT_DIR, submissions, out, VICTIM)}
    for student, solutions in {VICTIM: reference_solutions(),
                               **{student: {**reference_solutions(), attack.grade_id: attack.source()}
                                  for student, attack in attacks.items()}}.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(fill_in(release / BLOCKS_NOTEBOOK.name, solutions), submissions / student / BLOCKS_NOTEBOOK.name)
    result = subprocess.run(
        [sys.executable, "-m", "tools.grading.grade", str(submissions), "--out", str(out), "--timeout", str(CELL_TIMEOUT), "--memory", "3"],
        cwd=KIT_DIR, capture_output=True, text=True, env={**os.environ, SECRET_VARIABLE: "a token student code must not see"})
    assert result.returncode == 0, result.stdout + result.stderr
    rows: dict[str, dict[str, dict]] = {}
    with open(out / "grades.csv") as file:
        for row in csv.DictReader(file):
            rows.setdefault(row["student_id"], {})[row["grade_id"]] = row
    return {"attacks": attacks, "rows": rows, "out": out, "submissions": submissions}


@pytest.mark.slow
@needs_bwrap
def test_the_catalogue_holds_at_least_twenty_attacks_with_distinct_names(red_team):
    assert len(red_team["attacks"]) >= 20
    assert len({attack.name for attack in red_team["attacks"].values()}) == len(red_team["attacks"])


@pytest.mark.slow
@needs_bwrap
def test_every_attack_scores_zero_on_its_cell_with_a_named_reason(red_team):
    failures = []
    for student, attack in red_team["attacks"].items():
        row = red_team["rows"][student][f"{ATTACKED_CELL}_hidden"]
        if float(row["score"]) != 0 or not any(reason in row["reason"] for reason in attack.reasons):
            failures.append(f"{attack.name}: score {row['score']}, reason {row['reason']!r}, expected one of {attack.reasons}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@needs_bwrap
def test_the_reference_graded_beside_the_attackers_keeps_full_marks(red_team):
    rows = [row for row in red_team["rows"][VICTIM].values() if row["notebook"] == BLOCKS_NOTEBOOK.stem]
    assert rows and all(row["status"] == "passed" and float(row["score"]) == float(row["max_score"]) for row in rows), rows


@pytest.mark.slow
@needs_bwrap
def test_grades_csv_holds_exactly_one_row_per_student_and_graded_cell(red_team):
    students = set(red_team["rows"])
    assert students == {VICTIM, *red_team["attacks"]}
    assert len({len(rows) for rows in red_team["rows"].values()}) == 1
    with open(red_team["out"] / "grades.csv") as file:
        assert sum(1 for _ in csv.DictReader(file)) == len(students) * len(red_team["rows"][VICTIM])


@pytest.mark.slow
@needs_bwrap
def test_the_reference_feedback_and_submission_are_untouched(red_team):
    page = red_team["out"] / "feedback" / VICTIM / f"{BLOCKS_NOTEBOOK.stem}.html"
    assert "All tests passed" in page.read_text() and "0 points" not in page.read_text()
    submitted = nbformat.read(red_team["submissions"] / VICTIM / BLOCKS_NOTEBOOK.name, as_version=4)
    release = build_course(red_team["out"].parent / "fresh-course")
    assert submitted == fill_in(release / BLOCKS_NOTEBOOK.name, reference_solutions())


@pytest.mark.slow
@needs_bwrap
def test_no_attack_left_a_file_in_the_submissions_or_the_grades(red_team):
    planted = [path for folder in (red_team["out"], red_team["submissions"]) for path in folder.rglob("*")
               if path.name in ("filler.bin", "planted", "planted.ipynb")]
    assert not planted
    assert {path.name for path in (red_team["submissions"] / VICTIM).iterdir()} == {BLOCKS_NOTEBOOK.name}
