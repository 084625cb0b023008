"""The cells left out while grading (`SkipDemos`) never earn points, and nothing that runs needs them."""

from __future__ import annotations

import copy
import symtable

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_notebook

from tools.course.notebook_source import BLOCKS_NOTEBOOK, RESNET_NOTEBOOK
from tools.grading.grading_preprocessors import SkipDemos, skipped_when_grading

GRADED_NOTEBOOKS = [BLOCKS_NOTEBOOK, RESNET_NOTEBOOK]


def top_level_bindings_and_global_reads(source: str) -> tuple[set[str], set[str]]:
    """The names a cell binds at top level, and the names it reads from the notebook's namespace.

    A name the cell binds itself counts as its own, as if bound before it is read.
    """
    table = symtable.symtable(TransformerManager().transform_cell(source), "cell", "exec")
    bound = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_assigned() or symbol.is_imported()}
    reads = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced()}
    nested = list(table.get_children())
    while nested:
        child = nested.pop()
        reads |= {symbol.get_name() for symbol in child.get_symbols() if symbol.is_global() and symbol.is_referenced()}
        nested += child.get_children()
    return bound, reads - bound


def names_needed_from_skipped_cells(notebook) -> list[str]:
    """'cell 12 reads X from cell 6' for each name a cell that runs while grading takes from a skipped one."""
    defined_in: dict[str, tuple[int, bool]] = {}  # name -> (the last cell that binds it, whether it is skipped)
    problems = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        bound, reads = top_level_bindings_and_global_reads(cell.source)
        skipped = skipped_when_grading(cell)
        if not skipped:
            problems += [f"cell {number} reads {name} from cell {defined_in[name][0]}"
                         for name in sorted(reads) if defined_in.get(name, (0, False))[1]]
        defined_in.update({name: (number, skipped) for name in bound})
    return problems


@pytest.mark.parametrize("path", GRADED_NOTEBOOKS, ids=lambda path: path.stem)
def test_no_test_or_solution_cell_is_skipped_whatever_its_tags(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # tags are the student's to edit
        cell.metadata.setdefault("tags", []).append("skip-when-grading")
    graded = copy.deepcopy(notebook)
    SkipDemos().preprocess(graded, {})
    for original, ran in zip(notebook.cells, graded.cells):
        grading = original.metadata.get("nbgrader", {})
        earns_points_or_is_yours = grading.get("grade") or grading.get("solution")
        assert (ran.source == original.source) == bool(earns_points_or_is_yours or original.cell_type != "code"), (
            f"{path.name}: cell {grading.get('grade_id', original.source[:40])!r} is skipped or run wrongly"
        )


@pytest.mark.parametrize("path", GRADED_NOTEBOOKS, ids=lambda path: path.stem)
def test_no_cell_that_runs_while_grading_needs_a_skipped_one(path):
    assert names_needed_from_skipped_cells(nbformat.read(path, as_version=4)) == []


def test_a_test_that_needs_a_skipped_printout_is_found():
    printout = new_code_cell("X = make_input()\nprint('out =', block(X))", metadata={
        "tags": ["skip-when-grading"], "nbgrader": {"grade_id": "block_out", "locked": True, "grade": False, "solution": False}})
    test = new_code_cell("def test_block():\n    assert block(X) is not None\ntest_block()", metadata={
        "nbgrader": {"grade_id": "block_test", "locked": True, "grade": True, "solution": False, "points": 1}})
    notebook = new_notebook(cells=[new_code_cell("def block(x):\n    return x"), printout, test])
    assert names_needed_from_skipped_cells(notebook) == ["cell 3 reads X from cell 2"]
