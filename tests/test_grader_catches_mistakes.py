"""Wrong solutions lose points: the hidden tests fail each one, the public tests name the mistake.
Correct solutions written another way keep full marks.

The solutions are the catalogue in tools/grading/mutations.py: the notebooks' own solution with one
small edit each, wrong or right. These checks run the notebook cells in this process (no kernel,
no nbgrader), so they are quick; tests/test_grading.py grades whole submissions end to end.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tools.grading.mutations import CORRECT_VARIANTS, MUTATIONS, OPTIONAL_MUTATIONS, reference_solutions
from tools.course.notebook_source import BLOCKS_NOTEBOOK, RESNET_NOTEBOOK, solution_source


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


@pytest.fixture
def in_chinese():
    import resnets_utils

    resnets_utils.use_language("zh_CN")  # what the Chinese notebooks do after `import resnets_utils`
    yield
    resnets_utils.use_language("en")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.name)
def test_public_tests_name_each_mistake_in_chinese_in_the_chinese_edition(mutation, in_chinese):
    solutions = {**reference_solutions(), mutation.grade_id: mutation.source()}
    with pytest.raises(AssertionError) as named:
        run_cell(f"{mutation.grade_id}_public", mutation.notebook, solutions)
    assert re.search(r"[\u4e00-\u9fff]", str(named.value)), f"named in English: {named.value}"


def test_the_catalogue_leaves_out_training_in_every_exercise():
    flagged = {mutation.grade_id for mutation in MUTATIONS if "ignores the training argument" in mutation.message}
    assert flagged == {grade_id for grade_id, _ in GRADED}
    assert any("without training=" in mutation.name for mutation in MUTATIONS if mutation.grade_id == "identity_block")


def test_the_catalogue_has_correct_variants_of_every_exercise():
    assert {variant.grade_id for variant in CORRECT_VARIANTS} == {grade_id for grade_id, _ in GRADED}


@pytest.mark.parametrize("variant", CORRECT_VARIANTS, ids=lambda variant: variant.name)
@pytest.mark.parametrize("kind", ["public", "hidden"])
def test_correct_solutions_written_another_way_pass_public_and_hidden_tests(variant, kind):
    solutions = {**reference_solutions(), variant.grade_id: variant.source()}
    run_cell(f"{variant.grade_id}_{kind}", variant.notebook, solutions)


def run_optional_test(solution: str) -> None:
    namespace: dict = {}
    exec(first_code_cell(BLOCKS_NOTEBOOK), namespace)
    exec(solution, namespace)
    exec(solution_source("preactivation_block_public"), namespace)


def test_the_optional_exercise_passes_its_own_test():
    run_optional_test(reference_solutions()["preactivation_block"])


@pytest.mark.parametrize("mutation", OPTIONAL_MUTATIONS, ids=lambda mutation: mutation.name)
def test_the_optional_exercise_names_each_mistake(mutation):
    with pytest.raises(AssertionError, match=re.escape(mutation.message)):
        run_optional_test(mutation.source())


BLOCK_FLAG_MISTAKES = [mutation for mutation in MUTATIONS
                       if mutation.grade_id != "resnet50" and "ignores the training argument" in mutation.message]


@pytest.mark.parametrize("mutation", BLOCK_FLAG_MISTAKES, ids=lambda mutation: mutation.name)
@pytest.mark.parametrize("kind", ["public", "hidden"])
def test_a_block_that_ignores_training_costs_points_in_notebook_2_only(mutation, kind):
    solutions = {**reference_solutions(), mutation.grade_id: mutation.source()}
    run_cell(f"resnet50_{kind}", RESNET_NOTEBOOK, solutions)


def test_grading_builds_resnet50_twice_the_hidden_test_reusing_the_public_tests_models():
    namespace = notebook_namespace(RESNET_NOTEBOOK, reference_solutions())
    student_resnet50, calls = namespace["ResNet50"], []
    namespace["ResNet50"] = lambda **kwargs: calls.append(kwargs) or student_resnet50(**kwargs)
    for kind in ("public", "hidden"):
        exec(solution_source(f"resnet50_{kind}", RESNET_NOTEBOOK), namespace)
    assert len(calls) == 2


def test_the_hidden_test_reuses_a_build_of_the_same_function_and_arguments_once():
    import resnets_utils

    def resnet50(**kwargs):
        return object()

    def redefined(**kwargs):
        return object()

    built = resnets_utils.build_resnet50(resnet50, input_shape=(64, 64, 3), classes=6)
    assert resnets_utils.build_resnet50(resnet50, reuse=True, input_shape=(64, 64, 3), classes=6) is built
    assert resnets_utils.build_resnet50(resnet50, reuse=True, input_shape=(64, 64, 3), classes=6) is not built  # taken once
    assert resnets_utils.build_resnet50(resnet50, input_shape=(64, 64, 3), classes=6) is not built  # the public tests build
    assert resnets_utils.build_resnet50(resnet50, reuse=True, input_shape=(64, 64, 3), classes=10) is not built
    assert resnets_utils.build_resnet50(redefined, reuse=True, input_shape=(64, 64, 3), classes=6) is not built
