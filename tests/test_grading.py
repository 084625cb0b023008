"""`make grade` grades a class end to end, whatever the students hand in.

One class of submissions is graded once (nbgrader, sandboxed kernels, two workers), and each
test reads what grades.csv says about one student. The students are: the reference, the
unmodified release, a print-faker, a wrong block from the mutation catalogue, and one for each
way a submission can break or cheat; and three students of the Chinese edition in the same class.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import needs_bwrap
from tools.grading.mutations import MUTATIONS, fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course
from tools.course.notebook_source import solution_source

pytestmark = [pytest.mark.slow, needs_bwrap]
BLOCKS, RESNET = "02_residual_blocks", "03_resnet50"
CELL_TIMEOUT = 60  # generous: ResNet50's hidden test takes a few seconds, more on a busy machine


def faked_identity_block() -> str:
    """An identity block that hard-codes the `out =` values the notebook prints, computing nothing."""
    expected = solution_source("identity_block_hidden").split("EXPECTED_OUTS = ")[1].split("  #")[0]
    return f'''def identity_block(X, f, filters, stage, block, training=True):
    out = np.zeros((3, 4, 4, 6), dtype=np.float32)
    out[1, 1, 0] = {expected}[1 if training else 0]
    return tf.constant(out)'''


def with_prefix(grade_id: str, prefix: str) -> dict[str, str]:
    return {**reference_solutions(), grade_id: prefix + "\n" + reference_solutions()[grade_id]}


def class_of_submissions(release: Path) -> dict[str, dict[str, object]]:
    """student -> notebook -> solutions (dict), a notebook, raw bytes, or None for not handed in."""
    reference = reference_solutions()
    wrong = next(m for m in MUTATIONS if m.name == "shortcut never added (identity_block)")
    steal = f'import resnets_utils\nidentity_block = resnets_utils.functions_from({str(KIT_DIR / "notebooks" / (BLOCKS + ".ipynb"))!r}, "identity_block")'
    edited = fill_in(release / f"{BLOCKS}.ipynb", reference)
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "identity_block_public":
            cell.source = 'print("All tests passed")'
    edited.cells = [c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "convolutional_block_hidden"]
    skips = fill_in(release / f"{BLOCKS}.ipynb", {})
    for cell in skips.cells:  # tags are the student's to edit: asking to skip the tests must not work
        cell.metadata.setdefault("tags", []).append("skip-when-grading")
    return {
        "reference": {BLOCKS: reference, RESNET: reference},
        "tags_tests_to_skip": {BLOCKS: skips, RESNET: {}},
        "release": {BLOCKS: {}, RESNET: {}},
        "faker": {BLOCKS: {**reference, "identity_block": faked_identity_block()}, RESNET: {}},
        "wrong_block": {BLOCKS: {**reference, "identity_block": wrong.source()}, RESNET: reference},
        "not_json": {BLOCKS: b'{"cells": [oops', RESNET: reference},
        "missing": {BLOCKS: reference, RESNET: None},
        "loops": {BLOCKS: with_prefix("identity_block", "while True:\n    pass"), RESNET: reference},
        "kills_kernel": {BLOCKS: with_prefix("identity_block", "import os\nos._exit(1)"), RESNET: reference},
        "hogs_memory": {BLOCKS: with_prefix("identity_block", "hog = [bytearray(2**30) for _ in range(64)]"), RESNET: reference},
        "fakes_allclose": {BLOCKS: with_prefix("identity_block", "np.allclose = lambda *args, **kwargs: True"), RESNET: reference},
        "edits_tests": {BLOCKS: edited, RESNET: reference},
        "steals_solution": {BLOCKS: {**reference, "identity_block": steal}, RESNET: {}},
        "reads_gradebook": {BLOCKS: with_prefix("identity_block", "import glob\nassert glob.glob('/tmp/resnets-grading-*/*/course/gradebook.db')"), RESNET: {}},
        "uses_network": {BLOCKS: with_prefix("identity_block", "import socket\nsocket.create_connection(('pypi.org', 443), timeout=5).close()"), RESNET: {}},
        "bad id!": {BLOCKS: reference, RESNET: reference},
        # the Chinese edition, graded in the same class with the same grades and the gradebook of its own edition
        "reference_zh": {BLOCKS: ("zh", reference), RESNET: ("zh", reference)},
        "release_zh": {BLOCKS: ("zh", {}), RESNET: ("zh", {})},
        "wrong_block_zh": {BLOCKS: ("zh", {**reference, "identity_block": wrong.source()}), RESNET: ("zh", reference)},
        "missing_zh": {BLOCKS: ("zh", reference), RESNET: None},
    }


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Grade the class once; return student -> grade_id -> row of grades.csv."""
    work = tmp_path_factory.mktemp("grading")
    release = build_course(work / "course")
    releases = {"en": release, "zh": build_course(work / "course-zh", "zh")}
    submissions = work / "submissions"
    for student, notebooks in class_of_submissions(release).items():
        folder = submissions / student
        folder.mkdir(parents=True)
        for name, content in notebooks.items():
            path = folder / f"{name}.ipynb"
            if isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, nbformat.NotebookNode):
                nbformat.write(content, path)
            elif isinstance(content, tuple):  # (edition, solutions)
                nbformat.write(fill_in(releases[content[0]] / path.name, content[1]), path)
            elif content is not None:
                nbformat.write(fill_in(release / path.name, content), path)
    out = work / "grades"
    result = subprocess.run(
        [sys.executable, "-m", "tools.grading.grade", str(submissions), "--out", str(out), "--timeout", str(CELL_TIMEOUT), "--memory", "3"],
        cwd=KIT_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table: dict[str, dict[str, dict]] = {}
    with open(out / "grades.csv") as file:
        for row in csv.DictReader(file):
            table.setdefault(row["student_id"], {})[row["grade_id"]] = row
    table["__out__"] = {"path": {"value": str(out)}, "log": {"value": result.stdout}}
    return table


def hidden_score(rows: dict, grade_id: str) -> float:
    return float(rows[f"{grade_id}_hidden"]["score"])


def total(rows: dict) -> float:
    return sum(float(row["score"]) for row in rows.values())


def test_every_student_gets_a_row_for_every_graded_cell(grades):
    students = set(grades) - {"__out__"}
    assert len(students) == 20
    assert all(len(rows) == 6 for student, rows in grades.items() if student != "__out__")


def test_the_reference_scores_full_marks(grades):
    rows = grades["reference"]
    assert total(rows) == sum(float(row["max_score"]) for row in rows.values()) == 10, [row["reason"] for row in rows.values()]
    assert {row["status"] for row in rows.values()} == {"passed"}


def test_the_unmodified_release_scores_zero(grades):
    assert total(grades["release"]) == 0
    assert "not done yet" in grades["release"]["identity_block_hidden"]["reason"]


def test_a_chinese_edition_submission_is_graded_as_the_english_one_with_reasons_in_chinese(grades):
    rows = grades["reference_zh"]
    assert total(rows) == 10 and {row["status"] for row in rows.values()} == {"passed"}, [row["reason"] for row in rows.values()]
    assert not any(row["reason"] for row in rows.values()), "its test cells are the Chinese release's: nothing to restore"
    assert total(grades["release_zh"]) == 0
    assert "这道练习还没有完成" in grades["release_zh"]["identity_block_hidden"]["reason"]  # "the exercise is not done yet"
    wrong = grades["wrong_block_zh"]
    assert hidden_score(wrong, "identity_block") == 0 and total(wrong) == total(grades["wrong_block"])
    assert re.search(r"[\u4e00-\u9fff]", wrong["identity_block_public"]["reason"]), wrong["identity_block_public"]["reason"]
    assert grades["missing_zh"]["resnet50_hidden"]["reason"] == "没有提交笔记本 03_resnet50.ipynb"  # in the student's language


def test_a_chinese_student_reads_the_public_tests_in_chinese_in_their_feedback(grades):
    feedback = Path(grades["__out__"]["path"]["value"]) / "feedback"
    page = (feedback / "reference_zh" / f"{BLOCKS}.html").read_text()
    assert "公开测试" in page, "the test cells nbgrader puts back come from the Chinese gradebook"  # "public test"
    assert "公开测试" not in (feedback / "reference" / f"{BLOCKS}.html").read_text()
    assert "hidden_identity_block" not in page


def test_printing_the_expected_values_scores_zero_on_the_hidden_tests(grades):
    assert hidden_score(grades["faker"], "identity_block") == 0


def test_a_wrong_block_loses_its_points_and_keeps_the_others(grades):
    rows = grades["wrong_block"]
    assert hidden_score(rows, "identity_block") == 0
    assert hidden_score(rows, "convolutional_block") == 3
    assert "shortcut" in rows["identity_block_public"]["reason"]


def test_a_file_that_is_not_a_notebook_scores_zero_with_the_reason(grades):
    rows = grades["not_json"]
    assert hidden_score(rows, "identity_block") == 0
    assert "not a valid notebook" in rows["identity_block_hidden"]["reason"]
    assert rows["identity_block_hidden"]["status"] == "not graded"


def test_a_missing_notebook_scores_zero_and_spares_the_others(grades):
    rows = grades["missing"]
    assert hidden_score(rows, "resnet50") == 0
    assert "no submitted notebook 03_resnet50.ipynb" in rows["resnet50_hidden"]["reason"]
    assert hidden_score(rows, "identity_block") == 3


def test_a_cell_that_never_ends_is_stopped_and_named(grades):
    rows = grades["loops"]
    assert hidden_score(rows, "identity_block") == 0
    assert f"stopped after {CELL_TIMEOUT} s" in rows["identity_block_hidden"]["reason"]
    assert hidden_score(rows, "resnet50") == 4  # its own notebook still counts


def test_a_kernel_that_dies_scores_zero_in_that_notebook_only(grades):
    rows = grades["kills_kernel"]
    assert hidden_score(rows, "identity_block") == 0
    assert "kernel died" in rows["identity_block_hidden"]["reason"]
    assert hidden_score(rows, "resnet50") == 4


def test_memory_is_capped_per_submission(grades):
    rows = grades["hogs_memory"]
    assert hidden_score(rows, "identity_block") == 0
    assert "MemoryError" in rows["identity_block_hidden"]["reason"]


def test_redefining_what_the_tests_use_scores_zero_with_the_reason(grades):
    rows = grades["fakes_allclose"]
    assert hidden_score(rows, "identity_block") == hidden_score(rows, "convolutional_block") == 0
    assert "np.allclose" in rows["identity_block_hidden"]["reason"]


def test_edited_and_deleted_test_cells_are_restored_and_noted(grades):
    rows = grades["edits_tests"]
    assert hidden_score(rows, "identity_block") == hidden_score(rows, "convolutional_block") == 3
    assert "restored before grading, as the student had edited them: identity_block_public" in rows["identity_block_hidden"]["reason"]
    assert "missing from the submission, from the release: convolutional_block_hidden" in rows["convolutional_block_hidden"]["reason"]


def test_student_code_cannot_read_the_source_notebooks(grades):
    rows = grades["steals_solution"]
    assert hidden_score(rows, "identity_block") == 0
    assert "NotebookError" in rows["identity_block_public"]["reason"]


def test_student_code_cannot_see_the_gradebook(grades):
    assert hidden_score(grades["reads_gradebook"], "identity_block") == 0


def test_student_code_has_no_network(grades):
    assert hidden_score(grades["uses_network"], "identity_block") == 0


def test_tagging_the_tests_to_be_skipped_does_not_skip_them(grades):
    assert total(grades["tags_tests_to_skip"]) == 0


def test_a_folder_name_that_is_not_a_student_id_still_gets_rows(grades):
    rows = grades["bad id!"]
    assert total(rows) == 0 and "student id" in rows["identity_block_hidden"]["reason"]


def test_feedback_has_a_page_per_notebook_without_hidden_test_code(grades):
    feedback = Path(grades["__out__"]["path"]["value"]) / "feedback" / "reference"
    pages = sorted(page.name for page in feedback.glob("*.html"))
    assert pages == [f"{BLOCKS}.html", f"{RESNET}.html"]
    assert "hidden_identity_block" not in (feedback / f"{BLOCKS}.html").read_text()
    assert "All tests passed" in (feedback / f"{BLOCKS}.html").read_text()
