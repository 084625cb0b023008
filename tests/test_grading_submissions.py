"""Whatever a student hands in, they get one row per graded cell and the same max_score (issue 12).

Test cells deleted, copied or moved, notebooks saved by VS Code, Colab or an old Jupyter, huge
outputs, a renamed file: tools/grading/submissions.py repairs each against the release. The fast
tests repair one odd notebook at a time (no kernels, a few seconds); the slow one grades a fuzzed
class of FUZZED_STUDENTS such submissions end to end, once (about 9 minutes on 2 cores).
"""

from __future__ import annotations

import copy
import csv
import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbformat.corpus.words import generate_corpus_id

from resnets_utils import KIT_DIR
from tests.test_grading_sandbox import needs_bwrap
from tools.grading.grading_preprocessors import skipped_when_grading
from tools.grading.mutations import fill_in, reference_solutions
from tools.grading.nbgrader_course import build_course
from tools.grading.submissions import OUTPUT_LIMIT, SubmissionError, grade_id, is_test, prepare_submission

BLOCKS, RESNET = "02_residual_blocks", "03_resnet50"
NOTEBOOKS = [BLOCKS, RESNET]
EDITORS = ("Jupyter", "VS Code", "Colab", "old Jupyter", "nbformat 3")
STRIPPING = {"VS Code", "Colab"}  # the editors that save cells without their nbgrader metadata
EDITS = ("delete", "duplicate", "move")
# How a notebook gets renamed: a browser downloads it twice, Colab or Jupyter copy it, a student retypes the name.
RENAMES = ("{name} (1).ipynb", "Copy of {name}.ipynb", "{name}-Copy1.ipynb", "{capitalized}.ipynb")
FUZZED_STUDENTS = 18  # the 12 kinds of odd submission forced once each, and 6 students with what chance gives
CELL_TIMEOUT = 60


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return build_course(tmp_path_factory.mktemp("course") / "course")


def solved(release: Path, notebook: str) -> nbformat.NotebookNode:
    return fill_in(release / f"{notebook}.ipynb", reference_solutions())


def pasted(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `cell`, as Jupyter pastes it: with an id of its own."""
    duplicate = copy.deepcopy(cell)
    duplicate.id = generate_corpus_id()
    return duplicate


def layout(notebook: nbformat.NotebookNode) -> list[str]:
    """The grade_ids of the cells nbgrader tracks, in order."""
    return [grade_id(cell) for cell in notebook.cells if grade_id(cell)]


def released_layout(release: Path, notebook: str) -> list[str]:
    return layout(nbformat.read(release / f"{notebook}.ipynb", as_version=4))


def cell_index(notebook: nbformat.NotebookNode, wanted: str) -> int:
    return next(index for index, cell in enumerate(notebook.cells) if grade_id(cell) == wanted)


def saved_by(notebook: nbformat.NotebookNode, editor: str, minor: int = 4) -> str:
    """The file an editor writes for `notebook`: nbformat 3, or 4.x without cell ids, with or without nbgrader metadata."""
    if editor == "nbformat 3":
        return nbformat.writes(nbformat.convert(copy.deepcopy(notebook), 3))
    data = json.loads(nbformat.writes(notebook))
    if editor == "Jupyter":
        return json.dumps(data)
    data["nbformat_minor"] = {"VS Code": 4, "Colab": 0}.get(editor, minor)
    for cell in data["cells"]:
        cell.pop("id")
        if editor in STRIPPING:
            cell["metadata"] = {"id": f"cell{id(cell)}"} if editor == "Colab" else {}
    if editor == "Colab":
        data["metadata"] = {"colab": {"provenance": []}, "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    return json.dumps(data, indent=2)


def repaired(tmp_path: Path, release: Path, notebook: str, content: str | nbformat.NotebookNode,
             filename: str | None = None):
    folder = tmp_path / "student"
    folder.mkdir(exist_ok=True)
    text = content if isinstance(content, str) else nbformat.writes(content)
    (folder / (filename or f"{notebook}.ipynb")).write_text(text)
    return prepare_submission(folder, notebook, NOTEBOOKS, release / f"{notebook}.ipynb")


# --- One odd notebook at a time ---------------------------------------------------------------------


def test_a_submission_as_jupyter_saves_it_is_left_as_it_is(tmp_path, release):
    notebook = solved(release, BLOCKS)
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert submission.notes == []
    assert [cell.source for cell in submission.notebook.cells] == [cell.source for cell in notebook.cells]


def test_deleted_test_cells_are_restored_after_the_cell_before_them(tmp_path, release):
    notebook = solved(release, BLOCKS)
    for name in ("identity_block_out", "identity_block_hidden"):
        del notebook.cells[cell_index(notebook, name)]
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    assert submission.notes == ["restored these test cells, missing from the submission, from the release: "
                                "identity_block_out, identity_block_hidden"]
    cells = submission.notebook.cells
    assert grade_id(cells[cell_index(submission.notebook, "identity_block") + 1]) == "identity_block_out"


def test_copies_of_a_test_cell_are_removed_marked_or_not(tmp_path, release):
    notebook = solved(release, BLOCKS)
    public = notebook.cells[cell_index(notebook, "identity_block_public")]
    unmarked = nbformat.v4.new_code_cell(public.source)
    notebook.cells[5:5] = [unmarked]
    notebook.cells.append(pasted(public))
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    assert sum(cell.source == public.source for cell in submission.notebook.cells) == 1
    assert submission.notes == ["removed copies of these test cells before grading: identity_block_public"]


def test_a_copy_pasted_above_the_code_it_tests_is_removed_and_the_test_in_place_stays(tmp_path, release):
    notebook = solved(release, BLOCKS)
    original = notebook.cells[cell_index(notebook, "identity_block_hidden")]
    copied = pasted(original)
    notebook.cells.insert(0, copied)
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    ids = {cell.id for cell in submission.notebook.cells}
    assert original.id in ids and copied.id not in ids
    assert submission.notes == ["removed copies of these test cells before grading: identity_block_hidden"]


def test_a_test_cell_moved_above_the_code_it_tests_goes_back_below_it(tmp_path, release):
    notebook = solved(release, BLOCKS)
    hidden = notebook.cells.pop(cell_index(notebook, "convolutional_block_hidden"))
    notebook.cells.insert(0, hidden)
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    assert submission.notes == ["moved these test cells back to their place before grading: convolutional_block_hidden"]


def test_a_solution_moved_below_its_tests_stays_and_the_tests_follow_it(tmp_path, release):
    notebook = solved(release, BLOCKS)
    solution = notebook.cells.pop(cell_index(notebook, "identity_block"))
    notebook.cells.insert(cell_index(notebook, "identity_block_hidden") + 1, solution)
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    assert "identity_block_out, identity_block_public, identity_block_hidden" in submission.notes[0]


def test_cells_a_student_adds_between_the_code_and_its_tests_stay_where_they_are(tmp_path, release):
    notebook = solved(release, BLOCKS)
    scratch = nbformat.v4.new_code_cell("identity_block = identity_block  # my own checks")
    notebook.cells.insert(cell_index(notebook, "identity_block") + 1, scratch)
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert submission.notes == []
    after_solution = submission.notebook.cells[cell_index(submission.notebook, "identity_block") + 1]
    assert after_solution.source == scratch.source


def test_an_edited_test_cell_stays_for_nbgrader_to_restore(tmp_path, release):
    notebook = solved(release, BLOCKS)
    notebook.cells[cell_index(notebook, "identity_block_public")].source = 'print("All tests passed")'
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    assert submission.notes == []  # the worker notes the edit, once nbgrader has restored the cell
    public = submission.notebook.cells[cell_index(submission.notebook, "identity_block_public")]
    assert public.source == 'print("All tests passed")'


@pytest.mark.parametrize("editor", sorted(STRIPPING))
def test_nbgrader_metadata_an_editor_dropped_is_restored_by_matching_the_release(tmp_path, release, editor):
    notebook = solved(release, BLOCKS)
    notebook.cells[cell_index(notebook, "identity_block_public")].source += "\n# a comment the student added"
    submission = repaired(tmp_path, release, BLOCKS, saved_by(notebook, editor))
    assert layout(submission.notebook) == released_layout(release, BLOCKS)
    assert len(submission.notes) == 1 and "nbgrader metadata of these cells was missing" in submission.notes[0]
    solution = submission.notebook.cells[cell_index(submission.notebook, "identity_block")]
    assert solution.source == reference_solutions()["identity_block"]
    assert submission.notebook.nbformat_minor == nbformat.current_nbformat_minor
    nbformat.validate(submission.notebook)


@pytest.mark.parametrize("notebook", [BLOCKS, RESNET])
def test_the_demos_an_editor_stripped_of_their_tags_are_skipped_when_grading_as_in_the_release(tmp_path, release,
                                                                                                notebook):
    submission = repaired(tmp_path, release, notebook, saved_by(solved(release, notebook), "VS Code"))
    released = nbformat.read(release / f"{notebook}.ipynb", 4)
    skipped = [skipped_when_grading(cell) for cell in released.cells]
    assert any(skipped), "the release has demos to skip"
    assert [skipped_when_grading(cell) for cell in submission.notebook.cells] == skipped


def test_a_stripped_test_cell_that_was_moved_is_found_by_its_code(tmp_path, release):
    notebook = solved(release, RESNET)
    public = notebook.cells.pop(cell_index(notebook, "resnet50_public"))
    notebook.cells.insert(0, public)
    submission = repaired(tmp_path, release, RESNET, saved_by(notebook, "VS Code"))
    assert layout(submission.notebook) == released_layout(release, RESNET)
    assert any("back to their place" in note and "resnet50_public" in note for note in submission.notes)


@pytest.mark.parametrize("minor", range(5))
def test_nbformat_4_before_4_5_is_upgraded_with_an_id_per_cell(tmp_path, release, minor):
    submission = repaired(tmp_path, release, BLOCKS, saved_by(solved(release, BLOCKS), "old Jupyter", minor))
    assert submission.notebook.nbformat_minor == nbformat.current_nbformat_minor
    assert len({cell.id for cell in submission.notebook.cells}) == len(submission.notebook.cells)
    assert layout(submission.notebook) == released_layout(release, BLOCKS) and submission.notes == []


def test_nbformat_3_is_upgraded_and_noted(tmp_path, release):
    submission = repaired(tmp_path, release, RESNET, saved_by(solved(release, RESNET), "nbformat 3"))
    assert submission.notebook.nbformat == 4
    assert layout(submission.notebook) == released_layout(release, RESNET)
    assert submission.notes == [
        "03_resnet50.ipynb was saved as nbformat 3 (an old Jupyter) and upgraded to nbformat 4 before grading"]


def test_copied_cells_that_share_an_id_get_ids_of_their_own(tmp_path, release):
    notebook = solved(release, BLOCKS)
    notebook.cells.append(copy.deepcopy(notebook.cells[0]))
    submission = repaired(tmp_path, release, BLOCKS, json.dumps(nbformat.from_dict(notebook)))
    assert len({cell.id for cell in submission.notebook.cells}) == len(submission.notebook.cells)


def test_huge_outputs_are_replaced_by_a_line_and_small_ones_kept(tmp_path, release):
    notebook = solved(release, BLOCKS)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    code[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (2 * OUTPUT_LIMIT))]
    code[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="a small output\n")]
    submission = repaired(tmp_path, release, BLOCKS, notebook)
    code = [cell for cell in submission.notebook.cells if cell.cell_type == "code"]
    assert "removed before grading" in code[0].outputs[0].text
    assert code[1].outputs[0].text == "a small output\n"
    assert submission.notes == ["removed 1 output(s) over 1 MB (2.0 MB) before grading, which runs the notebook again"]


@pytest.mark.parametrize("filename", ["03_resnet50 (1).ipynb", "03_ResNet50.ipynb", "Copy of 03_resnet50.ipynb",
                                      "03_resnet50-Copy1.ipynb"])
def test_a_renamed_notebook_is_graded_under_its_name(tmp_path, release, filename):
    submission = repaired(tmp_path, release, RESNET, solved(release, RESNET), filename)
    assert submission.notes == [f"graded {filename} as {RESNET}.ipynb"]


def test_the_notebook_under_its_own_name_wins_over_a_renamed_copy(tmp_path, release):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / f"{RESNET} (1).ipynb").write_text("not even JSON")
    submission = repaired(tmp_path, release, RESNET, solved(release, RESNET))
    assert submission.notes == []


def test_two_renamed_copies_are_refused_naming_both(tmp_path, release):
    (tmp_path / "student").mkdir()
    for name in (f"{RESNET} (1).ipynb", f"{RESNET} (2).ipynb"):
        nbformat.write(solved(release, RESNET), tmp_path / "student" / name)
    both = r"several files could be it \(03_resnet50 \(1\).ipynb, 03_resnet50 \(2\).ipynb\)"
    with pytest.raises(SubmissionError, match=both):
        prepare_submission(tmp_path / "student", RESNET, NOTEBOOKS, release / f"{RESNET}.ipynb")


def test_another_notebook_of_the_kit_is_not_taken_for_a_renamed_one(tmp_path, release):
    (tmp_path / "student").mkdir()
    nbformat.write(solved(release, BLOCKS), tmp_path / "student" / f"{BLOCKS}.ipynb")
    with pytest.raises(SubmissionError, match=f"^no submitted notebook {RESNET}.ipynb$"):
        prepare_submission(tmp_path / "student", RESNET, NOTEBOOKS, release / f"{RESNET}.ipynb")


def test_a_file_that_is_not_a_notebook_is_refused_naming_it(tmp_path, release):
    with pytest.raises(SubmissionError, match=f"{BLOCKS}.ipynb is not a valid notebook file"):
        repaired(tmp_path, release, BLOCKS, '{"cells": [oops')


# --- The fuzzed class ----------------------------------------------------------------------------------


@dataclass
class Fuzzed:
    """One fuzzed student: their files, whether they solved the exercises, what each notebook's rows must say."""

    files: dict[str, str] = field(default_factory=dict)
    solved: bool = True
    notes: dict[str, list[str]] = field(default_factory=dict)  # notebook -> texts every one of its rows contains


def fuzzed_notebook(release: Path, notebook: str, student: Fuzzed, rng: random.Random, forced: tuple) -> None:
    """Add `notebook`, odd in the `forced` way and in random others, to `student`'s files and expected notes."""
    content = solved(release, notebook) if student.solved else nbformat.read(release / f"{notebook}.ipynb", as_version=4)
    editor = forced[1] if forced[0] == "editor" else rng.choice(EDITORS)
    notes = student.notes.setdefault(notebook, [])
    tests = [grade_id(cell) for cell in content.cells if is_test(cell)]
    edits = [forced[1]] if forced[0] == "edit" else []
    edits += rng.sample(EDITS, rng.choice([0, 0, 1, 2]))
    for edit, target in zip(edits, rng.sample(tests, len(edits))):
        index = cell_index(content, target)
        if edit == "duplicate" and editor in STRIPPING and not content.cells[index].source.strip():
            continue  # a copy of an empty hidden test cell, unmarked, is an empty cell like any other: nothing to repair
        notes.append(target)
        if edit == "delete":
            del content.cells[index]
        elif edit == "duplicate":
            content.cells.insert(rng.randrange(len(content.cells) + 1), pasted(content.cells[index]))
        else:  # moved to the top, or just above the code it tests: before its solution cell either way
            cell = content.cells.pop(index)
            solution = max(i for i in range(index) if content.cells[i].metadata.get("nbgrader", {}).get("solution"))
            content.cells.insert(rng.choice([0, solution]), cell)
    if forced[0] == "huge output" or rng.random() < 0.1:
        cell = rng.choice([cell for cell in content.cells if cell.cell_type == "code"])
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="loss 0.1\n" * (OUTPUT_LIMIT // 4))]
        notes.append("removed 1 output(s) over 1 MB")
    filename = f"{notebook}.ipynb"
    if forced[0] == "rename" or rng.random() < 0.1:
        pattern = forced[1] if forced[0] == "rename" else rng.choice(RENAMES)
        filename = pattern.format(name=notebook, capitalized=notebook.title())
        notes.append(f"graded {filename} as {notebook}.ipynb")
    if editor == "nbformat 3":
        notes.append("was saved as nbformat 3")
    elif editor in STRIPPING:
        notes.append("nbgrader metadata of these cells was missing")
    student.files[filename] = saved_by(content, editor, minor=rng.randrange(5))


def fuzzed_class(release: Path, size: int = FUZZED_STUDENTS, seed: int = 12) -> dict[str, Fuzzed]:
    """`size` students, each with at least one odd feature: the first ones each have one kind forced (so that every
    kind is in the class whatever the seed), the others only what chance gives them; about one in six has not
    solved the exercises."""
    kinds = [("editor", editor) for editor in EDITORS[1:]] + [("edit", edit) for edit in EDITS] + \
            [("huge output", None)] + [("rename", pattern) for pattern in RENAMES]
    rng = random.Random(seed)
    students = {}
    for number in range(size):
        student = Fuzzed(solved=number % 6 != 5)
        forced = kinds[number] if number < len(kinds) else rng.choice(kinds)
        forced_notebook = rng.choice(NOTEBOOKS)
        for notebook in NOTEBOOKS:
            fuzzed_notebook(release, notebook, student, rng, forced if notebook == forced_notebook else ("none", None))
        students[f"fuzz{number:02d}"] = student
    return students


def test_the_fuzzed_class_has_every_kind_of_odd_submission(release):
    students = fuzzed_class(release)
    files = [(name, text) for student in students.values() for name, text in student.files.items()]
    names = {name for name, _ in files}
    assert len(students) >= 18 and all(any(student.notes.values()) for student in students.values())
    for pattern in RENAMES:
        assert any(pattern.format(name=notebook, capitalized=notebook.title()) in names for notebook in NOTEBOOKS), pattern
    for minor in range(5):
        assert any(f'"nbformat_minor": {minor}' in text for _, text in files), minor
    assert any('"nbformat": 3' in text for _, text in files) and any('"colab"' in text for _, text in files)
    assert any(len(text) > OUTPUT_LIMIT for _, text in files) and any(not student.solved for student in students.values())
    edited = [note for student in students.values() for notes in student.notes.values() for note in notes
              if note.startswith(("identity", "convolutional", "preactivation", "resnet50"))]
    assert len(edited) >= 3 * len(EDITS)


def test_every_fuzzed_submission_repairs_to_the_release_layout(tmp_path, release):
    for name, student in fuzzed_class(release).items():
        folder = tmp_path / name
        folder.mkdir()
        for filename, text in student.files.items():
            (folder / filename).write_text(text)
        for notebook in NOTEBOOKS:
            submission = prepare_submission(folder, notebook, NOTEBOOKS, release / f"{notebook}.ipynb")
            assert layout(submission.notebook) == released_layout(release, notebook), (name, notebook)
            for text in student.notes[notebook]:
                assert any(text in note for note in submission.notes), (name, notebook, text, submission.notes)


@pytest.fixture(scope="module")
def fuzzed_grades(tmp_path_factory, release) -> tuple[dict[str, Fuzzed], dict[str, dict[str, dict]]]:
    """Grade the fuzzed class once; the class, and student -> grade_id -> row of grades.csv."""
    work = tmp_path_factory.mktemp("fuzzed")
    students = fuzzed_class(release)
    for name, student in students.items():
        (work / "submissions" / name).mkdir(parents=True)
        for filename, text in student.files.items():
            (work / "submissions" / name / filename).write_text(text)
    out = work / "grades"
    # with the grader's default memory cap, what instructors get
    result = subprocess.run([sys.executable, "-m", "tools.grading.grade", str(work / "submissions"), "--out", str(out),
                             "--timeout", str(CELL_TIMEOUT)], cwd=KIT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    table: dict[str, dict[str, dict]] = {}
    with open(out / "grades.csv") as file:
        for row in csv.DictReader(file):
            assert row["grade_id"] not in table.setdefault(row["student_id"], {}), f"two rows for {row}"
            table[row["student_id"]][row["grade_id"]] = row
    return students, table


@pytest.mark.slow
@needs_bwrap
def test_every_fuzzed_student_gets_one_row_per_graded_cell_with_the_same_max_score(fuzzed_grades, release):
    students, table = fuzzed_grades
    graded = [cell for notebook in NOTEBOOKS
              for cell in nbformat.read(release / f"{notebook}.ipynb", as_version=4).cells
              if cell.metadata.get("nbgrader", {}).get("grade")]
    expected = {grade_id(cell): float(cell.metadata["nbgrader"]["points"]) for cell in graded}
    assert set(table) == set(students)
    for name, rows in table.items():
        assert {grade: float(row["max_score"]) for grade, row in rows.items()} == expected, name


@pytest.mark.slow
@needs_bwrap
def test_fuzzed_students_who_solved_the_exercises_score_full_marks_and_the_others_zero(fuzzed_grades):
    students, table = fuzzed_grades
    for name, student in students.items():
        rows = table[name].values()
        scores = [float(row["score"]) for row in rows]
        if student.solved:
            assert scores == [float(row["max_score"]) for row in rows], (name, [row["reason"] for row in rows])
            assert {row["status"] for row in rows} == {"passed"}, name
        else:
            assert sum(scores) == 0 and any("not done yet" in row["reason"] for row in rows), name


@pytest.mark.slow
@needs_bwrap
def test_each_repair_is_noted_on_the_rows_of_its_notebook(fuzzed_grades):
    students, table = fuzzed_grades
    for name, student in students.items():
        for row in table[name].values():
            for text in student.notes[row["notebook"]]:
                assert text in row["reason"], (name, row["grade_id"], text, row["reason"])
