"""Grading a large class: shards, merging them, continuing a stopped run, exports (a few seconds, no kernels).

The grading of one student is replaced by a fake that returns rows at once, so that the code around
it (which student goes to which shard, what is kept, what is merged and exported) is what runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from tools.grading import grade
from tools.grading.grade import Row

CELLS = {  # notebook -> (grade_id, points) of its graded cells, as in the kit
    "02_residual_blocks": [("identity_block_public", 0), ("identity_block_hidden", 3),
                           ("convolutional_block_public", 0), ("convolutional_block_hidden", 3)],
    "03_resnet50": [("resnet50_public", 0), ("resnet50_hidden", 4)],
}
STUDENTS = ["alice", "bob", "carol", "dmitri", "eve", "ana.lopez@uni.edu", "li_wei", "o-brien", "x+y", "Zoe", "0042", "mallory"]
GRADING_KEY = "the same hidden tests and options"


def fake_rows(student: str) -> list[Row]:
    """A student's rows as the grader writes them, passing or failing cell by cell with the student's id."""
    bits = int(hashlib.sha256(student.encode()).hexdigest(), 16)
    rows = []
    for notebook, cells in CELLS.items():
        for grade_id, points in cells:
            bits, passed = bits >> 1, bits & 1
            rows.append(Row(student, notebook, grade_id, float(points if passed else 0), float(points),
                            "passed" if passed else "failed", "" if passed else f"AssertionError: {grade_id} is wrong"))
    return rows


def fake_grader(out: Path, calls: list[str] | None = None, grader_problem: str = ""):
    """A stand-in for grade.grade_student: feedback pages in `out`, the rows, each student noted in `calls`."""
    def grade_student(student_dir: Path, stop: threading.Event) -> list[Row]:
        student = student_dir.name
        (out / "feedback" / student).mkdir(parents=True, exist_ok=True)
        for notebook in CELLS:
            (out / "feedback" / student / f"{notebook}.html").write_text(f"<p>{notebook} of {student}</p>")
        if calls is not None:
            calls.append(student)
        if student == grader_problem:
            return [Row(student, "02_residual_blocks", "identity_block_hidden", 0.0, 3.0, "not graded",
                        f"{grade.GRADER_PROBLEM}: the kernel did not start")]
        return fake_rows(student)
    return grade_student


@pytest.fixture
def submissions(tmp_path) -> Path:
    """A class of STUDENTS, each handing in both notebooks (a line of text is enough for the fake grader)."""
    for student in STUDENTS:
        for notebook in CELLS:
            path = tmp_path / "submissions" / student / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{notebook} by {student}")
    return tmp_path / "submissions"


def fake_run(submissions: Path, out: Path, shard: tuple[int, int] | None = None, grade_student=None,
             workers: int = 2, grading: str = GRADING_KEY) -> Path:
    """What grade_class does around the grading of each student: select the shard, keep, order, write."""
    students = [path for path in grade.class_folders(submissions) if not shard or grade.in_shard(path.name, shard)]
    fingerprints = {path.name: grade.submission_fingerprint(path, list(CELLS), grading) for path in students}
    rows = grade.grade_remaining(students, fingerprints, out / grade.RESULTS, workers, grade_student or fake_grader(out))
    path = grade.write_grades(grade.in_csv_order(rows), out)
    grade.mark_shard(out, shard)
    return path


def shard_runs(submissions: Path, folder: Path, count: int) -> list[Path]:
    outs = [folder / f"shard-{index}-of-{count}" for index in range(1, count + 1)]
    for index, out in enumerate(outs, start=1):
        fake_run(submissions, out, (index, count))
    return outs


def files(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*.html"))}


def refusal(argv: list[str], capsys) -> str:
    """The message of a command that must refuse with exit code 2 (and no traceback: SystemExit, nothing else)."""
    with pytest.raises(SystemExit) as stopped:
        grade.main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


# --- Shards -------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_student_is_in_exactly_one_shard_and_shards_are_balanced(count):
    students = [f"student{number:04d}" for number in range(700)]
    shards = {index: [s for s in students if grade.in_shard(s, (index, count))] for index in range(1, count + 1)}
    assert sorted(s for members in shards.values() for s in members) == students
    assert all(abs(len(members) - 700 / count) < 0.2 * 700 / count for members in shards.values())


def test_a_students_shard_is_the_same_on_every_machine():
    """SHA-256 of the id mod N, not Python's hash() (which changes between processes): values fixed here."""
    expected = {"alice": 3, "bob": 2, "carol": 3, "student001": 3, "ana.lopez@uni.edu": 2}
    assert {student: next(i for i in (1, 2, 3) if grade.in_shard(student, (i, 3))) for student in expected} == expected


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "1/0", "3", "-1/3"])
def test_a_shard_that_does_not_exist_is_refused_with_a_usage_message(value, submissions, capsys):
    message = refusal([str(submissions), f"--shard={value}"], capsys)
    assert "--shard" in message and repr(value) in message


def test_a_shard_without_students_writes_an_empty_grades_csv_that_merges(tmp_path, capsys):
    (tmp_path / "submissions" / "alice").mkdir(parents=True)  # alice is in shard 3/3
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        grade.main([str(tmp_path / "submissions"), "--shard", "1/3", "--out", str(tmp_path / "shard-1")])
    finally:
        signal.signal(signal.SIGTERM, sigterm)  # grade.main makes SIGTERM stop a run as Ctrl-C does
    assert "Shard 1/3: 0 of the 1 students" in capsys.readouterr().out
    assert (tmp_path / "shard-1" / "grades.csv").read_text().strip() == ",".join(grade.COLUMNS)
    others = [fake_run(tmp_path / "submissions", tmp_path / f"shard-{i}", (i, 3)).parent for i in (2, 3)]
    grade.main(["merge", str(tmp_path / "shard-1"), *map(str, others), "--out", str(tmp_path / "merged")])
    assert (tmp_path / "merged" / "grades.csv").read_text() == fake_run(tmp_path / "submissions", tmp_path / "whole").read_text()


# --- Merge --------------------------------------------------------------------------------------


def test_merged_shards_equal_one_run_row_for_row(submissions, tmp_path):
    whole = fake_run(submissions, tmp_path / "whole")
    outs = shard_runs(submissions, tmp_path, 3)
    assert sorted(path.stem for out in outs for path in (out / grade.RESULTS).glob("*.json")) == sorted(STUDENTS)
    grade.main(["merge", *map(str, outs), "--out", str(tmp_path / "merged")])
    assert (tmp_path / "merged" / "grades.csv").read_text() == whole.read_text()
    assert files(tmp_path / "merged" / "feedback") == files(tmp_path / "whole" / "feedback")


def test_merge_refuses_a_folder_without_grades_csv(submissions, tmp_path, capsys):
    one = fake_run(submissions, tmp_path / "one").parent
    (tmp_path / "empty").mkdir()
    for missing in (tmp_path / "empty", tmp_path / "nowhere"):
        message = refusal(["merge", str(one), str(missing), "--out", str(tmp_path / "merged")], capsys)
        assert f"{missing} has no grades.csv" in message
    assert not (tmp_path / "merged").exists()


def test_merge_refuses_a_student_in_two_folders(submissions, tmp_path, capsys):
    first, second = fake_run(submissions, tmp_path / "first").parent, fake_run(submissions, tmp_path / "second").parent
    message = refusal(["merge", str(first), str(second), "--out", str(tmp_path / "merged")], capsys)
    assert f"student 0042 is in both {first} and {second}" in message


def test_merge_refuses_a_csv_with_other_columns(submissions, tmp_path, capsys):
    outs = shard_runs(submissions, tmp_path, 2)
    (outs[1] / "grades.csv").write_text("student,points\nalice,10\n")
    message = refusal(["merge", *map(str, outs), "--out", str(tmp_path / "merged")], capsys)
    assert f"{outs[1] / 'grades.csv'} has the columns 'student,points'" in message


def test_merge_refuses_when_a_shard_is_missing(submissions, tmp_path, capsys):
    outs = shard_runs(submissions, tmp_path, 3)
    message = refusal(["merge", str(outs[0]), str(outs[2]), "--out", str(tmp_path / "merged")], capsys)
    assert "shard 2/3 is missing" in message


def test_merge_replaces_an_existing_grades_csv_only_with_force(submissions, tmp_path, capsys):
    outs = shard_runs(submissions, tmp_path, 2)
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "grades.csv").write_text("last week's grades\n")
    message = refusal(["merge", *map(str, outs), "--out", str(merged)], capsys)
    assert f"{merged / 'grades.csv'} exists already" in message and "--force" in message
    assert (merged / "grades.csv").read_text() == "last week's grades\n"
    grade.main(["merge", *map(str, outs), "--out", str(merged), "--force"])
    assert (merged / "grades.csv").read_text() == fake_run(submissions, tmp_path / "whole").read_text()


# --- Continuing a run that stopped --------------------------------------------------------------


def test_a_run_stopped_by_ctrl_c_continues_and_ends_as_an_uninterrupted_one(submissions, tmp_path):
    whole = fake_run(submissions, tmp_path / "whole")
    out, calls, stopped = tmp_path / "interrupted", [], []
    grade_normally = fake_grader(out, calls)

    def ctrl_c_at_the_sixth(student_dir: Path, stop: threading.Event) -> list[Row]:
        if len(calls) < 5:
            return grade_normally(student_dir, stop)
        deadline = time.monotonic() + 10
        while len(list((out / grade.RESULTS).glob("*.json"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the run has kept the five graded students
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in a terminal: KeyboardInterrupt in the main thread
        stopped.append(stop.wait(10))  # the real grader kills its worker when told to stop
        return []

    # Python turns SIGINT into KeyboardInterrupt unless it started with SIGINT ignored, as a shell's background job does.
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            fake_run(submissions, out, grade_student=ctrl_c_at_the_sixth, workers=1)
    finally:
        signal.signal(signal.SIGINT, started_with)
    assert stopped == [True]
    kept = {path.stem for path in (out / grade.RESULTS).glob("*.json")}
    assert len(kept) == 5 and not (out / "grades.csv").exists()
    assert log_lines(out)[-1].startswith(f"stopped (KeyboardInterrupt): 5/{len(STUDENTS)} students done")
    graded_now: list[str] = []
    fake_run(submissions, out, grade_student=fake_grader(out, graded_now))
    assert sorted(graded_now) == sorted(set(STUDENTS) - kept)
    assert (out / "grades.csv").read_text() == whole.read_text()
    assert files(out / "feedback") == files(tmp_path / "whole" / "feedback")


def test_a_changed_submission_is_graded_again_and_the_others_are_kept(submissions, tmp_path):
    fake_run(submissions, tmp_path / "grades")
    (submissions / "bob" / "03_resnet50.ipynb").write_text("handed in again, late")
    (submissions / "eve" / "02_residual_blocks.ipynb").unlink()
    graded_again: list[str] = []
    fake_run(submissions, tmp_path / "grades", grade_student=fake_grader(tmp_path / "grades", graded_again))
    assert sorted(graded_again) == ["bob", "eve"]


def test_changed_hidden_tests_or_options_grade_everyone_again(submissions, tmp_path):
    fake_run(submissions, tmp_path / "grades")
    graded_again: list[str] = []
    fake_run(submissions, tmp_path / "grades", grade_student=fake_grader(tmp_path / "grades", graded_again),
             grading="hidden tests fixed, --timeout 120")
    assert sorted(graded_again) == sorted(STUDENTS)


def test_a_student_the_grader_failed_is_graded_again(submissions, tmp_path):
    fake_run(submissions, tmp_path / "grades", grade_student=fake_grader(tmp_path / "grades", grader_problem="carol"))
    graded_again: list[str] = []
    fake_run(submissions, tmp_path / "grades", grade_student=fake_grader(tmp_path / "grades", graded_again))
    assert graded_again == ["carol"]


def test_the_grading_key_changes_with_the_options_that_change_scores():
    class Options:
        sandbox, container_sandbox, timeout, memory, student_timeout = True, False, 60.0, 4.0, 900.0
    notebooks = ["02_residual_blocks", "03_resnet50"]
    key = grade.grading_key(notebooks, Options)
    Options.timeout = 120.0
    assert grade.grading_key(notebooks, Options) != key


def fake_worker(tmp_path: Path, script: str) -> tuple[grade.Worker, Path]:
    """A Worker whose process is the shell `script` instead of the grader, and a student folder to hand it."""
    home = tmp_path / "run" / "alice"
    (home / "logs").mkdir(parents=True)
    return grade.Worker(["sh", "-c", script], tmp_path / "worker.log"), home


def test_a_worker_is_killed_at_once_when_the_run_stops(tmp_path):
    worker, home = fake_worker(tmp_path, "sleep 30")
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    assert worker.grade(home, 60, stop) is False
    assert time.monotonic() - started < 5
    assert worker.process is None
    assert not (home / "worker-timeout").exists()


def test_a_worker_past_its_time_is_killed_and_recorded(tmp_path):
    worker, home = fake_worker(tmp_path, "sleep 30")
    assert worker.grade(home, 1, threading.Event()) is True
    assert (home / "worker-timeout").read_text() == "1"
    assert worker.process is None


def test_one_worker_process_grades_student_after_student(tmp_path):
    worker, home = fake_worker(tmp_path, 'while read folder; do echo "$folder"; done')
    assert worker.grade(home, 10, threading.Event()) is True
    first = worker.process.pid
    assert worker.grade(home, 10, threading.Event()) is True
    assert worker.process.pid == first
    worker.close()
    assert worker.process is None


def test_a_worker_that_dies_while_grading_is_replaced_for_the_next_student(tmp_path):
    worker, home = fake_worker(tmp_path, "read folder; exit 3")
    assert worker.grade(home, 10, threading.Event()) is True
    assert worker.process is None and not (home / "worker-timeout").exists()
    assert worker.grade(home, 10, threading.Event()) is True  # a new process took the student


# --- Progress -----------------------------------------------------------------------------------

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$")
STUDENT_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+): ([\d.]+)/([\d.]+) points(, GRADER PROBLEM)?; "
                          r"failures: (\d+) students, grader problems: (\d+); elapsed [\d:]+, ETA [\d:]+$")


def log_lines(out: Path) -> list[str]:
    """The lines of OUT/grading.log without their timestamps, each checked to have one."""
    lines = (out / grade.LOG_FILE).read_text().splitlines()
    assert all(LOG_LINE.match(line) for line in lines), lines
    return [LOG_LINE.match(line)[1] for line in lines]


def test_the_log_has_a_line_per_student_with_done_total_and_failures_so_far(submissions, tmp_path, capsys):
    out, full_marks = tmp_path / "grades", {"alice", "eve", "Zoe", "0042"}
    grade_with_problems = fake_grader(out, grader_problem="carol")

    def some_with_full_marks(student_dir: Path, stop: threading.Event) -> list[Row]:
        rows = grade_with_problems(student_dir, stop)
        if student_dir.name in full_marks:
            return [Row(row.student_id, row.notebook, row.grade_id, row.max_score, row.max_score, "passed", "") for row in rows]
        return rows

    fake_run(submissions, out, grade_student=some_with_full_marks)
    start, *graded, end = log_lines(out)
    assert start.startswith("start on ") and f"{len(STUDENTS)} students, 0 kept from an earlier run" in start
    failing, problems = set(), set()
    for done, line in enumerate(graded, start=1):
        match = STUDENT_LINE.match(line)
        assert match, line
        student = match[3]
        failing |= set() if student in full_marks else {student}
        problems |= {student} if student == "carol" else set()
        assert (int(match[1]), int(match[2])) == (done, len(STUDENTS))
        assert bool(match[6]) == (student == "carol")
        assert (int(match[7]), int(match[8])) == (len(failing), len(problems)), line
    assert sorted(STUDENT_LINE.match(line)[3] for line in graded) == sorted(STUDENTS)
    assert end.startswith(f"finished: {len(STUDENTS)}/{len(STUDENTS)} students done; "
                          f"failures: {len(STUDENTS) - len(full_marks)} students, grader problems: 1; elapsed")
    printed = capsys.readouterr().out  # not a terminal: the same lines, without the bar
    assert all(f"  {line.split('; elapsed')[0]}" in printed for line in graded)


def test_a_continued_run_counts_on_from_the_kept_students_in_the_same_log(submissions, tmp_path):
    out = tmp_path / "grades"
    fake_run(submissions, out)
    (submissions / "bob" / "03_resnet50.ipynb").write_text("handed in again, late")
    fake_run(submissions, out)
    lines = log_lines(out)
    assert len(lines) == 2 + len(STUDENTS) + 3  # appended: the first run, then a start, bob, an end
    start, bob, end = lines[-3:]
    assert f"{len(STUDENTS) - 1} kept from an earlier run, 1 to grade with 2 workers" in start
    assert STUDENT_LINE.match(bob).group(1, 2, 3) == (str(len(STUDENTS)), str(len(STUDENTS)), "bob")
    assert end.startswith(f"finished: {len(STUDENTS)}/{len(STUDENTS)} students done")


# --- Exports ------------------------------------------------------------------------------------


def test_the_lms_gradebook_has_a_row_per_student_a_column_per_notebook_and_the_total(submissions, tmp_path):
    out = fake_run(submissions, tmp_path / "grades").parent
    grade.main(["export", str(out), "--format", "lms"])
    with open(out / "lms_gradebook.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                              "02_residual_blocks", "03_resnet50", "Final Points"]
    assert [row["SIS Login ID"] for row in table] == sorted(STUDENTS)
    for row in table:
        rows = fake_rows(row["Student"])
        blocks = sum(r.score for r in rows if r.notebook == "02_residual_blocks")
        assert (float(row["02_residual_blocks"]), float(row["Final Points"])) == (blocks, sum(r.score for r in rows))
        assert row["ID"] == row["SIS User ID"] == row["Section"] == ""


def test_the_lms_gradebook_puts_the_ids_in_the_column_asked_for(submissions, tmp_path):
    out = fake_run(submissions, tmp_path / "grades").parent
    grade.main(["export", str(out), "--format", "lms", "--id-column", "SIS User ID"])
    with open(out / "lms_gradebook.csv", newline="") as file:
        first = next(csv.DictReader(file))
    assert first["SIS User ID"] == first["Student"] == "0042" and first["SIS Login ID"] == ""


def test_gradescope_results_hold_each_tests_points_and_message_and_no_code(submissions, tmp_path):
    out = fake_run(submissions, tmp_path / "grades").parent
    grade.main(["export", str(out), "--format", "gradescope"])
    assert sorted(path.name for path in (out / "gradescope").iterdir()) == sorted(STUDENTS)
    results = json.loads((out / "gradescope" / "alice" / "results.json").read_text())
    rows = fake_rows("alice")
    assert results["score"] == sum(row.score for row in rows)
    assert results["tests"] == [
        {"name": f"{row.notebook}: {row.grade_id}", "score": row.score, "max_score": row.max_score,
         "status": row.status, "output": row.reason}  # the message grades.csv holds, never a test's code
        for row in rows
    ]


def test_an_export_of_a_folder_without_grades_is_refused(tmp_path, capsys):
    message = refusal(["export", str(tmp_path), "--format", "lms"], capsys)
    assert f"{tmp_path} has no grades.csv" in message
