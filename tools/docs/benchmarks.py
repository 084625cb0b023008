"""Benchmark records and the pages they render: `python -m tools.docs.benchmarks [--check]` (`make benchmarks-page`).

Every benchmark command (`make bench`, `bench-profile`, `bench-data`, `bench-grade`, `bench-ci`, `realism`,
`evaluate-pretrained`, `compare-tracker`) prints its figures and, with `--record`, appends one JSON line to
`benchmarks/records.jsonl`: the command, the commit, the CPU, the date and the figures. This module
renders `docs/benchmarks.md` from those records (the latest record of each command on each kind of
CPU, beside its goal) and fills the generated tables of the model card and the data card, so that
no figure is ever typed into prose. `--check` renders in memory and fails when a page differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from resnets_utils import KIT_DIR
from tools import cpu_model

RECORDS = KIT_DIR / "benchmarks" / "records.jsonl"
RECORDS_VARIABLE = "RESNETS_BENCHMARK_RECORDS"  # another records file (the tests' own)
PAGE = KIT_DIR / "docs" / "benchmarks.md"
# The instruction-set flags that decide how fast this kit trains on a CPU (/proc/cpuinfo's names).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")
# Kinds of CPU, from the flags, in the page's column order: the students' laptop first.
CPU_KINDS = ("AVX2 only", "AVX-512", "AVX-512 with bfloat16", "AMX")
BEGIN, END = "<!-- generated: {name} -->", "<!-- end generated -->"


class RecordsError(ValueError):
    """The records file cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Figure:
    """One figure a command records: its key, how the page names and prints it, and its goal if it has one."""

    key: str
    label: str
    unit: str  # percent, seconds, minutes, images/s, x, number, text
    goal: str = ""
    met: Callable[[float], bool] | None = None

    def show(self, value) -> str:
        if value is None:  # a time to an accuracy never reached
            return "not reached" + (" (missed)" if self.met is not None else "")
        text = {
            "percent": lambda: f"{value:.1%}",
            "seconds": lambda: f"{value:.1f} s",
            "minutes": lambda: f"{value:.1f} min",
            "images/s": lambda: f"{value:.1f} img/s",
            "per minute": lambda: f"{value:.1f} a minute",
            "GFLOP/s": lambda: f"{value:.0f} GFLOP/s",
            "x": lambda: f"{value:.2f}x",
            "number": lambda: f"{value:.3f}",
        }.get(self.unit, lambda: str(value))()
        return f"{text} (missed)" if self.met is not None and not self.met(value) else text


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


# What each command records, in the page's order; the goals are the kit's promises on 2 cores.
BENCHMARKS: dict[str, tuple[Figure, ...]] = {
    "make bench": (
        Figure("keras_images_per_second", "`keras.applications.ResNet50`, plain `fit`, float32", "images/s"),
        Figure("recipe_images_per_second", "the kit's recipe (batch 32, augmenting pipeline)", "images/s"),
        Figure("precision", "the recipe's precision on this CPU", "text"),
        Figure("ratio", "the recipe's speed over the plain baseline", "x", "at least 1.2x", _at_least(1.2)),
        Figure("notebook_test_accuracy", "notebook 4's run: test accuracy at the end", "percent", "at least 90%", _at_least(0.90)),
        Figure("notebook_training_minutes", "notebook 4's run: minutes of training", "minutes"),
        Figure("minutes_to_90", "notebook 4's run: training time to 90% test accuracy", "minutes", "at most 3 min", _at_most(3.0)),
        Figure("minutes_to_95", "notebook 4's run: training time to 95% test accuracy", "minutes"),
    ),
    "make bench-profile": (
        Figure("seconds_per_step", "seconds per training step (batch 128)", "seconds"),
        Figure("step_gflops", "the step's arithmetic per second of wall clock", "GFLOP/s"),
        Figure("matmul_gflops", "a 2048 x 2048 matrix product on the same cores", "GFLOP/s"),
        Figure("share_of_matmul", "the step's speed as a share of the matrix product's", "percent"),
    ),
    "make bench-data": (
        Figure("seconds", "generating the 1200 SIGNS images", "seconds", "at most 30 s", _at_most(30.0)),
    ),
    "make bench-grade": (
        Figure("submissions_per_minute", "submissions graded a minute (2 workers, sandboxed)", "per minute", "at least 12", _at_least(12.0)),
        Figure("cpu_seconds_per_submission", "CPU time per submission", "seconds"),
    ),
    "make bench-ci": (
        Figure("test_minutes", "`make test` (the README's command)", "minutes", "at most 10 min", _at_most(10.0)),
        Figure("test_grading_minutes", "`make test-grading`", "minutes"),
        Figure("test_bench_minutes", "`make test-bench`", "minutes"),
        Figure("test_browser_minutes", "`make test-browser`", "minutes"),
        Figure("test_oldest_python_minutes", "`make test-oldest-python` (its set-up included)", "minutes"),
        Figure("total_minutes", "`make test-all`, what CI runs", "minutes", "at most 45 min", _at_most(45.0)),
    ),
    "make realism": (
        Figure("sld_accuracy", "small CNNs trained on generated images only: Sign Language Digits photos", "percent",
               "at least 80%", _at_least(0.80)),
        Figure("wild_accuracy", "the same models: photos of hands in everyday rooms", "percent"),
        Figure("minutes", "the whole run (five models)", "minutes"),
    ),
    "make evaluate-pretrained": (
        Figure("kit_accuracy", "the kit's SIGNS test set: mean per-class accuracy", "percent", "at least 99%", _at_least(0.99)),
        Figure("sld_accuracy", "held-out fifth of Sign Language Digits: mean per-class accuracy", "percent", "at least 98%", _at_least(0.98)),
        Figure("wild_accuracy", "held-out wild sessions: mean per-class accuracy", "percent", "at least 95%", _at_least(0.95)),
        Figure("sideways_two_accuracy", "2s held sideways, drawn by the kit (not in its data set): accuracy", "percent", "at least 95%",
               _at_least(0.95)),
        Figure("together_five_accuracy", "5s with the fingers together, drawn by the kit: accuracy", "percent", "at least 95%",
               _at_least(0.95)),
        Figure("kit_ece", "the kit's test set: calibration error (ECE)", "number"),
        Figure("sld_ece", "held-out Sign Language Digits: calibration error (ECE)", "number"),
        Figure("wild_ece", "held-out wild sessions: calibration error (ECE)", "number"),
        Figure("threshold", "the \"not sure\" threshold, chosen on the wild validation sessions", "number"),
        Figure("wild_answered", "held-out wild sessions: photos answered above the threshold", "percent"),
        Figure("wild_right_when_answered", "held-out wild sessions: right when answered", "percent"),
    ),
    "make compare-tracker": (
        Figure("kit_tight", "held-out wild sessions, tight crops: the kit (find, then read)", "percent", "at least 81%", _at_least(0.81)),
        Figure("tracker_tight", "the same photos: MediaPipe Hands + finger rule", "percent"),
        Figure("reader_on_labelled_box_tight", "the same photos: the kit's reader on the labelled box (a finder that never errs)", "percent"),
        Figure("reader_on_tracker_box_tight", "the same photos: the kit's reader on the box of the tracker's landmarks", "percent"),
        Figure("kit_half", "half-frame crops (the hand fills about half): the kit", "percent", "at least 87%", _at_least(0.87)),
        Figure("tracker_half", "the same photos: MediaPipe Hands + finger rule", "percent"),
        Figure("reader_on_labelled_box_half", "the same photos: the kit's reader on the labelled box (a finder that never errs)", "percent"),
        Figure("reader_on_tracker_box_half", "the same photos: the kit's reader on the box of the tracker's landmarks", "percent"),
        Figure("kit_whole", "whole photos, one hand in each: the kit", "percent", "at least 78%", _at_least(0.78)),
        Figure("tracker_whole", "the same photos: MediaPipe Hands + finger rule", "percent"),
        Figure("reader_on_labelled_box_whole", "the same photos: the kit's reader on the labelled box (a finder that never errs)", "percent"),
        Figure("reader_on_tracker_box_whole", "the same photos: the kit's reader on the box of the tracker's landmarks", "percent"),
        Figure("kit_whole_answered", "whole photos the kit answers (above \"not sure\", a hand found)", "percent", "at least 70%", _at_least(0.70)),
        Figure("kit_whole_right_when_answered", "whole photos: the kit right when it answers", "percent", "at least 95%", _at_least(0.95)),
        Figure("seconds_per_phone_photo", "one 12-megapixel photo through `predict_photo`", "seconds", "at most 1 s", _at_most(1.0)),
    ),
}
# The generated tables of the cards: which commands each shows.
BLOCKS = {
    "model-card": (KIT_DIR / "docs" / "model-card.md", ("make evaluate-pretrained", "make compare-tracker")),
    "data-card": (KIT_DIR / "docs" / "data-card.md", ("make bench-data", "make realism")),
}


def records_path() -> Path:
    """Where records go: benchmarks/records.jsonl, or the file RESNETS_BENCHMARK_RECORDS names (the tests')."""
    return Path(os.environ.get(RECORDS_VARIABLE) or RECORDS)


def cpu_flags() -> list[str]:
    """The CPU_FLAGS this CPU has, from /proc/cpuinfo (none where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    present = set(line.partition(":")[2].split())
    return [flag for flag in CPU_FLAGS if flag in present]


def cpu_kind(flags: list[str]) -> str:
    """The page's name for a kind of CPU: what decides its precision and kernels."""
    if "amx_tile" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 with bfloat16"
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2 only" if "avx2" in flags else "without AVX2"


def current_commit() -> str:
    """HEAD's short hash, with "+changes" when tracked code differs from it ("unknown" outside git); edits to prose
    and to the records themselves change no figure, so they do not count."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=KIT_DIR, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)*.md", ":(exclude)benchmarks/") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(command: str, figures: dict, path: Path | None = None) -> Path | None:
    """Append one record of `command`'s figures to the records file and return the file's path (None: not recorded)."""
    unknown = set(figures) - {figure.key for figure in BENCHMARKS[command]}
    if unknown:
        raise ValueError(f"{command} records no figure named {', '.join(sorted(unknown))}")
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    if capped and capped.upper() != "ALL":
        # The record names the CPU by its flags; oneDNN held to fewer instructions would put its figures under
        # another kind of CPU's column (an AMX CPU's, for a run that computed like an AVX2-only one).
        print(f"Not recorded: ONEDNN_MAX_CPU_ISA={capped} holds oneDNN to fewer instructions than this CPU has, "
              "so the figures are not this CPU's.")
        return None
    flags = cpu_flags()
    entry = {
        "command": command,
        "commit": current_commit(),
        "cpu": {"model": cpu_model(), "flags": flags, "kind": cpu_kind(flags), "cores": os.cpu_count()},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "figures": figures,
    }
    path = path or records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(json.dumps(entry) + "\n")
    print(f"Recorded in {path}; `make benchmarks-page` shows it in docs/benchmarks.md.")
    return path


def load_records(path: Path = RECORDS) -> list[dict]:
    """The records in `path`, oldest first (none when the file does not exist)."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise RecordsError(f"{path}, line {number}: not JSON ({error})") from None
        if not (isinstance(entry, dict) and isinstance(entry.get("cpu"), dict) and "kind" in entry["cpu"]
                and entry.get("command") in BENCHMARKS and isinstance(entry.get("figures"), dict)):
            raise RecordsError(f"{path}, line {number}: not a record of a benchmark command "
                               "(it needs a known command, cpu.kind and figures)")
        records.append(entry)
    return records


def latest(records: list[dict]) -> dict[str, dict[str, dict]]:
    """{command: {CPU kind: its newest record}}: a later line replaces an earlier one."""
    newest: dict[str, dict[str, dict]] = {}
    for entry in records:
        newest.setdefault(entry["command"], {})[entry["cpu"]["kind"]] = entry
    return newest


def table(command: str, by_kind: dict[str, dict]) -> str:
    """A Markdown table of `command`'s figures: a column per kind of CPU, then the goal."""
    kinds = sorted(by_kind, key=lambda kind: CPU_KINDS.index(kind) if kind in CPU_KINDS else len(CPU_KINDS))
    if not kinds:
        return f"No record of `{command}` yet: run it, then `make benchmarks-page`.\n"
    lines = [
        "| figure | " + " | ".join(f"{kind} CPU" for kind in kinds) + " | goal |",
        "| --- " * (len(kinds) + 2) + "|",
    ]
    for figure in BENCHMARKS[command]:
        cells = [figure.show(by_kind[kind]["figures"][figure.key]) if figure.key in by_kind[kind]["figures"] else "not measured"
                 for kind in kinds]
        lines.append(f"| {figure.label} | " + " | ".join(cells) + f" | {figure.goal} |")
    sources = "; ".join(
        f"{kind}: {by_kind[kind]['cpu']['model']}, {by_kind[kind]['cpu']['cores']} cores, commit {by_kind[kind]['commit']}, "
        f"{by_kind[kind]['date']}" for kind in kinds)
    return "\n".join(lines) + f"\n\nMeasured by `{command}` ({sources}).\n"


def page(records: list[dict]) -> str:
    """docs/benchmarks.md."""
    newest = latest(records)
    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make benchmarks-page` from benchmarks/records.jsonl: do not edit by hand. -->",
        "",
        "The kit's measured figures: the newest record of each benchmark command on each kind of CPU, beside the "
        "kit's goal. Every command appends a record when it runs (the command, the commit, the CPU, the date and the "
        "figures) to `benchmarks/records.jsonl`; the history of a figure is that file and git. Speeds wander from hour "
        "to hour on the same machine, so compare two figures of one run rather than two runs.",
        "",
        "The reference is a 2-core laptop CPU with AVX2 only (float32, no bfloat16): what most students own. "
        "CPUs with AVX-512, bfloat16 or AMX instructions train faster; their columns are a bonus.",
        "",
    ]
    for command in BENCHMARKS:
        parts += [f"## `{command}`", "", table(command, newest.get(command, {}))]
    return "\n".join(parts)


def block(name: str, records: list[dict]) -> str:
    """The generated table(s) of one card, between its markers."""
    newest = latest(records)
    tables = [table(command, newest.get(command, {})) for command in BLOCKS[name][1]]
    return BEGIN.format(name=name) + "\n" + "\n".join(tables) + END


def fill_block(text: str, name: str, generated: str, path: Path) -> str:
    """`text` with its generated block `name` replaced; an error naming `path` when the markers are missing."""
    begin = BEGIN.format(name=name)
    start, end = text.find(begin), text.find(END, text.find(begin))
    if start < 0 or end < 0:
        raise RecordsError(f"{path}: no generated block '{name}' (the lines {begin} and {END})")
    return text[:start] + generated + text[end + len(END):]


def rendered(records: list[dict]) -> dict[Path, str]:
    """Every generated page, as it should read for these records."""
    pages = {PAGE: page(records)}
    for name, (path, _) in BLOCKS.items():
        pages[path] = fill_block(path.read_text(), name, block(name, records), path)
    return pages


def out_of_date(records: list[dict]) -> list[Path]:
    """The pages that differ from what the records give."""
    return [path for path, text in rendered(records).items() if not path.is_file() or path.read_text() != text]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a page differs from the records")
    args = parser.parse_args()
    try:
        records = load_records(RECORDS)
        if args.check:
            stale = out_of_date(records)
            if stale:
                sys.exit("Out of date with benchmarks/records.jsonl (run `make benchmarks-page`): "
                         + ", ".join(str(path.relative_to(KIT_DIR)) for path in stale))
            print("The benchmark pages match the records.")
            return
        for path, text in rendered(records).items():
            path.write_text(text)
            print(f"Wrote {path.relative_to(KIT_DIR)}.")
    except RecordsError as error:
        sys.exit(f"Error: {error}")


if __name__ == "__main__":
    main()
