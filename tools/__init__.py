"""The kit's tooling, grouped by job: course, data, model, grading."""

from __future__ import annotations

import platform
import subprocess


def cpu_model() -> str:
    """The CPU's model name as `lscpu` prints it: speed figures mean little without it."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].splitlines()[0].strip()
    except (OSError, IndexError):
        return platform.processor() or "unknown CPU"
