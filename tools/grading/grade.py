"""Grade a class: `python -m tools.grading.grade SUBMISSIONS` (what `make grade SUBMISSIONS=DIR` runs).

SUBMISSIONS holds one folder per student, `SUBMISSIONS/<student_id>/<notebook>.ipynb`.
nbgrader does the grading (`autograde`, then `generate_feedback`); this command arranges a
private course folder per student, runs the students in parallel, and collects
`grades/grades.csv` (one row per student and graded cell) and `grades/feedback/<student_id>/`.

Every student gets rows whatever happens, and one student's failure never stops the others:
a cell that runs too long is interrupted (--timeout), a kernel that dies or a notebook that
is not valid JSON scores zero with the reason, memory is capped per submission (--memory).
Student code runs in a bubblewrap sandbox (tools/grading/sandbox_kernel.py): without network, in a
folder holding only the release files and the student's notebooks, unable to see the kit
(source notebooks, .git), the gradebook or other students, with limits on memory, CPU time,
processes and writes. Where that sandbox cannot be built, grading stops (exit code 2) unless
--container-sandbox (as root in a container without network: each kernel runs as a user of its
own, tools/grading/container_sandbox.py) or --no-sandbox (unprotected) is given; every row then
says which. Submissions are repaired against the release first (tools/grading/submissions.py).
Each worker starts its kernels from a zygote that has imported TensorFlow once and forks a kernel
per notebook, each in namespaces and limits of its own (tools/grading/kernel_zygote.py).

At scale: `--shard i/N` grades the students whose id hashes to shard i of N, on as many machines as
there are shards; `python -m tools.grading.grade merge OUT1 OUT2 ...` joins their outputs and `python -m
tools.grading.grade export GRADES --format lms gradescope` writes them for an LMS or Gradescope
(tools/grading/grade_outputs.py). Each student's rows are kept in `OUT/results/<student_id>.json` as soon
as they are graded, so a run that stops (Ctrl-C, a lost machine) continues where it stopped when
the same command runs again; --restart grades everyone again. The progress (students done, failures
so far, ETA) shows on the terminal and goes to `OUT/grading.log`; deploy/ has the launchers for
Kubernetes and Slurm.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from tqdm import tqdm

import resnets_utils
from resnets_utils import KIT_DIR, N_
from tools.grading.nbgrader_course import (ASSIGNMENT, EDITIONS, build_course, graded_notebooks, nbgrader_environment,
                                           source_notebooks, write_config)
from tools.course.notebook_source import NOTEBOOKS
from tools.grading import container_sandbox, kernel_zygote
from tools.grading.sandbox_kernel import KERNEL_NAMESPACES, LIMIT_REACHED, PROCESS_LIMIT, SANDBOX_FAILED, ZYGOTE_VARIABLE
from tools.grading.submissions import SubmissionError, edition_of, prepare_submission, speaking

GRADES_DIR = KIT_DIR / "grades"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
# What the graded notebooks need beside them: the kit's module, and its messages in Chinese for the Chinese edition.
GRADING_FILES = ("resnets_utils.py", "locale/zh_CN/LC_MESSAGES/resnets_kit.mo", "locale/zh_CN/figure-font.ttf")
GRADER_COURSE_FILES = tuple(sorted({name.split("/")[0] for name in GRADING_FILES}))  # what the grader's courses hold beside the notebooks
GRADER_CODE = ("grade.py", "grading_preprocessors.py", "nbgrader_course.py", "sandbox_kernel.py", "kernel_zygote.py",
               "submissions.py", "container_sandbox.py")  # in tools/grading/
GRADING_TOOLS = KIT_DIR / "tools" / "grading"
SANDBOX_KERNEL = GRADING_TOOLS / "sandbox_kernel.py"
BWRAP_VARIABLE = "RESNETS_BWRAP"  # where bwrap is, when it is not `bwrap` on PATH
# Each worker runs in its own network namespace, whose loopback bwrap brings up (nbgrader and the kernel talk over
# it), and its own PID namespace, so that stopping a worker that took too long stops its nbgrader and kernel too.
WORKER_NAMESPACE = ("--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc", "--die-with-parent")
UNSANDBOXED = "graded with --no-sandbox: student code could read the hidden tests and other students' work, and use the network"
CONTAINER_SANDBOXED = ("graded with --container-sandbox: student code ran as a user of its own in the grader's container, "
                       "without network, and could read the container's files that every user may read")
HOW_TO_SANDBOX = f"""\
Grading runs student code in a bubblewrap sandbox. Install it (`apt-get install bubblewrap`,
`dnf install bubblewrap`) or point {BWRAP_VARIABLE}=/path/to/bwrap at it; as a user other than root
it also needs unprivileged user namespaces (Debian: `sysctl kernel.unprivileged_userns_clone=1`;
Ubuntu 24.04 and later: an AppArmor profile that allows bwrap to use them).
To grade anyway, unprotected (student code can then read the hidden tests and other students'
work, and use the network): {{command}} --no-sandbox
Every row of grades.csv then says so."""
COLUMNS = ("student_id", "notebook", "grade_id", "score", "max_score", "status", "reason")
GRADER_PROBLEM = "GRADER PROBLEM"  # how a row starts when the grader failed, not the student
RESULTS = "results"  # OUT/results/<student_id>.json: one student's rows, kept as soon as they are graded
SHARD_FILE = "shard.txt"  # OUT/shard.txt: "i/N" when OUT holds one shard, so that merge can tell a shard is missing
LOG_FILE = "grading.log"  # OUT/grading.log: a timestamped line per student graded, with the progress, appended run after run


class GradingError(RuntimeError):
    """The class cannot be graded at all (no submissions folder, nbgrader broken)."""


class SandboxUnavailable(GradingError):
    """Student code cannot be isolated on this machine; grading it needs --no-sandbox."""


@dataclass
class Row:
    student_id: str
    notebook: str
    grade_id: str
    score: float
    max_score: float
    status: str  # passed, failed, or not graded
    reason: str


# --- The parent: arrange, run in parallel, collect ---------------------------------------------


def worker_prefix(bwrap: str | None) -> list[str]:
    """The command prefix that runs a worker without network, once a kernel sandbox is known to work inside it."""
    if not bwrap:
        raise SandboxUnavailable("bubblewrap (`bwrap`) is not installed")
    if not os.access(bwrap, os.X_OK):
        raise SandboxUnavailable(f"{BWRAP_VARIABLE} names {bwrap}, which is not an executable file")
    prefix = [bwrap, *WORKER_NAMESPACE, "--"]
    probe = [*prefix, bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *KERNEL_NAMESPACES, "--", "true"]
    result = subprocess.run(probe, capture_output=True, text=True)
    if result.returncode != 0:
        why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.returncode}"
        raise SandboxUnavailable(f"{bwrap} cannot build the sandbox here ({why})")
    return prefix


def prepare_student(run: Path, master: Path, student_dir: Path, notebooks: list[str]) -> dict[str, str]:
    """Make `run/<student>/course`, nbgrader's course folder for one student, with each notebook repaired against the
    release (tools/grading/submissions.py); return the notebooks it cannot grade. The repairs' notes go to
    `run/<student>/notes.json`, for `collect`."""
    student = student_dir.name
    course = run / student / "course"
    submitted = course / "submitted" / student / ASSIGNMENT
    submitted.mkdir(parents=True)
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    for name in GRADING_FILES:
        (course / "source" / ASSIGNMENT / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(master / "source" / ASSIGNMENT / name, course / "source" / ASSIGNMENT / name)
    errors, notes, editions = {}, {}, {}
    for notebook in notebooks:
        try:
            submission = prepare_submission(student_dir, notebook, notebooks, master / "release" / ASSIGNMENT / f"{notebook}.ipynb",
                                            {edition: releases / ASSIGNMENT / f"{notebook}.ipynb" for edition, releases in edition_releases(master).items()})
        except SubmissionError as error:
            errors[notebook] = error
            continue
        nbformat.write(submission.notebook, submitted / f"{notebook}.ipynb")
        notes[notebook], editions[notebook] = submission.notes, submission.edition
    # a notebook that cannot be read has no language: its reason takes that of the student's other notebooks
    editions = {notebook: editions.get(notebook, student_edition(editions)) for notebook in notebooks}
    # nbgrader puts the gradebook's test cells back before it runs them, and the feedback shows them: the gradebook
    # of the student's edition, so that a Chinese student reads the tests' comments in Chinese
    edition = student_edition(editions)
    shutil.copy2(edition_course(master, edition) / "gradebook.db", course / "gradebook.db")
    (run / student / "notes.json").write_text(json.dumps(notes))
    (run / student / "editions.json").write_text(json.dumps(editions))
    return {notebook: error.said(speaking(editions[notebook])) for notebook, error in errors.items()}


def student_edition(editions: dict[str, str]) -> str:
    """The edition a student works in: Chinese if any of their notebooks is, else English."""
    return "zh" if "zh" in editions.values() else "en"


def worker_settings(run: Path, student: str, hidden: list[Path], bwrap: str | None, args) -> None:
    """Write the sandbox settings, the kernelspec and the nbgrader config of one student's worker."""
    home = run / student
    (home / "logs").mkdir()
    settings = home / "sandbox.json"
    settings.write_text(json.dumps({
        "isolated": args.sandbox, "bwrap": bwrap, "hide": [str(path) for path in hidden],
        "sandbox": str(home / "sandbox"), "memory_bytes": int(args.memory * 2**30), "timeout": args.timeout,
        "container": args.kernel_users,  # with --container-sandbox, set by grade_class: tools/grading/container_sandbox.py
    }))
    kernel_dir = home / "jupyter" / "kernels" / "resnets-grader"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(SANDBOX_KERNEL), str(settings), "-f", "{connection_file}"],
        "display_name": "ResNets kit grader", "language": "python",
    }))
    course = home / "course"
    write_config(course, f"""
import sys
sys.path.insert(0, {str(KIT_DIR)!r})
from nbgrader.preprocessors import *
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from tools.grading.grading_preprocessors import RejectTampering, ShowStudentFiles, SkipDemos
c.CourseDirectory.autograded_directory = {str(home / 'sandbox')!r}
c.Execute.kernel_name = "resnets-grader"
c.Execute.timeout = {int(args.timeout)}
c.Execute.startup_timeout = 300  # a kernel importing TensorFlow on a busy machine starts slowly
c.ShowStudentFiles.submitted = {str(course / 'submitted' / student / ASSIGNMENT)!r}
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                      CheckCellMetadata, RejectTampering]
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]  # no hidden test code in feedback
c.Autograde.autograde_preprocessors = [ShowStudentFiles, SkipDemos, Execute, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
""")


class Worker:
    """A grading process that grades students one after another, so that Python, nbgrader and their
    imports start once per worker rather than three times per student (they were about a third of the
    time). It runs in its own network and PID namespace (`prefix`); student code never runs in it, only
    in the sandboxed kernels it starts, one per notebook. It reads a student's folder per line on stdin
    and answers with the same line when that student is done.
    """

    def __init__(self, prefix: list[str], log: Path):
        self.prefix, self.log, self.process = prefix, log, None

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([*self.prefix, sys.executable, "-m", "tools.grading.grade", "--worker"],
                                            cwd=KIT_DIR, env=nbgrader_environment(), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)

    def grade(self, home: Path, timeout: float, stop: threading.Event) -> bool:
        """Grade the student whose folder is `home`; a hang past `timeout` is killed and recorded in
        `home/worker-timeout`. False if `stop` came first."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        started = time.monotonic()
        try:
            self.process.stdin.write(f"{home}\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # it died while idle: its log says why, and the student's rows say it could not be graded
            self.kill()
            return True
        while True:
            if select.select([self.process.stdout], [], [], 0.25)[0]:
                if self.process.stdout.readline().strip() == str(home):
                    return True
                self.kill()  # it ended before answering: a crash of the grader, which collect() reports
                return True
            if stop.is_set() or time.monotonic() - started > timeout:
                self.kill()
                if stop.is_set():
                    return False
                (home / "worker-timeout").write_text(f"{timeout:.0f}")
                return True

    def kill(self) -> None:
        """Stop it at once, with nbgrader and the kernel (its session; its PID namespace where it has one)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def close(self) -> None:
        """Let it finish (end of its input), or stop it if it does not within a few seconds."""
        if self.process is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.kill()


class WorkerPool:
    """The grading processes of a run, one per student being graded at once, each reused for the next student."""

    def __init__(self, prefix: list[str], logs: Path):
        self.prefix, self.logs, self.idle, self.all, self.lock = prefix, logs, [], [], threading.Lock()

    @contextlib.contextmanager
    def worker(self):
        with self.lock:
            if not self.idle:
                self.all.append(Worker(self.prefix, self.logs / f"worker-{len(self.all) + 1}.log"))
                self.idle.append(self.all[-1])
            chosen = self.idle.pop()
        try:
            yield chosen
        finally:
            with self.lock:
                self.idle.append(chosen)

    def close(self) -> None:
        for worker in self.all:
            worker.close()


def grade_cells(notebook: Path) -> list[tuple[str, float]]:
    """(grade_id, points) of each graded cell of a source notebook, in order."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [
        (cell.metadata["nbgrader"]["grade_id"], float(cell.metadata["nbgrader"].get("points", 0)))
        for cell in cells if cell.metadata.get("nbgrader", {}).get("grade")
    ]


def collect(run: Path, master: Path, student: str, notebooks: list[str], problems: dict[str, str]) -> list[Row]:
    """The rows of one student: the worker's results, or zeros with the reason it could not give any; each row of a
    notebook that `prepare_student` repaired ends with the notes on what it repaired."""
    home = run / student
    results = home / "results.json"
    scored = json.loads(results.read_text()) if results.is_file() else {}
    repairs = json.loads((home / "notes.json").read_text()) if (home / "notes.json").is_file() else {}
    editions = json.loads((home / "editions.json").read_text()) if (home / "editions.json").is_file() else {}
    rows = []
    for notebook in notebooks:
        speak = speaking(editions.get(notebook, "en"))
        for grade_id, points in grade_cells(master / "source" / ASSIGNMENT / f"{notebook}.ipynb"):
            if notebook in problems:
                reason = problems[notebook]
            elif (home / "worker-timeout").exists():
                reason = speak(N_("grading stopped after {seconds} s")).format(seconds=(home / "worker-timeout").read_text())
            else:
                reason = None
            result = scored.get(notebook, {}).get(grade_id)
            if reason or result is None:
                reason = reason or scored.get(notebook, {}).get("__failure__", speak(N_("the grader could not run this notebook")))
                row = Row(student, notebook, grade_id, 0.0, points, "not graded", reason)
            else:
                score, why, passed = result
                row = Row(student, notebook, grade_id, score, points, "passed" if passed else "failed", why)
            row.reason = "; ".join(filter(None, [row.reason, *repairs.get(notebook, [])]))
            rows.append(row)
    return rows


def in_csv_order(rows: list[Row]) -> list[Row]:
    """The rows as grades.csv lists them: by student, then notebook; a stable sort, so cells keep the notebook's order."""
    return sorted(rows, key=lambda row: (row.student_id, row.notebook))


def write_grades(rows: list[Row], out: Path) -> Path:
    """Write grades.csv next to the old one, then swap, so a crash never leaves half a file."""
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "grades.csv.partial"
    with open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    os.replace(partial, out / "grades.csv")
    return out / "grades.csv"


def copy_feedback(run: Path, student: str, out: Path) -> None:
    source = run / student / "course" / "feedback" / student / ASSIGNMENT
    if source.is_dir():
        target = out / "feedback" / student
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for page in source.glob("*.html"):
            shutil.copy2(page, target / page.name)


def grade_student(student_dir: Path, stop: threading.Event, *, run: Path, master: Path, notebooks: list[str],
                  workers: WorkerPool, bwrap: str | None, hidden: list[Path], out: Path, args) -> list[Row]:
    """Grade one student in one of the `workers`, copy their feedback pages to `out` and return their rows."""
    student = student_dir.name
    problems = prepare_student(run, master, student_dir, notebooks)
    worker_settings(run, student, hidden, bwrap, args)
    with workers.worker() as worker:
        finished = worker.grade(run / student, args.student_timeout, stop)
    if not finished:
        return []  # stopped: the run is ending, and these rows would be incomplete
    copy_feedback(run, student, out)
    return collect(run, master, student, notebooks, problems)


# --- Many students: shards, results kept one by one --------------------------------------------


def shard_argument(text: str) -> tuple[int, int]:
    """--shard i/N as (i, N), for argparse, which turns the error into a usage message."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not i/N, shard i of N (for example 1/3)")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r}: shards are numbered 1/N to N/N, and N is at least 1")
    return index, count


def in_shard(student: str, shard: tuple[int, int]) -> bool:
    """True when shard i/N grades `student`: SHA-256 of the id, mod N, which every machine computes alike
    (Python's hash() of a string changes from one process to the next)."""
    index, count = shard
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % count == index - 1


def class_folders(submissions: Path) -> list[Path]:
    """The student folders of `submissions`, sorted."""
    if not submissions.is_dir():
        raise GradingError(f"Submissions folder not found: {submissions}. It should hold <student_id>/<notebook>.ipynb.")
    student_dirs = sorted(path for path in submissions.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not student_dirs:
        raise GradingError(f"{submissions} has no student folders; expected {submissions}/<student_id>/<notebook>.ipynb.")
    return student_dirs


def mark_shard(out: Path, shard: tuple[int, int] | None) -> None:
    """Write in OUT/shard.txt which shard OUT holds, so that merge can tell when one is missing; none for a whole class."""
    if shard:
        (out / SHARD_FILE).write_text(f"{shard[0]}/{shard[1]}\n")
    else:
        (out / SHARD_FILE).unlink(missing_ok=True)


def grading_key(notebooks: list[str], args) -> str:
    """A digest of what decides a grade besides the submission: the source notebooks with their hidden tests,
    the files graded beside them, the grader's code and the options that change scores."""
    digest = hashlib.sha256()
    for path in [*(NOTEBOOKS / f"{notebook}.ipynb" for notebook in notebooks), *(KIT_DIR / name for name in GRADING_FILES),
                 *(GRADING_TOOLS / name for name in GRADER_CODE)]:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps([args.sandbox, args.container_sandbox, args.timeout, args.memory, args.student_timeout]).encode())
    return digest.hexdigest()


def submission_fingerprint(student_dir: Path, notebooks: list[str], grading: str) -> str:
    """What a kept result must match to be used again: every notebook in the student's folder (a renamed one
    may be graded: tools/grading/submissions.py), the absence of the expected ones, and `grading`."""
    digest = hashlib.sha256(grading.encode())
    for notebook in notebooks:
        digest.update(f"{notebook}:{'present' if (student_dir / f'{notebook}.ipynb').is_file() else 'missing'};".encode())
    for path in sorted(student_dir.glob("*.ipynb")):
        digest.update(f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()};".encode())
    return digest.hexdigest()


def keep_result(results: Path, student: str, fingerprint: str, rows: list[Row]) -> None:
    """Write one student's rows to `results/<student>.json` whole or not at all (a temporary file, then a rename)."""
    results.mkdir(parents=True, exist_ok=True)
    partial = results / f"{student}.json.partial"
    partial.write_text(json.dumps({"fingerprint": fingerprint, "rows": [asdict(row) for row in rows]}))
    os.replace(partial, results / f"{student}.json")


def kept_results(results: Path, fingerprints: dict[str, str]) -> dict[str, list[Row]]:
    """The rows an earlier run kept for students whose submission and grading are unchanged,
    except where the grader itself failed: those are graded again."""
    kept = {}
    for student, fingerprint in fingerprints.items():
        path = results / f"{student}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            rows = [Row(**row) for row in saved["rows"]]
            if saved["fingerprint"] == fingerprint and not any(row.reason.startswith(GRADER_PROBLEM) for row in rows):
                kept[student] = rows
    return kept


def has_failures(rows: list[Row]) -> bool:
    """True when a student lost points somewhere: a cell that failed or could not be graded."""
    return any(row.status != "passed" for row in rows)


def grader_failed(rows: list[Row]) -> bool:
    return any(row.reason.startswith(GRADER_PROBLEM) for row in rows)


class Progress:
    """Students done / total, failures so far, time elapsed and ETA, after each student.

    On a terminal: a tqdm bar on stderr, and a line per student above it. Elsewhere (a batch system's
    log file): the line per student only, on stdout. Always: the same line with a timestamp appended to
    `log` (OUT/grading.log), with a line when the run starts and one when it ends, so a shard on a
    cluster can be followed with `tail -f`. The ETA counts only students graded by this run.
    """

    def __init__(self, total: int, kept: dict[str, list[Row]], log: Path):
        self.total, self.done, self.graded_now = total, len(kept), 0
        self.failures = {student for student, rows in kept.items() if has_failures(rows)}
        self.grader_problems = {student for student, rows in kept.items() if grader_failed(rows)}
        self.log, self.started = log, time.monotonic()
        self.bar = tqdm(total=total, initial=self.done, unit="student", file=sys.stderr, disable=None, dynamic_ncols=True)

    def write(self, text: str) -> None:
        log_line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as file:
            file.write(log_line)

    def failures_so_far(self) -> str:
        return f"failures: {len(self.failures)} students, grader problems: {len(self.grader_problems)}"

    def times(self) -> str:
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        eta = tqdm.format_interval(elapsed / max(self.graded_now, 1) * left) if self.graded_now or not left else "?"
        return f"elapsed {tqdm.format_interval(elapsed)}, ETA {eta}"

    def start(self, todo: int, workers: int) -> None:
        self.write(f"start on {socket.gethostname()}: {self.total} students, {self.done} kept from an earlier run, "
                   f"{todo} to grade with {workers} workers; {self.failures_so_far()}")

    def graded(self, student: str, rows: list[Row]) -> None:
        self.done += 1
        self.graded_now += 1
        if has_failures(rows):
            self.failures.add(student)
        if grader_failed(rows):
            self.grader_problems.add(student)
        score, points = sum(row.score for row in rows), sum(row.max_score for row in rows)
        result = f"{score:g}/{points:g} points" + (f", {GRADER_PROBLEM}" if grader_failed(rows) else "")
        line = f"[{self.done}/{self.total}] {student}: {result}; {self.failures_so_far()}; {self.times()}"
        self.write(line)
        self.bar.set_postfix_str(self.failures_so_far(), refresh=False)
        self.bar.update()
        if self.bar.disable:
            print(f"  {line}", flush=True)
        else:
            self.bar.write(f"  {line}", file=sys.stdout)

    def end(self, how: str) -> None:
        self.bar.close()
        self.write(f"{how}: {self.done}/{self.total} students done; {self.failures_so_far()}; {self.times()}")


def grade_remaining(students: list[Path], fingerprints: dict[str, str], results: Path, workers: int,
                    grade: Callable[[Path, threading.Event], list[Row]]) -> list[Row]:
    """Every student's rows: those kept in `results` by an earlier run, and the others graded now with
    `grade(student_dir, stop)`, `workers` at a time, each kept there as soon as it is done.

    That is what lets a run that stopped (Ctrl-C, a lost machine) continue where it stopped. On Ctrl-C
    or an error, `stop` is set, and `grade` must then return soon. The progress goes to the terminal and
    to OUT/grading.log, beside `results` (see Progress).
    """
    kept = kept_results(results, fingerprints)
    todo = [path for path in students if path.name not in kept]
    if kept:
        print(f"Continuing: {len(kept)} of {len(students)} students were graded by an earlier run (kept in {results}); "
              f"grading the other {len(todo)} (--restart grades everyone again).")
    rows = [row for student_rows in kept.values() for row in student_rows]
    stop = threading.Event()
    progress = Progress(len(students), kept, results.parent / LOG_FILE)
    progress.start(len(todo), workers)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = {pool.submit(grade, path, stop): path.name for path in todo}
        try:
            for job in concurrent.futures.as_completed(jobs):
                student, student_rows = jobs[job], job.result()
                keep_result(results, student, fingerprints[student], student_rows)
                rows += student_rows
                progress.graded(student, student_rows)
        except BaseException as error:
            stop.set()
            pool.shutdown(cancel_futures=True)
            progress.end(f"stopped ({type(error).__name__})")
            print(f"Stopped with {progress.done} of {len(students)} students graded, kept in {results}. "
                  "The same command grades the others.", file=sys.stderr)
            raise
    progress.end("finished")
    return rows


def grade_class(submissions: Path, out: Path, args) -> list[Row]:
    everyone = class_folders(submissions)
    student_dirs = [path for path in everyone if not args.shard or in_shard(path.name, args.shard)]
    if args.shard:
        print(f"Shard {args.shard[0]}/{args.shard[1]}: {len(student_dirs)} of the {len(everyone)} students.")
        if not student_dirs:
            return []
    if args.container_sandbox:
        try:
            container_sandbox.check_container(container_sandbox.kernel_uids(args.workers))
        except container_sandbox.ContainerNotReady as error:
            raise SandboxUnavailable(str(error)) from None
        bwrap, prefix = None, []
        isolation = "student code runs as users of its own in this container, which has no network (--container-sandbox)"
    elif args.sandbox:
        bwrap = os.environ.get(BWRAP_VARIABLE) or shutil.which("bwrap")
        prefix = worker_prefix(bwrap)
        isolation = "student code runs in a bubblewrap sandbox, without network"
    else:
        bwrap, prefix = None, []
        isolation = f"WARNING: {UNSANDBOXED}"
    print(f"Grading {len(student_dirs)} students with {args.workers} workers; {isolation}.")
    notebooks = graded_notebooks()
    out.mkdir(parents=True, exist_ok=True)  # before the kernels start, so that the sandbox can hide it
    if args.restart:
        shutil.rmtree(out / RESULTS, ignore_errors=True)
    valid = [path for path in student_dirs if STUDENT_ID.match(path.name)]
    grading = grading_key(notebooks, args)
    fingerprints = {path.name: submission_fingerprint(path, notebooks, grading) for path in valid}
    run = Path(tempfile.mkdtemp(prefix="resnets-grading-")).resolve()
    try:
        master = run / "master"
        # each edition's course, to repair each submission against the release of its own edition; at once, as each
        # build is mostly an nbgrader process of its own
        with concurrent.futures.ThreadPoolExecutor() as pool:
            for built in [pool.submit(build_course, edition_course(master, edition), edition, GRADER_COURSE_FILES)
                          for edition in ["en", *edition_releases(master)]]:
                built.result()
        rows = [
            Row(path.name, notebook, grade_id, 0.0, points, "not graded",
                "the folder name is not a usable student id (letters, digits, _ . @ + - only)")
            for path in student_dirs if path not in valid
            for notebook in notebooks
            for grade_id, points in grade_cells(master / "source" / ASSIGNMENT / f"{notebook}.ipynb")
        ]
        hidden = [KIT_DIR, submissions.resolve(), out.resolve(), run]  # the sandbox shows only Python and the student's folder
        users = container_sandbox.kernel_users(hidden, args.workers) if args.container_sandbox else contextlib.nullcontext()
        with users as args.kernel_users:
            workers = WorkerPool(prefix, run)
            grade = functools.partial(grade_student, run=run, master=master, notebooks=notebooks, workers=workers,
                                      bwrap=bwrap, hidden=hidden, out=out, args=args)
            try:
                rows = in_csv_order(rows + grade_remaining(valid, fingerprints, out / RESULTS, args.workers, grade))
            finally:
                workers.close()
        note = CONTAINER_SANDBOXED if args.container_sandbox else None if args.sandbox else UNSANDBOXED
        if note:
            for row in rows:
                row.reason = f"{row.reason}; {note}" if row.reason else note
        return rows
    finally:
        if args.keep:
            print(f"Kept the grading folders in {run}.")
        else:
            shutil.rmtree(run, ignore_errors=True)


# --- The worker: one student, inside the isolation --------------------------------------------


def sandbox_failure(log: str) -> str | None:
    """What the kernel's sandbox said when it could not be built or failed its own check, if it did."""
    lines = [line.strip() for line in log.splitlines() if SANDBOX_FAILED in line or line.startswith("bwrap: ")]
    return lines[-1] if lines else None


def kernel_lost(log: str) -> bool:
    """True when an nbgrader log says the kernel died or never started."""
    return any(sign in log for sign in ("DeadKernelError", "Kernel died", "kernel died"))


def failure_reason(log: str) -> str:
    """Turn an nbgrader log of a failed autograde into a sentence for the student and the instructor."""
    limit = [line.strip() for line in log.splitlines() if line.startswith(LIMIT_REACHED)]
    if limit:
        return f"the sandbox's limit stopped the kernel: {limit[-1].removeprefix(LIMIT_REACHED + ': ')}"
    sandbox = sandbox_failure(log)
    if sandbox:
        return f"GRADER PROBLEM: the sandbox could not be set up, so no student code ran ({sandbox[:300]})"
    if "Kernel died before replying to kernel_info" in log:
        return "GRADER PROBLEM: the kernel did not start (not the student's doing; see the log with --keep)"
    if kernel_lost(log):
        return "the kernel died while running this notebook (a crash, or more memory than allowed)"
    if "Timeout" in log or "timed out" in log:
        return "this notebook took too long to run"
    errors = [line.strip() for line in log.splitlines() if "Error" in line and "nbgrader" not in line]
    return "the grader could not run this notebook" + (f" ({errors[-1][:160]})" if errors else "")


def cell_reasons(notebook: Path, timeout: float) -> dict[str, str]:
    """For each graded cell of an autograded notebook, the error it showed ('' when none), in the notebook's language.

    A graded cell usually fails because of an earlier one (a loop stopped at the time limit,
    memory running out), so its reason names that cell too.
    """
    autograded = nbformat.read(notebook, as_version=4)
    speak = speaking(edition_of(autograded))
    reasons, earlier = {}, []
    for number, cell in enumerate(autograded.cells, start=1):
        errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
        names = {error["ename"] for error in errors}
        if "CellTimeoutError" in names or "KeyboardInterrupt" in names:
            earlier.append(speak(N_("cell {number} was stopped after {seconds} s")).format(number=number, seconds=f"{timeout:g}"))
        elif "MemoryError" in names:
            earlier.append(speak(N_("cell {number} ran out of memory (MemoryError)")).format(number=number))
        elif any(error["ename"] == "BlockingIOError" and "Resource temporarily unavailable" in error["evalue"] for error in errors):
            earlier.append(speak(N_("cell {number} reached the sandbox's process limit of {limit} (BlockingIOError)")).format(
                number=number, limit=PROCESS_LIMIT))
        elif errors and cell.metadata.get("nbgrader", {}).get("solution"):
            earlier.append(speak(N_("your cell {number} raised {error}")).format(
                number=number, error=f"{errors[0]['ename']}: {errors[0]['evalue'][:120]}"))
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id:
            continue
        if not errors:
            reasons[grade_id] = ""
            continue
        if errors[0]["ename"] == "NotImplementedError":
            reason = speak(N_("NotImplementedError: the exercise is not done yet"))
        else:
            reason = f"{errors[0]['ename']}: {errors[0]['evalue']}"[:300]
        after = speak(N_(" (after: {earlier})")).format(earlier="; ".join(earlier[-2:]))
        reasons[grade_id] = reason + (after if earlier and earlier[-1] not in reason else "")
    return reasons


def edition_course(master: Path, edition: str) -> Path:
    """The course folder of an edition: the master course for English, one beside it for each other edition."""
    return master if edition == "en" else master.with_name(f"master-{edition}")


def edition_releases(master: Path) -> dict[str, Path]:
    """The release folders of the course's other editions, built beside the master course ({"zh": .../release})."""
    return {edition: edition_course(master, edition) / "release" for edition in EDITIONS
            if edition != "en" and source_notebooks(edition)}


def edited_locked_cells(submitted: nbformat.NotebookNode, release: Path) -> list[str]:
    """Locked cells the student changed (nbgrader restores them before grading), against the release of their edition."""
    original = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in nbformat.read(release, 4).cells
                if cell.metadata.get("nbgrader", {}).get("locked")}
    theirs = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source for cell in submitted.cells}
    return [grade_id for grade_id, source in original.items() if grade_id in theirs and theirs[grade_id] != source]


@contextlib.contextmanager
def output_to(log_path: Path):
    """Send this process's stdout and stderr, and so those of the kernels it starts, to `log_path` for a while:
    what the kernel's sandbox prints when it fails is how failure_reason() tells a grader problem."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_nbgrader(step: str, course: Path, log_path: Path, **coursedir: str) -> str:
    """Run an nbgrader step ("autograde" or "generate_feedback") in this process, as its command would from
    the `course` folder with its nbgrader_config.py; return its log, with what its kernels printed."""
    import logging
    import traceback

    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    with output_to(log_path):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"[{step} | %(levelname)s] %(message)s"))
        app = None
        try:
            directory = CourseDirectory(config=config)
            for name, value in coursedir.items():
                setattr(directory, name, value)
            app = {"autograde": Autograde, "generate_feedback": GenerateFeedback}[step](coursedir=directory, config=config)
            app.log.addHandler(handler)
            app.log.setLevel(logging.INFO)
            app.force = True
            app.start()
        except Exception:  # nbgrader's own failure: its traceback goes to the log, which failure_reason() reads
            traceback.print_exc()
        finally:
            if app is not None:
                app.log.removeHandler(handler)
    return log_path.read_text()


def serve() -> None:
    """The worker's loop: grade the student whose folder comes on each line of stdin, answer with that line.

    The answers go out on the original stdout; everything else printed goes to stderr, the worker's log."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        home = Path(line.strip())
        try:
            grade_in_worker(home)
        except Exception:  # one student's grader failure must not stop the others; collect() reports it
            import traceback
            traceback.print_exc()
        finally:
            empty_slot(home.parent)
        answers.write(f"{home}\n")


class KernelZygote:
    """The worker's kernel zygote (tools/grading/kernel_zygote.py): started with the worker's first student, it
    serves every kernel of the worker's students. Its view shows one folder, the slot, where the student being
    graded is put (nbgrader's autograded folder), and from where the student's folder is moved once graded."""

    READY_SECONDS = 300  # importing TensorFlow on a busy machine

    def __init__(self, run: Path, settings: dict):
        self.settings = settings
        folder = Path(tempfile.mkdtemp(prefix="zygote-", dir=run))
        self.slot = folder / "slot"
        self.slot.mkdir()
        self.address = str(folder / "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)  # inside the grading run, which no kernel sees
        listener.listen(4)
        self.process = subprocess.Popen(kernel_zygote.zygote_command(settings, str(self.slot), listener.fileno()),
                                        # not this worker's stdin, where its students' folders come: a kernel could read them
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, pass_fds=[listener.fileno()], text=True)
        listener.close()
        ready = select.select([self.process.stdout], [], [], self.READY_SECONDS)[0]
        if not ready or self.process.stdout.readline().strip() != kernel_zygote.READY:
            self.process.kill()
            raise OSError("the kernel zygote did not start (why: the lines above in this worker's log)")

    def serves(self, settings: dict) -> bool:
        return self.process.poll() is None and settings == self.settings


ZYGOTES: dict[Path, KernelZygote | None] = {}  # the worker's, by grading run (None: it could not start)


def kernel_zygote_for(home: Path, settings: dict) -> KernelZygote | None:
    """The zygote for a student's kernels, started if needed; None where kernels start one by one (--no-sandbox,
    --container-sandbox) or where it could not start (then each kernel builds its own view, and checks it)."""
    if not settings["isolated"] or settings["container"]:
        return None
    run, class_settings = home.parent, {**settings, "sandbox": None}
    if run not in ZYGOTES or (ZYGOTES[run] and not ZYGOTES[run].serves(class_settings)):
        try:
            ZYGOTES[run] = KernelZygote(run, class_settings)
        except OSError as error:
            print(f"Kernels start one by one, slower: {error}", file=sys.stderr, flush=True)
            ZYGOTES[run] = None
    zygote = ZYGOTES[run]
    if zygote:
        os.environ[ZYGOTE_VARIABLE] = zygote.address
    else:
        os.environ.pop(ZYGOTE_VARIABLE, None)
    return zygote


def empty_slot(run: Path) -> None:
    """Move each student's folder out of the zygote's slot to where collect() reads it: the next student's kernels see the slot."""
    if ZYGOTES.get(run):
        for folder in list(ZYGOTES[run].slot.iterdir()):
            (run / folder.name / "sandbox").mkdir(parents=True, exist_ok=True)
            shutil.move(folder, run / folder.name / "sandbox" / folder.name)


def grade_in_worker(home: Path) -> None:
    """Autograde each notebook of one student separately, so one broken notebook spares the others."""
    from nbgrader.api import Gradebook

    student = home.name
    settings = json.loads((home / "sandbox.json").read_text())
    zygote = kernel_zygote_for(home, settings)
    autograded = zygote.slot if zygote else home / "sandbox"  # where the kernels see the student's folder
    course, sandbox = home / "course", autograded / student / ASSIGNMENT
    stash = home / "stash"
    stash.mkdir()
    os.environ.update(JUPYTER_PATH=str(home / "jupyter"), MPLBACKEND="Agg", MPLCONFIGDIR=str(home / "mpl"))
    submitted = course / "submitted" / student / ASSIGNMENT
    results, timings = {}, {}
    for path in sorted(submitted.glob("*.ipynb")):
        notebook = path.stem
        graded = sandbox / path.name
        for attempt in (1, 2):  # a kernel lost to a busy machine gets a second chance; a crash repeats
            started = time.perf_counter()
            log = run_nbgrader("autograde", course, home / "logs" / f"{notebook}-{attempt}.log", autograded_directory=str(autograded),
                               assignment_id=ASSIGNMENT, student_id=student, notebook_id=notebook)
            timings[f"autograde {notebook}"] = timings.get(f"autograde {notebook}", 0) + time.perf_counter() - started
            if graded.is_file() or not kernel_lost(log) or sandbox_failure(log):
                break
        if not graded.is_file():
            results[notebook] = {"__failure__": failure_reason(log)}
            continue
        reasons = cell_reasons(graded, settings["timeout"])
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            for grade_id in reasons:
                try:
                    grade = gradebook.find_grade(grade_id, notebook, ASSIGNMENT, student)
                except Exception:  # not a graded cell (a solution cell): nothing to score
                    continue
                error = reasons[grade_id]
                results.setdefault(notebook, {})[grade_id] = (float(grade.score or 0), error, not error)
        for grade_id, _ in grade_cells(home.parent / "master" / "source" / ASSIGNMENT / path.name):
            if grade_id not in reasons:
                results.setdefault(notebook, {})[grade_id] = (0.0, f"{GRADER_PROBLEM}: test cell {grade_id} was not in the graded notebook (the repair should have restored it)", False)
        theirs = nbformat.read(path, 4)
        edition = edition_of(theirs)
        master = home.parent / "master"
        releases = {"en": master / "release", **edition_releases(master)}
        edits = edited_locked_cells(theirs, releases[edition] / ASSIGNMENT / path.name)
        if edits:
            note = speaking(edition)(N_("restored before grading, as the student had edited them: {cells}")).format(cells=", ".join(edits))
            for grade_id, (score, error, passed) in results.get(notebook, {}).items():
                results[notebook][grade_id] = (score, f"{error}; {note}" if error else note, passed)
        shutil.move(graded, stash / path.name)  # no hidden test stays beside the next notebook's code
    for path in stash.glob("*.ipynb"):
        shutil.move(path, sandbox / path.name)
    started = time.perf_counter()
    run_nbgrader("generate_feedback", course, home / "logs" / "feedback.log", autograded_directory=str(autograded),
                 assignment_id=ASSIGNMENT, student_id=student)
    timings["generate_feedback"] = time.perf_counter() - started
    (home / "results.json").write_text(json.dumps(results))
    (home / "timings.json").write_text(json.dumps(timings))  # seconds per step, for make bench-grade's profile


def argument_parser() -> argparse.ArgumentParser:
    """The command line of `python -m tools.grading.grade SUBMISSIONS ...` (merge and export have their own, in grade_outputs)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Also: `python -m tools.grading.grade merge OUT1 OUT2 ... --out MERGED` and "
               "`python -m tools.grading.grade export GRADES --format lms gradescope` (each with --help).")
    parser.add_argument("submissions", type=Path, nargs="?", help="folder of <student_id>/<notebook>.ipynb")
    parser.add_argument("--out", type=Path, help="where grades.csv and feedback/ go (default grades/, with --shard grades/shard-i-of-N/)")
    parser.add_argument("--shard", type=shard_argument, metavar="i/N",
                        help="grade only shard i of N: the students whose id hashes to it (merge the N outputs with `merge`)")
    parser.add_argument("--restart", action="store_true",
                        help="grade every student again, instead of keeping the results an earlier run left in OUT/results")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="students graded at once")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one cell may run")
    parser.add_argument("--student-timeout", type=float, default=900, help="seconds one student may take in all")
    parser.add_argument("--memory", type=float, default=4, help="GiB of memory one submission may use")
    parser.add_argument("--keep", action="store_true", help="keep the grading folders, to look into them")
    isolation = parser.add_mutually_exclusive_group()
    isolation.add_argument("--container-sandbox", action="store_true",
                           help="where bubblewrap cannot work, in a container of its own run as root without network: "
                                "each kernel runs as an unprivileged user (tools/grading/container_sandbox.py)")
    isolation.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                           help="grade where no sandbox can be built: student code can read everything and use the network")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["merge"], ["export"]):
        from tools.grading import grade_outputs  # it imports this module, so it cannot be imported at the top
        return grade_outputs.main(argv)
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return serve()
    if args.submissions is None:
        parser.error("name the submissions folder: python -m tools.grading.grade SUBMISSIONS")
    if args.out is None:
        args.out = GRADES_DIR / f"shard-{args.shard[0]}-of-{args.shard[1]}" if args.shard else GRADES_DIR
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a batch system's stop ends the run as Ctrl-C does
    start = time.perf_counter()
    try:
        rows = grade_class(args.submissions, args.out, args)
    except SandboxUnavailable as error:
        command = shlex.join([sys.executable, "-m", "tools.grading.grade", str(args.submissions)])
        how = container_sandbox.HOW_TO_FIX if args.container_sandbox else HOW_TO_SANDBOX.format(command=command)
        print(f"Error: student code cannot be sandboxed here: {error}.\n{how}", file=sys.stderr)
        sys.exit(2)
    except GradingError as error:
        sys.exit(f"Error: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
    path = write_grades(rows, args.out)
    mark_shard(args.out, args.shard)
    students = sorted({row.student_id for row in rows})
    minutes = (time.perf_counter() - start) / 60
    print(f"Wrote {path} ({len(rows)} rows) and feedback for {len(students)} students in {minutes:.1f} min.")
    for student in students:
        mine = [row for row in rows if row.student_id == student]
        print(f"  {student}: {sum(row.score for row in mine):g} / {sum(row.max_score for row in mine):g}")
    broken = sorted({row.student_id for row in rows if row.reason.startswith(GRADER_PROBLEM)})
    if broken:
        print(f"WARNING: the grader itself failed for {', '.join(broken)}; their rows say '{GRADER_PROBLEM}'. "
              "The same command grades them again (and keeps the others).")


if __name__ == "__main__":
    main()
