"""Measure grading speed: `python -m tools.grading.bench_grade [N] [--workers W]` (what `make bench-grade` runs).

Makes a class of N submissions (default 20): the reference solution and wrong solutions from
the mutation catalogue, as a real class would hand them in, grades it with `tools.grading.grade`
and prints submissions per minute, the CPU time per student, and where a student's grading time
goes (each nbgrader step, measured by the workers), so that the next speed-up aims at the right place.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

import nbformat

from resnets_utils import KIT_DIR
from tools import cpu_model
from tools.docs import benchmarks
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


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat): the grader's kernels run in
    sandboxes whose CPU time never reaches this process's own accounting, so the machine's is what counts."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def profile(run: Path) -> dict[str, float]:
    """Mean seconds per student of each step the workers timed (tools/grading/grade.py writes timings.json)."""
    timings = [json.loads(path.read_text()) for path in run.glob("*/timings.json")]
    steps = sorted({step for timing in timings for step in timing})
    return {step: mean(timing.get(step, 0.0) for timing in timings) for step in steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=20, help="submissions in the class")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="students graded at once")
    parser.add_argument("--record", action="store_true",
                        help="append the figures to benchmarks/records.jsonl (make bench-grade; the default class only)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resnets-bench-grade-"))
    try:
        make_class(build_course(work / "course"), work / "submissions", args.count)
        busy = busy_cpu_seconds()
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "tools.grading.grade", str(work / "submissions"),
                                 "--out", str(work / "grades"), "--workers", str(args.workers), "--keep"],
                                cwd=KIT_DIR, stdout=subprocess.PIPE, text=True)
        minutes = (time.perf_counter() - start) / 60
        print(result.stdout, end="")
        if result.returncode:
            sys.exit(f"Grading failed (exit code {result.returncode}); nothing measured.")
        cpu = busy_cpu_seconds() - busy
        print(f"\nCPU: {cpu_model()}, {os.cpu_count()} cores; {args.workers} workers.")
        print(f"Graded {args.count} submissions in {minutes:.1f} min: {args.count / minutes:.1f} submissions per minute; "
              f"{cpu / args.count:.1f} s of CPU per submission "
              f"(the machine's busy time, {cpu / (minutes * 60 * (os.cpu_count() or 1)):.0%} of its cores).")
        kept = re.search(r"Kept the grading folders in (\S+)\.", result.stdout)
        if kept:
            run = Path(kept[1])
            print("Where a student's time goes (mean wall-clock seconds, measured in the worker):")
            for step, seconds in profile(run).items():
                print(f"  {step:<32} {seconds:5.1f} s")
            shutil.rmtree(run, ignore_errors=True)
        if args.record:
            if (args.count, args.workers) != (20, os.cpu_count() or 1):
                print("Not recorded: the benchmark is the default class (20 submissions, one worker per core).")
            else:
                benchmarks.record("make bench-grade", {"submissions_per_minute": round(args.count / minutes, 2),
                                                       "cpu_seconds_per_submission": round(cpu / args.count, 2)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
