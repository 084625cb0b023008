"""`make release` gives students the exercises, never the answers, in English and in Chinese (`EDITION=zh`).

The release is what nbgrader's generate_assignment makes from the source notebooks, plus the
files the notebooks need beside them.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools.grading.nbgrader_course import STUDENT_FILES, build_course, source_notebooks

REGION = {"solution": ("### BEGIN SOLUTION", "### END SOLUTION"), "hidden test": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")}


@pytest.fixture(scope="module", params=["en", "zh"])
def edition(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def release(tmp_path_factory, edition) -> Path:
    return build_course(tmp_path_factory.mktemp("course") / "course", edition)


def lines_of(kind: str, edition: str) -> tuple[set[str], set[str]]:
    """(lines inside the edition's regions of `kind`, lines anywhere else in its notebooks)."""
    begin, end = REGION[kind]
    inside, outside = set(), set()
    for path in source_notebooks(edition):
        for cell in nbformat.read(path, 4).cells:
            within = False
            for line in cell.source.splitlines():
                stripped = line.strip()
                if stripped == begin:
                    within = True
                elif stripped == end:
                    within = False
                elif stripped:
                    (inside if within else outside).add(stripped)
    return inside, outside


def release_lines(release: Path) -> set[str]:
    """Every line of every text file of the release, notebooks read cell by cell."""
    lines = set()
    for path in release.rglob("*"):
        if path.suffix == ".ipynb":
            for cell in nbformat.read(path, 4).cells:
                lines.update(line.strip() for line in cell.source.splitlines())
        elif path.suffix in {".py", ".md", ".txt", ".json"}:
            lines.update(line.strip() for line in path.read_text().splitlines())
    return lines


@pytest.mark.parametrize("kind", REGION)
def test_no_line_of_a_solution_or_hidden_test_is_in_the_release(release, edition, kind):
    inside, outside = lines_of(kind, edition)
    secret = inside - outside  # a line that also appears outside the regions is no secret
    assert len(secret) > 10, f"the source notebooks should have {kind} regions"
    leaked = secret & release_lines(release)
    assert not leaked, f"{kind} lines found in the release: {sorted(leaked)[:5]}"


def test_the_release_has_every_notebook_and_the_files_they_need(release, edition):
    assert sorted(path.name for path in release.glob("*.ipynb")) == [path.name for path in source_notebooks(edition)]
    for name in STUDENT_FILES:
        if (Path(__file__).parent.parent / name).exists():
            assert (release / name).exists(), name


def test_the_release_keeps_the_scaffolding_and_clears_outputs(release, edition):
    blocks = nbformat.read(release / "02_residual_blocks.ipynb", 4)
    exercise = next(cell for cell in blocks.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "identity_block")
    assert "### START CODE HERE ###" in exercise.source and {"en": "(≈3 lines)", "zh": "（≈3 行）"}[edition] in exercise.source
    assert "raise NotImplementedError()" in exercise.source
    for path in release.glob("*.ipynb"):
        assert all(not cell.get("outputs") for cell in nbformat.read(path, 4).cells), path.name


def test_the_release_notebooks_find_their_pictures_and_guides(release):
    for path in release.glob("*.ipynb"):
        for cell in nbformat.read(path, 4).cells:
            for link in re.findall(r"\]\(([^)#]+\.(?:png|md))\)", cell.source):
                assert (release / link).is_file(), f"{path.name} links {link}"
