"""Two steps the kit adds to nbgrader's autograde (configured by tools/grading/grade.py).

- `RejectTampering` reads a submission's own code before it runs. Code that replaces the
  functions the tests rely on (`np.allclose = ...`, `setattr(np, ...)`, a new `test_...`,
  `builtins`, `exec`) earns no points in that notebook: each test cell then raises an error
  that says why, which the student sees in the feedback.
- `SkipDemos` leaves out the cells tagged `skip-when-grading` (drawings, comparisons, tables,
  the locked cells that print `out = ...`: what no graded cell needs), so a class is graded in minutes.
- `ShowStudentFiles` puts the submitted notebooks, as the student wrote them, in the folder
  where the code runs, so no file there holds hidden tests while student code runs.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

# Names the tests call; a submission has no reason to assign or define them.
PROTECTED_NAMES = {"np", "numpy", "tf", "resnets_utils", "allclose", "isclose", "array_equal", "EXPECTED_OUTS"}
PROTECTED_PREFIXES = ("test_", "hidden_")
FORBIDDEN_CALLS = {"setattr", "exec", "eval", "compile", "__import__", "globals", "delattr"}
FORBIDDEN_MODULES = {"builtins", "importlib", "ctypes", "gc", "inspect"}


def _target_names(node: ast.AST) -> list[str]:
    """Dotted names a statement assigns to, e.g. ['np.allclose'] for `np.allclose = f`."""
    targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
    return [ast.unparse(target) for target in targets if target is not None]


def imported_names(source: str) -> set[str]:
    """The names that import statements in `source` bind (`import numpy as np2` binds np2)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }


def tampering(source: str, modules: set[str] = frozenset()) -> str | None:
    """Say what in `source` reaches into the tests' tools (or into `modules`), or None when nothing does."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # a syntax error fails the tests by itself
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for name in _target_names(node):
                root, _, attribute = name.partition(".")
                if attribute and root in PROTECTED_NAMES | FORBIDDEN_MODULES | set(modules):
                    return f"it assigns to {name}"
                if not attribute and (name in PROTECTED_NAMES or name.startswith(PROTECTED_PREFIXES)):
                    return f"it redefines {name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in PROTECTED_NAMES or node.name.startswith(PROTECTED_PREFIXES):
                return f"it redefines {node.name}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            return f"it calls {node.func.id}()"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            if any(name.split(".")[0] in FORBIDDEN_MODULES for name in names):
                return f"it imports {', '.join(names)}"
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            return "it uses __builtins__"
    return None


class RejectTampering(NbGraderPreprocessor):
    """Give no points in a notebook whose student code reaches into the tests' tools."""

    def preprocess(self, nb, resources):
        from IPython.core.inputtransformer2 import TransformerManager

        sources = {
            number: TransformerManager().transform_cell(cell.source)
            for number, cell in enumerate(nb.cells, start=1) if cell.cell_type == "code"
        }
        modules = set().union(*map(imported_names, sources.values()))
        reasons = []
        for number, source in sources.items():
            if nb.cells[number - 1].metadata.get("nbgrader", {}).get("locked"):
                continue  # locked cells were just restored from the source
            reason = tampering(source, modules)
            if reason:
                reasons.append(f"cell {number}: {reason}")
        if reasons:
            message = f"Not graded: this notebook changes what the tests rely on ({'; '.join(reasons)})."
            self.log.warning(message)
            for cell in nb.cells:
                grading = cell.metadata.get("nbgrader", {})
                if grading.get("grade") and not grading.get("solution"):
                    cell.source = f"raise AssertionError({message!r})"
        return nb, resources


class ShowStudentFiles(NbGraderPreprocessor):
    """Before the code runs, replace every notebook in its folder by the student's submitted version."""

    submitted = Unicode("", help="the folder of this student's submitted notebooks").tag(config=True)

    def preprocess(self, nb, resources):
        folder = Path(resources["metadata"]["path"])
        for notebook in Path(self.submitted).glob("*.ipynb"):
            shutil.copyfile(notebook, folder / notebook.name)
        return nb, resources


def skipped_when_grading(cell) -> bool:
    """Whether `SkipDemos` leaves `cell` out: a code cell tagged `skip-when-grading` that earns no points.

    That is a cell nbgrader does not track (a demo), or a locked cell that is neither a test
    nor a solution (one that prints `out = ...` for the student to compare). Tags are the
    student's to change, but what counts is decided elsewhere: nbgrader scores the cells
    marked `grade` in this same notebook, so those always run, and it restores `locked` from
    the source before this step, so a solution cell never passes for a locked one. Changing
    tags can only make a cell without points run or not run.
    """
    grading = cell.metadata.get("nbgrader", {})
    earns_nothing = not grading or (grading.get("locked") and not grading.get("grade") and not grading.get("solution"))
    return cell.cell_type == "code" and bool(earns_nothing) and "skip-when-grading" in cell.metadata.get("tags", [])


class SkipDemos(NbGraderPreprocessor):
    """Do not run the cells tagged `skip-when-grading`: demos and printouts that no graded cell depends on."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if skipped_when_grading(cell):
                cell.source = "# Not run while grading: this cell shows something, it is not graded."
        return nb, resources
