"""Grade a class: `python -m tools.grade SUBMISSIONS` (what `make grade SUBMISSIONS=DIR` runs).

SUBMISSIONS holds one folder per student, `SUBMISSIONS/<student_id>/<notebook>.ipynb`.
nbgrader does the grading (`autograde`, then `generate_feedback`); this command arranges a
private course folder per student, runs the students in parallel, and collects
`grades/grades.csv` (one row per student and graded cell) and `grades/feedback/<student_id>/`.

Every student gets rows whatever happens, and one student's failure never stops the others:
a cell that runs too long is interrupted (--timeout), a kernel that dies or a notebook that
is not valid JSON scores zero with the reason, memory is capped per submission (--memory).
Student code runs in a bubblewrap sandbox (tools/sandbox_kernel.py): without network, in a
folder holding only the release files and the student's notebooks, unable to see the kit
(source notebooks, .git), the gradebook or other students. Where that sandbox cannot be built,
grading stops (exit code 2) unless --no-sandbox says to grade unprotected, which every row then says.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from resnets_utils import KIT_DIR
from tools.nbgrader_course import ASSIGNMENT, build_course, graded_notebooks, nbgrader, write_config
from tools.sandbox_kernel import KERNEL_NAMESPACES, SANDBOX_FAILED

GRADES_DIR = KIT_DIR / "grades"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
GRADING_FILES = ("resnets_utils.py",)  # what the graded notebooks need beside them
SANDBOX_KERNEL = KIT_DIR / "tools" / "sandbox_kernel.py"
BWRAP_VARIABLE = "RESNETS_BWRAP"  # where bwrap is, when it is not `bwrap` on PATH
# Each worker runs in its own network namespace, whose loopback bwrap brings up (nbgrader and the kernel talk over
# it), and its own PID namespace, so that stopping a worker that took too long stops its nbgrader and kernel too.
WORKER_NAMESPACE = ("--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc", "--die-with-parent")
UNSANDBOXED = "graded with --no-sandbox: student code could read the hidden tests and other students' work, and use the network"
HOW_TO_SANDBOX = f"""\
Grading runs student code in a bubblewrap sandbox. Install it (`apt-get install bubblewrap`,
`dnf install bubblewrap`) or point {BWRAP_VARIABLE}=/path/to/bwrap at it; as a user other than root
it also needs unprivileged user namespaces (Debian: `sysctl kernel.unprivileged_userns_clone=1`;
Ubuntu 24.04 and later: an AppArmor profile that allows bwrap to use them).
To grade anyway, unprotected (student code can then read the hidden tests and other students'
work, and use the network): {{command}} --no-sandbox
Every row of grades.csv then says so."""
COLUMNS = ("student_id", "notebook", "grade_id", "score", "max_score", "status", "reason")


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
    """Make `run/<student>/course`, nbgrader's course folder for one student; return the notebooks it cannot grade."""
    student = student_dir.name
    course = run / student / "course"
    submitted = course / "submitted" / student / ASSIGNMENT
    submitted.mkdir(parents=True)
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy2(master / "gradebook.db", course / "gradebook.db")
    for name in GRADING_FILES:
        shutil.copy2(master / "source" / ASSIGNMENT / name, course / "source" / ASSIGNMENT / name)
    problems = {}
    for notebook in notebooks:
        path = student_dir / f"{notebook}.ipynb"
        if not path.is_file():
            problems[notebook] = f"no submitted notebook {path.name}"
            continue
        try:
            nbformat.validate(nbformat.read(path, as_version=4))
        except Exception as error:  # nbformat raises JSON, validation and version errors
            first_line = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            problems[notebook] = f"{path.name} is not a valid notebook file ({first_line})"
            continue
        shutil.copyfile(path, submitted / path.name)
    return problems


def worker_settings(run: Path, student: str, hidden: list[Path], bwrap: str | None, args) -> None:
    """Write the sandbox settings, the kernelspec and the nbgrader config of one student's worker."""
    home = run / student
    (home / "logs").mkdir()
    settings = home / "sandbox.json"
    settings.write_text(json.dumps({
        "isolated": args.sandbox, "bwrap": bwrap, "hide": [str(path) for path in hidden],
        "sandbox": str(home / "sandbox"), "memory_bytes": int(args.memory * 2**30), "timeout": args.timeout,
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
from tools.grading_preprocessors import RejectTampering, ShowStudentFiles, SkipDemos
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


def run_worker(prefix: list[str], run: Path, student: str, timeout: float) -> None:
    """Grade one student in a child process; a hang past `timeout` is killed and recorded."""
    home = run / student
    command = [*prefix, sys.executable, "-m", "tools.grade", "--worker", str(home)]
    with open(home / "logs" / "worker.log", "w") as log:
        try:
            subprocess.run(command, cwd=KIT_DIR, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                           start_new_session=True)
        except subprocess.TimeoutExpired:
            (home / "worker-timeout").write_text(f"{timeout:.0f}")


def grade_cells(notebook: Path) -> list[tuple[str, float]]:
    """(grade_id, points) of each graded cell of a source notebook, in order."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [
        (cell.metadata["nbgrader"]["grade_id"], float(cell.metadata["nbgrader"].get("points", 0)))
        for cell in cells if cell.metadata.get("nbgrader", {}).get("grade")
    ]


def collect(run: Path, master: Path, student: str, notebooks: list[str], problems: dict[str, str]) -> list[Row]:
    """The rows of one student: the worker's results, or zeros with the reason it could not give any."""
    home = run / student
    results = home / "results.json"
    scored = json.loads(results.read_text()) if results.is_file() else {}
    rows = []
    for notebook in notebooks:
        for grade_id, points in grade_cells(master / "source" / ASSIGNMENT / f"{notebook}.ipynb"):
            if notebook in problems:
                reason = problems[notebook]
            elif (home / "worker-timeout").exists():
                reason = f"grading stopped after {(home / 'worker-timeout').read_text()} s"
            else:
                reason = None
            result = scored.get(notebook, {}).get(grade_id)
            if reason or result is None:
                reason = reason or scored.get(notebook, {}).get("__failure__", "the grader could not run this notebook")
                rows.append(Row(student, notebook, grade_id, 0.0, points, "not graded", reason))
            else:
                score, why, passed = result
                rows.append(Row(student, notebook, grade_id, score, points, "passed" if passed else "failed", why))
    return rows


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


def grade_class(submissions: Path, out: Path, args) -> list[Row]:
    if not submissions.is_dir():
        raise GradingError(f"Submissions folder not found: {submissions}. It should hold <student_id>/<notebook>.ipynb.")
    student_dirs = sorted(path for path in submissions.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not student_dirs:
        raise GradingError(f"{submissions} has no student folders; expected {submissions}/<student_id>/<notebook>.ipynb.")
    if args.sandbox:
        bwrap = os.environ.get(BWRAP_VARIABLE) or shutil.which("bwrap")
        prefix = worker_prefix(bwrap)
        isolation = "student code runs in a bubblewrap sandbox, without network"
    else:
        bwrap, prefix = None, []
        isolation = f"WARNING: {UNSANDBOXED}"
    print(f"Grading {len(student_dirs)} students with {args.workers} workers; {isolation}.")
    notebooks = graded_notebooks()
    out.mkdir(parents=True, exist_ok=True)  # before the kernels start, so that the sandbox can hide it
    run = Path(tempfile.mkdtemp(prefix="resnets-grading-")).resolve()
    try:
        master = run / "master"
        build_course(master)
        valid = [path for path in student_dirs if STUDENT_ID.match(path.name)]
        rows = [
            Row(path.name, notebook, grade_id, 0.0, points, "not graded",
                "the folder name is not a usable student id (letters, digits, _ . @ + - only)")
            for path in student_dirs if path not in valid
            for notebook in notebooks
            for grade_id, points in grade_cells(master / "source" / ASSIGNMENT / f"{notebook}.ipynb")
        ]
        problems = {path.name: prepare_student(run, master, path, notebooks) for path in valid}
        students = [path.name for path in valid]
        hidden = [KIT_DIR, submissions.resolve(), out.resolve(), run]  # the sandbox shows only Python and the student's folder
        for student in students:
            worker_settings(run, student, hidden, bwrap, args)
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            jobs = {pool.submit(run_worker, prefix, run, student, args.student_timeout): student for student in students}
            for done, job in enumerate(concurrent.futures.as_completed(jobs), start=1):
                student = jobs[job]
                rows += collect(run, master, student, notebooks, problems[student])
                copy_feedback(run, student, out)
                print(f"  [{done}/{len(students)}] {student}", flush=True)
        rows.sort(key=lambda row: (row.student_id, row.notebook))
        if not args.sandbox:
            for row in rows:
                row.reason = f"{row.reason}; {UNSANDBOXED}" if row.reason else UNSANDBOXED
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
    """For each graded cell of an autograded notebook, the error it showed ('' when none).

    A graded cell usually fails because of an earlier one (a loop stopped at the time limit,
    memory running out), so its reason names that cell too.
    """
    reasons, earlier = {}, []
    for number, cell in enumerate(nbformat.read(notebook, as_version=4).cells, start=1):
        errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
        names = {error["ename"] for error in errors}
        if "CellTimeoutError" in names or "KeyboardInterrupt" in names:
            earlier.append(f"cell {number} was stopped after {timeout:g} s")
        elif "MemoryError" in names:
            earlier.append(f"cell {number} ran out of memory (MemoryError)")
        elif errors and cell.metadata.get("nbgrader", {}).get("solution"):
            earlier.append(f"your cell {number} raised {errors[0]['ename']}: {errors[0]['evalue'][:120]}")
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id:
            continue
        if not errors:
            reasons[grade_id] = ""
            continue
        if errors[0]["ename"] == "NotImplementedError":
            reason = "NotImplementedError: the exercise is not done yet"
        else:
            reason = f"{errors[0]['ename']}: {errors[0]['evalue']}"[:300]
        reasons[grade_id] = reason + (f" (after: {'; '.join(earlier[-2:])})" if earlier and earlier[-1] not in reason else "")
    return reasons


def edited_locked_cells(submitted: Path, release: Path) -> list[str]:
    """Locked cells the student changed (nbgrader restores them before grading)."""
    original = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in nbformat.read(release, 4).cells
                if cell.metadata.get("nbgrader", {}).get("locked")}
    theirs = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source for cell in nbformat.read(submitted, 4).cells}
    return [grade_id for grade_id, source in original.items() if grade_id in theirs and theirs[grade_id] != source]


def worker(home: Path) -> None:
    """Autograde each notebook of one student separately, so one broken notebook spares the others."""
    from nbgrader.api import Gradebook

    student = home.name
    settings = json.loads((home / "sandbox.json").read_text())
    course, sandbox = home / "course", home / "sandbox" / student / ASSIGNMENT
    stash = home / "stash"
    stash.mkdir()
    jupyter_path = {"JUPYTER_PATH": str(home / "jupyter"), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home / "mpl")}
    submitted = course / "submitted" / student / ASSIGNMENT
    results = {}
    for path in sorted(submitted.glob("*.ipynb")):
        notebook = path.stem
        graded = sandbox / path.name
        for attempt in (1, 2):  # a kernel lost to a busy machine gets a second chance; a crash repeats
            log = nbgrader(course, "autograde", ASSIGNMENT, f"--student={student}", f"--notebook={notebook}", "--force",
                           **jupyter_path).stdout
            (home / "logs" / f"{notebook}-{attempt}.log").write_text(log)
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
                results.setdefault(notebook, {})[grade_id] = (0.0, "this test cell was deleted from the submission, so it scores 0", False)
        edits = edited_locked_cells(path, home.parent / "master" / "release" / ASSIGNMENT / path.name)
        if edits:
            note = f"restored before grading, as the student had edited them: {', '.join(edits)}"
            for grade_id, (score, error, passed) in results.get(notebook, {}).items():
                results[notebook][grade_id] = (score, f"{error}; {note}" if error else note, passed)
        shutil.move(graded, stash / path.name)  # no hidden test stays beside the next notebook's code
    for path in stash.glob("*.ipynb"):
        shutil.move(path, sandbox / path.name)
    nbgrader(course, "generate_feedback", ASSIGNMENT, f"--student={student}", "--force", **jupyter_path)
    (home / "results.json").write_text(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, nargs="?", help="folder of <student_id>/<notebook>.ipynb")
    parser.add_argument("--out", type=Path, default=GRADES_DIR, help="where grades.csv and feedback/ go")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="students graded at once")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one cell may run")
    parser.add_argument("--student-timeout", type=float, default=900, help="seconds one student may take in all")
    parser.add_argument("--memory", type=float, default=4, help="GiB of memory one submission may use")
    parser.add_argument("--keep", action="store_true", help="keep the grading folders, to look into them")
    parser.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="grade where no sandbox can be built: student code can read everything and use the network")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    if args.submissions is None:
        parser.error("name the submissions folder: python -m tools.grade SUBMISSIONS")
    start = time.perf_counter()
    try:
        rows = grade_class(args.submissions, args.out, args)
    except SandboxUnavailable as error:
        command = shlex.join([sys.executable, "-m", "tools.grade", str(args.submissions)])
        print(f"Error: student code cannot be sandboxed here: {error}.\n{HOW_TO_SANDBOX.format(command=command)}", file=sys.stderr)
        sys.exit(2)
    except GradingError as error:
        sys.exit(f"Error: {error}")
    path = write_grades(rows, args.out)
    students = sorted({row.student_id for row in rows})
    minutes = (time.perf_counter() - start) / 60
    print(f"Wrote {path} ({len(rows)} rows) and feedback for {len(students)} students in {minutes:.1f} min.")
    for student in students:
        mine = [row for row in rows if row.student_id == student]
        print(f"  {student}: {sum(row.score for row in mine):g} / {sum(row.max_score for row in mine):g}")
    broken = sorted({row.student_id for row in rows if row.reason.startswith("GRADER PROBLEM")})
    if broken:
        print(f"WARNING: the grader itself failed for {', '.join(broken)}; their rows say 'GRADER PROBLEM'. Grade them again.")


if __name__ == "__main__":
    main()
