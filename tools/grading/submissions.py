"""Repair a submitted notebook against the release, so that every student is graded on the same cells.

nbgrader finds what to grade through each cell's nbgrader metadata (grade_id, locked, points), and
students' notebooks lose it in several ways:

- a deleted test cell is not graded at all; nbgrader's `OverwriteCells.add_missing_cells` would put
  it back, but raises KeyError when the cell before it in the source is neither graded nor a
  solution (as `identity_block_out` is), so the grader never turns it on;
- a copy of a test cell loses its lock (nbgrader's `DeduplicateIds`), and `RejectTampering` then sees
  student code that redefines `test_...`, which costs every point of the notebook;
- a moved test cell runs before the code it tests;
- VS Code, Colab and old Jupyter versions save the notebook without nbgrader's cell metadata, in
  nbformat 4.0 to 4.4 (cells without ids) or nbformat 3;
- outputs of many megabytes slow down every step that reads the notebook, and count for nothing:
  grading runs the notebook again;
- the file is renamed: `03_resnet50 (1).ipynb` from a browser, `Copy of ...` from Colab, another case.

`prepare_submission` finds the student's file, upgrades it to the current nbformat, and puts the
test cells back as the release has them; nbgrader then restores the contents of locked cells from the
source, hidden tests included. Each repair comes back as a note for the notebook's rows in grades.csv.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

import nbformat
from nbformat.corpus.words import generate_corpus_id

import resnets_utils
from resnets_utils import N_

OUTPUT_LIMIT = 1_000_000  # bytes: a larger output is replaced by a line saying so
LOCKED_SIMILARITY = 0.6  # how close (difflib ratio) an unmarked cell must be to a test cell to be taken for it
# What browsers, Colab, Jupyter and file managers add to a notebook's name: "Copy of x", "x (1)", "x-Copy1", "x copy".
COPY_PREFIX = re.compile(r"^copy of ", re.IGNORECASE)
COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|[-_ ]copy\d*)$", re.IGNORECASE)
DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.MULTILINE)


class SubmissionError(ValueError):
    """A notebook cannot be graded at all; the message names the file and the problem (in English; `said` in another
    language)."""

    def __init__(self, template: str, **fields: object):
        super().__init__(template.format(**fields))
        self.note = Note(template, fields)

    def said(self, speak) -> str:
        return self.note.said(speak)


class Note(NamedTuple):
    """A repair note, kept as its message and fields until the submission's language is known."""

    template: str
    fields: dict

    def said(self, speak=str) -> str:
        return speak(self.template).format(**self.fields)


@dataclass
class Submission:
    notebook: nbformat.NotebookNode  # ready for nbgrader
    notes: list[str]  # what was repaired, for the rows of this notebook, in its language
    edition: str = "en"  # "zh" for the Chinese edition


def edition_of(notebook: nbformat.NotebookNode) -> str:
    """"zh" for a notebook of the Chinese edition (its metadata says so, or it sets the kit's language to Chinese), else "en"."""
    if notebook.metadata.get("resnets_kit", {}).get("language", "").startswith("zh"):
        return "zh"
    chinese = any(cell.cell_type == "code" and 'resnets_utils.use_language("zh' in cell.source for cell in notebook.cells)
    return "zh" if chinese else "en"


def prepare_submission(student_dir: Path, notebook: str, notebooks: list[str], release: Path,
                       other_editions: Mapping[str, Path] | None = None) -> Submission:
    """The student's `notebook`, repaired against its `release` version; SubmissionError if there is none to grade.

    A notebook of another edition (`edition_of`) is repaired against that edition's release in `other_editions`
    ({"zh": release notebook}): its test cells are the same cells, in the student's language."""
    path, found = find_notebook(student_dir, notebook, notebooks)
    submitted, upgraded = read_notebook(path)
    early = found + upgraded + clip_outputs(submitted)
    edition = edition_of(submitted)
    release = (other_editions or {}).get(edition, release)
    speak = speaking(edition)
    notes = [note.said(speak) for note in early]
    notes += restore_test_cells(submitted, nbformat.read(release, as_version=4), speak)
    return Submission(submitted, notes, edition)


def speaking(edition: str):
    """The gettext function of an edition's language: what the grader tells a student of the Chinese edition is Chinese."""
    return resnets_utils.messages_in(edition)  # the kit's languages include the editions' names, "en" and "zh"


# --- The file --------------------------------------------------------------------------------------


def plain_name(filename: str) -> str:
    """A notebook's file name without what copying and downloading add to it, lower case."""
    stem = filename[: -len(".ipynb")] if filename.lower().endswith(".ipynb") else filename
    stem = COPY_PREFIX.sub("", stem.strip())
    while COPY_SUFFIX.search(stem):
        stem = COPY_SUFFIX.sub("", stem)
    return re.sub(r"[\s-]+", "_", stem).lower()


def find_notebook(student_dir: Path, notebook: str, notebooks: list[str]) -> tuple[Path, list[Note]]:
    """The file to grade as `notebook`: its own name, else the one renamed copy of it (with a note saying so)."""
    exact = student_dir / f"{notebook}.ipynb"
    if exact.is_file():
        return exact, []
    expected = {f"{name}.ipynb" for name in notebooks}
    renamed = sorted(path for path in student_dir.iterdir()
                     if path.is_file() and path.suffix.lower() == ".ipynb" and path.name not in expected
                     and plain_name(path.name) == notebook.lower())
    if len(renamed) == 1:
        return renamed[0], [Note(N_("graded {file} as {notebook}.ipynb"), {"file": renamed[0].name, "notebook": notebook})]
    if renamed:
        names = ", ".join(path.name for path in renamed)
        raise SubmissionError(N_("no submitted notebook {notebook}.ipynb, and several files could be it ({names}); "
                                 "rename the one to grade"), notebook=notebook, names=names)
    raise SubmissionError(N_("no submitted notebook {notebook}.ipynb"), notebook=notebook)


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode, list[Note]]:
    """The notebook at `path` in the current nbformat, and a note if it was nbformat 3. (Cells without an id, or
    sharing one with a cell they were copied from, get one of their own from nbformat as it reads them.)"""
    try:
        notebook = nbformat.read(path, as_version=4, capture_validation_error={})  # validated below, once upgraded
    except Exception as error:  # nbformat raises JSON, version and conversion errors
        raise SubmissionError(N_("{file} is not a valid notebook file ({problem})"), file=path.name, problem=first_line(error)) from None
    notes = []
    if notebook.metadata.get("orig_nbformat") == 3:
        notes.append(Note(N_("{file} was saved as nbformat 3 (an old Jupyter) and upgraded to nbformat 4 before grading"), {"file": path.name}))
    if notebook.nbformat_minor < nbformat.current_nbformat_minor:
        notebook = nbformat.v4.upgrade(notebook, from_version=4, from_minor=notebook.nbformat_minor)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        raise SubmissionError(N_("{file} is not a valid notebook file ({problem})"), file=path.name, problem=first_line(error)) from None
    return notebook, notes


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__


def clip_outputs(notebook: nbformat.NotebookNode) -> list[Note]:
    """Replace each output larger than OUTPUT_LIMIT by a line that says so; grading runs the notebook again anyway."""
    sizes = []
    for cell in notebook.cells:
        for index, output in enumerate(cell.get("outputs", [])):
            size = len(json.dumps(output))
            if size > OUTPUT_LIMIT:
                cell.outputs[index] = nbformat.v4.new_output(
                    "stream", name="stdout", text=f"[an output of {size / 1e6:.1f} MB was removed before grading]\n")
                sizes.append(size)
    if not sizes:
        return []
    return [Note(N_("removed {count} output(s) over {limit} MB ({total} MB) before grading, which runs the notebook again"),
                 {"count": len(sizes), "limit": f"{OUTPUT_LIMIT / 1e6:g}", "total": f"{sum(sizes) / 1e6:.1f}"})]


# --- The cells ---------------------------------------------------------------------------------------


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test(cell) -> bool:
    """A cell the student may not change: the graded tests and the locked cells that print what they check."""
    grading = cell.metadata.get("nbgrader", {})
    return bool(grading.get("locked")) and not grading.get("solution")


def restore_test_cells(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode, speak=str) -> list[str]:
    """Give `submitted` the release's test cells, once each and in the release's order; notes on what changed, in the
    language of `speak` (a gettext function).

    Student cells are never removed or moved, except copies of a test cell.
    """
    notes = []
    marked = restore_metadata(submitted, release)
    if marked:
        notes.append(speak(N_("the nbgrader metadata of these cells was missing (an editor such as VS Code or Colab drops it) "
                              "and was restored by matching the cells to the release: {cells}")).format(cells=", ".join(marked)))
    copies = drop_unmarked_copies(submitted, release)
    moved, marked_copies = take_out_of_order(submitted, release)
    copies = [cell for cell in test_ids(release) if cell in copies + marked_copies]
    deleted = put_back(submitted, release, moved)
    if copies:
        notes.append(speak(N_("removed copies of these test cells before grading: {cells}")).format(cells=", ".join(copies)))
    if moved:
        notes.append(speak(N_("moved these test cells back to their place before grading: {cells}")).format(cells=", ".join(moved)))
    if deleted:
        notes.append(speak(N_("restored these test cells, missing from the submission, from the release: {cells}")).format(
            cells=", ".join(deleted)))
    return notes


def test_ids(release: nbformat.NotebookNode) -> list[str]:
    """The grade_ids of the release's test cells, in order."""
    return [grade_id(cell) for cell in release.cells if is_test(cell)]


def candidates(release_cells: list, submitted_cells: list) -> dict[int, list[int]]:
    """For each release cell, the submitted cells that may be it, with the cells' contents aligned by difflib: the
    one at its place in a run of equal cells, else those in the same stretch of changed cells."""
    def key(cell):
        return cell.cell_type, cell.source.strip()
    matcher = difflib.SequenceMatcher(None, list(map(key, release_cells)), list(map(key, submitted_cells)), autojunk=False)
    found = {}
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2):
            if operation == "equal":
                found[i] = [j1 + i - i1]
            elif operation == "replace":
                found[i] = list(range(j1, j2))
    return found


def same_cell(release_cell, submitted_cell, *, at_its_place: bool) -> bool:
    """Whether an unmarked submitted cell is a release cell: a solution that still defines what the exercise asks
    for; a test with the very same code, or, at the test's place, nearly the same (edited, or an empty hidden one)."""
    if release_cell.cell_type != submitted_cell.cell_type:
        return False
    ours, theirs = release_cell.source.strip(), submitted_cell.source.strip()
    if is_test(release_cell):
        if at_its_place:
            return ours == theirs or difflib.SequenceMatcher(None, ours, theirs).ratio() >= LOCKED_SIMILARITY
        return bool(ours) and ours == theirs
    asked = set(DEFINITION.findall(release_cell.source))
    return bool(asked) and asked <= set(DEFINITION.findall(submitted_cell.source))


def restore_metadata(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Mark the cells an editor stripped of their nbgrader metadata as the release marks them (its tags too), and
    its demos as skipped when grading; the grade_ids of the marked cells."""
    present = {grade_id(cell) for cell in submitted.cells}
    wanted = {index: cell for index, cell in enumerate(release.cells) if grade_id(cell) and grade_id(cell) not in present}
    if not wanted:
        return []
    unmarked = {index for index, cell in enumerate(submitted.cells) if not grade_id(cell)}
    found = {}
    for i, options in candidates(release.cells, submitted.cells).items():
        if i in wanted:
            found[i] = next((j for j in options if j in unmarked - set(found.values())
                             and same_cell(release.cells[i], submitted.cells[j], at_its_place=True)), None)
    for i, cell in wanted.items():  # moved elsewhere
        if found.get(i) is None:
            found[i] = next((j for j in sorted(unmarked - set(found.values()))
                             if same_cell(cell, submitted.cells[j], at_its_place=False)), None)
    restored = []
    for i, j in sorted(found.items()):
        if j is not None:
            for key in ("nbgrader", "editable", "deletable", "tags"):
                if key in release.cells[i].metadata:
                    submitted.cells[j].metadata[key] = copy.deepcopy(release.cells[i].metadata[key])
            restored.append(grade_id(release.cells[i]))
    restore_demo_tags(submitted, release)
    return restored


def restore_demo_tags(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> None:
    """Tag again as `skip-when-grading` the untagged cells with the very code of a release demo so tagged.

    Called when an editor dropped the cells' metadata: without it every demo would run in grading
    (the Keras ResNet50s, the ResNet family), slower than the other students' grading and close to
    the kernel's memory cap. Tags only decide whether a cell without points runs (see
    `grading_preprocessors.skipped_when_grading`), so a tag put back cannot change a grade.
    """
    demos = {cell.source.strip() for cell in release.cells
             if cell.cell_type == "code" and not grade_id(cell) and "skip-when-grading" in cell.metadata.get("tags", [])}
    for cell in submitted.cells:
        if cell.cell_type == "code" and not grade_id(cell) and "tags" not in cell.metadata \
                and cell.source.strip() in demos:
            cell.metadata["tags"] = ["skip-when-grading"]


def drop_unmarked_copies(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Remove the unmarked cells with the very code of a test cell (`restore_metadata` has marked the one it took for
    the test already); the grade_ids of the tests they copied."""
    copied_from = {cell.source.strip(): grade_id(cell) for cell in release.cells if is_test(cell) and cell.source.strip()}
    kept, copied = [], []
    for cell in submitted.cells:
        if not grade_id(cell) and cell.cell_type == "code" and cell.source.strip() in copied_from:
            copied.append(copied_from[cell.source.strip()])
        else:
            kept.append(cell)
    submitted.cells = kept
    return copied


def take_out_of_order(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> tuple[list[str], list[str]]:
    """Remove the marked test cells that break the release's order; the grade_ids of those moved (for `put_back`),
    and of those copied (another copy is in order).

    The marked cells that stay are the heaviest subsequence in release order, a solution cell
    weighing more than all test cells together: the student's code stays, the tests move around it.
    """
    rank = {grade_id(cell): index for index, cell in enumerate(release.cells) if grade_id(cell)}
    marked = [j for j, cell in enumerate(submitted.cells) if grade_id(cell) in rank]
    weight = [1 if is_test(submitted.cells[j]) else len(marked) + 1 for j in marked]
    best, before = [], []  # best[k]: heaviest ordered chain ending at marked[k]; before[k]: its previous link
    for k, j in enumerate(marked):
        earlier = [m for m in range(k) if rank[grade_id(submitted.cells[marked[m]])] < rank[grade_id(submitted.cells[j])]]
        previous = max(earlier, key=lambda m: best[m], default=None)
        best.append(weight[k] + (best[previous] if previous is not None else 0))
        before.append(previous)
    chain, k = set(), max(range(len(marked)), key=lambda m: best[m], default=None)
    while k is not None:
        chain.add(marked[k])
        k = before[k]
    out_of_order = {j for j in marked if j not in chain and is_test(submitted.cells[j])}
    in_order = {grade_id(submitted.cells[j]) for j in chain}
    taken_out = {grade_id(submitted.cells[j]) for j in out_of_order}
    submitted.cells = [cell for j, cell in enumerate(submitted.cells) if j not in out_of_order]
    return sorted(taken_out - in_order, key=rank.get), sorted(taken_out & in_order, key=rank.get)


def put_back(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode, moved: list[str]) -> list[str]:
    """Insert each missing test cell, as released, right after the cell that comes before it in the release
    (the nearest one the submission has); the grade_ids of those not in `moved`: deleted, or changed beyond recognition."""
    deleted = []
    for index, cell in enumerate(release.cells):
        if not is_test(cell) or grade_id(cell) in {grade_id(c) for c in submitted.cells}:
            continue
        position = {grade_id(c): j for j, c in enumerate(submitted.cells) if grade_id(c)}
        anchors = [position[grade_id(c)] for c in reversed(release.cells[:index]) if grade_id(c) in position]
        later = [position[grade_id(c)] for c in release.cells[index + 1:] if grade_id(c) in position]
        at = anchors[0] + 1 if anchors else (later[0] if later else len(submitted.cells))
        restored = copy.deepcopy(cell)
        restored.id = generate_corpus_id()
        submitted.cells.insert(at, restored)
        if grade_id(cell) not in moved:
            deleted.append(grade_id(cell))
    return deleted
