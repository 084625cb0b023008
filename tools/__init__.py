"""The kit's tooling, grouped by job: course, data, model, grading."""

from __future__ import annotations

import argparse
import platform
import subprocess


def cpu_model() -> str:
    """The CPU's model name as `lscpu` prints it: speed figures mean little without it."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].splitlines()[0].strip()
    except (OSError, IndexError):
        return platform.processor() or "unknown CPU"


def at_least(minimum: int):
    """An argument type: a whole number no smaller than `minimum`, or argparse's usage error naming the argument."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {text!r}")
        return value

    return whole_number
