"""Time CI's checks target by target: `python -m tools.course.bench_ci [--record]` (what `make bench-ci` runs).

CI runs `make test-all`, which runs its targets one after another. This runs the same targets the same way,
each timed, prints minutes per target and in all, and with `--record` appends them to
benchmarks/records.jsonl (only when every target passed: a failed check says nothing about CI's time). The
targets are read from the Makefile's `test-all` line, so the benchmark follows CI when a target is added.
The set-up (`.venv`) is made before the clock starts. Set RESNETS_REQUIRE_BROWSER=1 and
RESNETS_REQUIRE_SANDBOX=1 first to time exactly what `.ci/run` runs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from resnets_utils import KIT_DIR
from tools import cpu_model
from tools.docs import benchmarks


def ci_targets(makefile: str) -> list[str]:
    """The targets of `make test-all`, in the order make runs them."""
    line = re.search(r"^test-all:(.*)$", makefile, flags=re.M)
    if not line or not line[1].split():
        raise SystemExit("The Makefile has no `test-all:` line with targets; nothing to time.")
    return line[1].split()


def figure_key(target: str) -> str:
    return target.replace("-", "_") + "_minutes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="append the times to benchmarks/records.jsonl (make bench-ci)")
    args = parser.parse_args()
    targets = ci_targets((KIT_DIR / "Makefile").read_text())
    minutes: dict[str, float] = {}
    failed: list[str] = []
    for target in targets:
        print(f"\n=== make {target} ===", flush=True)
        start = time.perf_counter()
        if subprocess.run(["make", target], cwd=KIT_DIR).returncode:
            failed.append(target)
        minutes[target] = (time.perf_counter() - start) / 60
    total = sum(minutes.values())
    print(f"\nCPU: {cpu_model()}, {os.cpu_count()} cores.")
    for target in targets:
        print(f"  make {target:<22} {minutes[target]:5.1f} min{'  FAILED' if target in failed else ''}")
    print(f"  {'in all':<27} {total:5.1f} min (CI's goal: at most 45 min on the 2-core AVX2-only CPU)")
    if failed:
        sys.exit(f"Failed: {', '.join(f'make {target}' for target in failed)}; not recorded.")
    if args.record:
        benchmarks.record("make bench-ci", {**{figure_key(target): round(minutes[target], 2) for target in targets},
                                            "total_minutes": round(total, 2)})


if __name__ == "__main__":
    main()
