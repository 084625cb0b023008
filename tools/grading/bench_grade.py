"""Measure grading speed: `python -m tools.grading.bench_grade [N]` (what `make bench-grade` runs).

Makes a class of N submissions (default 20): the reference solution and wrong solutions from
the mutation catalogue, as a real class would hand them in, grades it with `tools.grading.grade`
and prints submissions per minute.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from resnets_utils import KIT_DIR
from tools.grading.mutations import MUTATIONS, fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course, graded_notebooks


def make_class(release: Path, folder: Path, count: int) -> None:
    """Student i hands in the reference (every fourth student) or one mutation of the catalogue."""
    for number in range(count):
        solutions = reference_solutions()
        if number % 4:
            mutation = MUTATIONS[number % len(MUTATIONS)]
            solutions[mutation.grade_id] = mutation.source()
        student = folder / f"student{number + 1:02d}"
        student.mkdir(parents=True)
        for name in graded_notebooks():
            nbformat.write(fill_in(release / f"{name}.ipynb", solutions), student / f"{name}.ipynb")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    work = Path(tempfile.mkdtemp(prefix="resnets-bench-grade-"))
    try:
        make_class(build_course(work / "course"), work / "submissions", count)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tools.grading.grade", str(work / "submissions"), "--out", str(work / "grades")],
                       cwd=KIT_DIR, check=True)
        minutes = (time.perf_counter() - start) / 60
        print(f"Graded {count} submissions in {minutes:.1f} min: {count / minutes:.1f} submissions per minute.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
