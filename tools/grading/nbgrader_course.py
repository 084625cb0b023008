"""An nbgrader course directory made from the kit's source notebooks.

`make release` and `make grade` both start here: the source notebooks are copied into
`source/resnets/` (with the student-facing layout: notebooks beside `resnets_utils.py`),
then `nbgrader generate_assignment` writes the student version and the gradebook that
holds the hidden tests. The source notebooks stay the one place solutions are written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from resnets_utils import KIT_DIR
from tools.course.notebook_source import NOTEBOOKS

ASSIGNMENT = "resnets"
COURSE_ID = "resnets-kit"
# The course's editions: English (the source notebooks) and the Chinese one generated from them, with the same
# cells, grade ids and points, so one gradebook grades both.
EDITIONS = {"en": NOTEBOOKS, "zh": NOTEBOOKS / "zh"}
NBGRADER = Path(sys.executable).with_name("nbgrader")
# What a student needs beside the notebooks; the notebooks then run from one flat folder.
STUDENT_FILES = ("resnets_utils.py", "locale", "datasets", "images", "models", "docs", "requirements.txt")
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


class CourseError(RuntimeError):
    """nbgrader could not build the course (its log says why)."""


def source_notebooks(edition: str = "en") -> list[Path]:
    return sorted(EDITIONS[edition].glob("[0-9][0-9]_*.ipynb"))


def graded_notebooks() -> list[str]:
    """Names (without .ipynb) of the notebooks that have graded cells: the ones `make grade` runs."""
    names = []
    for path in source_notebooks():
        cells = nbformat.read(path, as_version=4).cells
        if any(cell.metadata.get("nbgrader", {}).get("grade") for cell in cells):
            names.append(path.stem)
    return names


def student_notebook(path: Path) -> nbformat.NotebookNode:
    """The source notebook as it sits in the flat student folder: links to `images/` and `docs/`, the standard kernel."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        for up in ("../../", "../"):  # the Chinese notebooks sit one folder deeper
            cell.source = cell.source.replace(f"{up}images/", "images/").replace(f"{up}docs/", "docs/")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return notebook


def write_config(root: Path, extra: str = "") -> None:
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.ClearSolutions.code_stub = {{'python': {CODE_STUB!r}}}\n" + extra
    )


def nbgrader_environment(**extra: str) -> dict[str, str]:
    """The environment nbgrader needs: the kit's Python tools first on PATH (nbgrader calls `alembic`)."""
    path = f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, **extra}


def nbgrader(root: Path, *args: str, timeout: float | None = None, **environment: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course `root`; its log comes back in `.stdout`."""
    return subprocess.run(
        [str(NBGRADER), *args], cwd=root, env=nbgrader_environment(**environment),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )


def build_course(root: Path, edition: str = "en", files: tuple[str, ...] = STUDENT_FILES) -> Path:
    """Make a fresh course at `root` and generate the assignment of one edition ("en", "zh"), with the kit's `files`
    beside the notebooks (the grader needs only the code the tests import); returns the student release folder."""
    root = root.resolve()
    if root.exists():
        shutil.rmtree(root)
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path in source_notebooks(edition):
        nbformat.write(student_notebook(path), source / path.name)
    for name in files:
        original = KIT_DIR / name
        if original.is_dir():
            shutil.copytree(original, source / name, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        elif original.is_file():
            shutil.copy2(original, source / name)
    write_config(root)
    result = nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    if result.returncode != 0:
        raise CourseError(f"nbgrader generate_assignment failed in {root}:\n{result.stdout[-3000:]}")
    return root / "release" / ASSIGNMENT
