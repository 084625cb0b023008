"""Grade one Gradescope submission with the kit's grader: what run_autograder runs, from AUTOGRADER/source.

Gradescope puts the student's files in AUTOGRADER/submission (/autograder/submission) and shows the student
AUTOGRADER/results/results.json; what this program prints goes to AUTOGRADER/results/stdout, which only
instructors see. The notebooks are graded as `make grade` grades a class of one, in a temporary folder, with
the options the bundle was built with (autograder/grade_options); results.json has one test per graded cell,
with the reason from grades.csv (the tests' messages, never their code).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from resnets_utils import KIT_DIR
from tools.grading.grade_outputs import gradescope_results, read_grades

STUDENT = "student"  # the one student of the class; Gradescope knows who it is
GRADE_OPTIONS = KIT_DIR / "autograder" / "grade_options"  # written by build_bundle.py
SANDBOX_REFUSED = 2  # the grader's exit code when student code cannot be sandboxed and --no-sandbox was not given
NOT_GRADED = ("The autograder could not grade this submission; this is not your doing, and your instructor can "
              "see why. Your notebooks are kept: once it is fixed, your instructor can grade them again.")


def grade_options() -> list[str]:
    """The grader's options chosen when the bundle was built (none when it was built without)."""
    return shlex.split(GRADE_OPTIONS.read_text()) if GRADE_OPTIONS.is_file() else []


def submitted_notebooks(submission: Path) -> dict[str, Path]:
    """name -> path of each notebook handed in: at the top of the submission or in a folder of it (an uploaded
    zip or a GitHub repository keeps its folders), the one nearest the top when a name is there twice."""
    found: dict[str, Path] = {}
    for path in sorted(submission.rglob("*.ipynb"), key=lambda path: (len(path.parts), str(path))):
        if ".ipynb_checkpoints" not in path.parts:
            found.setdefault(path.name, path)
    return found


def grade(submission: Path, work: Path) -> tuple[dict, int]:
    """results.json's content for the notebooks in `submission`, and the grader's exit code."""
    student = work / "submissions" / STUDENT
    student.mkdir(parents=True)
    notebooks = submitted_notebooks(submission)
    print(f"Notebooks handed in: {', '.join(str(path.relative_to(submission)) for path in notebooks.values()) or 'none'}.", flush=True)
    for name, path in notebooks.items():
        shutil.copyfile(path, student / name)
    out = work / "grades"
    command = [sys.executable, "-m", "tools.grading.grade", str(student.parent), "--out", str(out), *grade_options()]
    print(f"Running {shlex.join(command)}", flush=True)
    code = subprocess.run(command, cwd=KIT_DIR, stderr=subprocess.STDOUT).returncode  # all to stdout, which instructors see
    if code == SANDBOX_REFUSED:
        print("The grader refused to run student code unprotected (above: why). On a Gradescope image where the "
              "bubblewrap sandbox cannot be built, you may rebuild the bundle with `make gradescope-autograder "
              "GRADE_OPTIONS=--container-sandbox` (each kernel as an unprivileged user; it needs a container without "
              "network) or `GRADE_OPTIONS=--no-sandbox` once you have read what each exposes (autograder/README.md), "
              "upload it again and regrade the submissions.")
    if code != 0:
        return {"score": 0.0, "output": NOT_GRADED}, code
    return gradescope_results(read_grades(out)), 0


def main(argv: list[str]) -> None:
    """`python -m autograder.grade_submission AUTOGRADER`: write AUTOGRADER/results/results.json (0 points and a note
    when the grader fails, so that the student sees why rather than nothing); the grader's exit code."""
    if len(argv) != 1:
        sys.exit("Usage: python -m autograder.grade_submission AUTOGRADER (the folder laid out like /autograder)")
    autograder = Path(argv[0])
    submission, results = autograder / "submission", autograder / "results" / "results.json"
    if not submission.is_dir():
        sys.exit(f"Error: {submission} does not exist; Gradescope puts the student's files there "
                 "(set RESNETS_AUTOGRADER_DIR to a folder laid out like /autograder to run elsewhere)")
    with tempfile.TemporaryDirectory(prefix="resnets-gradescope-") as work:
        report, code = grade(submission, Path(work))
    results.parent.mkdir(parents=True, exist_ok=True)
    partial = results.with_name("results.json.partial")
    partial.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(partial, results)
    print(f"Wrote {results}: {report['score']:g} points.")
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
