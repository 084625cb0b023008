"""Wrong solutions lose points: the hidden tests fail each one, the public tests name the mistake.

The wrong solutions are the catalogue in tools/mutations.py: the notebooks' own solution
with one small edit each. These checks run the notebook cells in this process (no kernel,
no nbgrader), so they are quick; tests/test_grading.py grades whole submissions end to end.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tools.mutations import MUTATIONS, reference_solutions
from tools.notebook_source import BLOCKS_NOTEBOOK, RESNET_NOTEBOOK, solution_source


def first_code_cell(notebook) -> str:
    return next(cell.source for cell in nbformat.read(notebook, 4).cells if cell.cell_type == "code")


def notebook_namespace(notebook, solutions: dict[str, str]) -> dict:
    """What a student's kernel holds after the notebook's imports and the given solution cells."""
    namespace: dict = {}
    exec(first_code_cell(BLOCKS_NOTEBOOK), namespace)
    for grade_id in ("identity_block", "convolutional_block"):
        exec(solutions[grade_id], namespace)
    if notebook == RESNET_NOTEBOOK:
        exec(first_code_cell(RESNET_NOTEBOOK), namespace)
        exec(solutions["resnet50"], namespace)
    return namespace


def run_cell(grade_id: str, notebook, solutions: dict[str, str]) -> None:
    exec(solution_source(grade_id, notebook), notebook_namespace(notebook, solutions))


GRADED = [("identity_block", BLOCKS_NOTEBOOK), ("convolutional_block", BLOCKS_NOTEBOOK), ("resnet50", RESNET_NOTEBOOK)]


def test_the_catalogue_has_at_least_twelve_kinds_of_mistake_in_every_exercise():
    assert len(MUTATIONS) >= 12
    assert {mutation.grade_id for mutation in MUTATIONS} == {grade_id for grade_id, _ in GRADED}


@pytest.mark.parametrize("grade_id, notebook", GRADED)
@pytest.mark.parametrize("kind", ["public", "hidden"])
def test_the_reference_solution_passes_public_and_hidden_tests(grade_id, notebook, kind):
    run_cell(f"{grade_id}_{kind}", notebook, reference_solutions())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.name)
def test_hidden_tests_fail_each_wrong_solution(mutation):
    solutions = {**reference_solutions(), mutation.grade_id: mutation.source()}
    with pytest.raises(Exception):
        run_cell(f"{mutation.grade_id}_hidden", mutation.notebook, solutions)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.name)
def test_public_tests_name_each_mistake(mutation):
    solutions = {**reference_solutions(), mutation.grade_id: mutation.source()}
    with pytest.raises(AssertionError, match=re.escape(mutation.message)):
        run_cell(f"{mutation.grade_id}_public", mutation.notebook, solutions)
