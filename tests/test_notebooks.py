"""The notebooks keep their promises, in English (the source) and in Chinese (`notebooks/zh/`, generated
from it): expected outputs match the code, graded cells carry nbgrader metadata, one structure."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.course.sync_expected import EXPECTED_HEADING, out_values, printed_text

KIT = Path(__file__).resolve().parents[1]
SOURCE_NOTEBOOKS = sorted((KIT / "notebooks").glob("*.ipynb"))
NOTEBOOKS = SOURCE_NOTEBOOKS + sorted((KIT / "notebooks" / "zh").glob("*.ipynb"))
# The fixed words of a notebook's structure, in each edition.
WORDS = {
    "en": {"goals": "**After this notebook you can:**", "remember": "## What you should remember",
           "expected": EXPECTED_HEADING, "exercise": "### Exercise"},
    "zh": {"goals": "**学完本笔记本，你将能够：**", "remember": "## 要点回顾", "expected": "**预期输出**", "exercise": "### 练习"},
}


def words(path: Path) -> dict[str, str]:
    return WORDS["zh" if path.parent.name == "zh" else "en"]


def cells_of(path):
    return nbformat.read(path, as_version=4).cells


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_expected_output_equals_what_the_cell_above_printed(path):
    previous_code = None
    for cell in cells_of(path):
        if cell.cell_type == "markdown" and cell.source.startswith(words(path)["expected"]):
            assert previous_code is not None
            assert cell.source == f"{words(path)['expected']}\n\n```\n{printed_text(previous_code).rstrip()}\n```", (
                "an Expected output block drifted from the code: run `python -m tools.course.sync_expected`"
            )
        elif cell.cell_type == "code":
            previous_code = cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_hidden_tests_assert_the_printed_out_values(path):
    last_outs = None
    for cell in cells_of(path):
        if cell.cell_type != "code":
            continue
        if "### BEGIN HIDDEN TESTS" in cell.source:
            line = re.search(r"^EXPECTED_OUTS = (\[.*\])", cell.source, flags=re.M)
            assert line and eval(line.group(1)) == last_outs, "a hidden test's EXPECTED_OUTS is not what the code printed"
        last_outs = out_values(printed_text(cell)) or last_outs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_has_stored_outputs_from_one_run(path):
    counts = [c.execution_count for c in cells_of(path) if c.cell_type == "code" and c.source.strip()]
    assert all(counts), "execute the notebook and save it: nbval compares stored outputs"
    assert counts == list(range(1, len(counts) + 1)), "outputs must come from one top-to-bottom run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_goals_sections_and_what_to_remember(path):
    cells = cells_of(path)
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert cells[0].source.startswith(f"# {int(path.name[:2])}. "), "the title is '# N. ...'"
    assert words(path)["goals"] in cells[0].source
    assert re.search(r"^## 1\. ", text, flags=re.M), "sections are numbered"
    assert cells[-1].source.startswith(words(path)["remember"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_graded_cells_carry_nbgrader_metadata(path):
    for cell in cells_of(path):
        meta = nbgrader(cell)
        has_solution = "### BEGIN SOLUTION" in cell.source
        has_hidden = "### BEGIN HIDDEN TESTS" in cell.source
        if has_solution:
            assert meta.get("solution") and meta.get("grade_id"), "a solution cell needs nbgrader solution metadata"
            assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION")
            assert "### START CODE HERE ###" in cell.source and "≈" in cell.source, "solutions sit in hinted scaffolding"
        if has_hidden:
            assert meta.get("grade") and meta.get("locked") and meta.get("points", 0) > 0
        if meta.get("grade"):
            assert meta.get("locked"), "test cells are locked"
    ids = [nbgrader(c)["grade_id"] for c in cells_of(path) if nbgrader(c)]
    assert len(ids) == len(set(ids)), "grade_ids are unique"


@pytest.mark.parametrize("edition", WORDS)
def test_exercises_are_numbered_across_the_kit(edition):
    numbers = [
        int(n)
        for path in NOTEBOOKS
        if words(path) is WORDS[edition]
        for cell in cells_of(path)
        if cell.cell_type == "markdown"
        for n in re.findall(rf"^{WORDS[edition]['exercise']} (\d+)", cell.source, flags=re.M)
    ]
    assert numbers and numbers == list(range(1, len(numbers) + 1))


def nbval_runs(target: str) -> list[str]:
    """The notebooks that `make TARGET` hands to nbval, as make would run them (`make -n`)."""
    commands = subprocess.run(["make", "-s", "-n", target], cwd=KIT, capture_output=True, text=True, check=True).stdout
    return [name for line in commands.splitlines() if "--nbval" in line for name in re.findall(r"\S+\.ipynb", line)]


def test_ci_runs_every_notebook_of_each_edition_and_trains_none_twice():
    """`make test` and `make test-portable` (CI runs both) between them run every notebook in nbval, the training
    notebooks 1 and 4 once per edition: their Chinese code is the English code, so one run of each suffices."""
    runs = nbval_runs("test") + nbval_runs("test-portable")
    counts = {str(path.relative_to(KIT)): runs.count(str(path.relative_to(KIT))) for path in NOTEBOOKS}
    assert all(counts.values()), f"never run by nbval in make test-all: {[name for name, n in counts.items() if not n]}"
    twice = [name for name, n in counts.items() if n > 1 and re.search(r"/0[14]_", name)]
    assert not twice, f"training notebooks run twice: {twice}"
    assert set(nbval_runs("test")) >= {str(path.relative_to(KIT)) for path in SOURCE_NOTEBOOKS}, \
        "`make test`, the README's command, runs every English notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_kits_kernel(path):
    assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == "resnets-kit"


def test_kits_kernel_keeps_library_log_lines_out_of_the_cells(tmp_path, monkeypatch):
    import json
    import sys

    from tools.course import install_kernel

    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    install_kernel.main()
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "resnets-kit" / "kernel.json").read_text())
    assert "--IPKernelApp.capture_fd_output=False" in spec["argv"]
    assert (install_kernel.site_packages() / install_kernel.ONEDNN_DEFAULT_FILE).read_text() == install_kernel.ONEDNN_DEFAULT_LINE


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_a_notebook_shows_is_in_the_kit(path):
    for cell in cells_of(path):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", cell.source if cell.cell_type == "markdown" else ""):
            assert (path.parent / target).resolve().is_file(), f"{path.name} shows {target}, which is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_link_of_a_notebook_to_a_file_of_the_kit_leads_to_it(path):
    for cell in cells_of(path):
        for target in re.findall(r"\]\(([^)#]+)\)", cell.source if cell.cell_type == "markdown" else ""):
            if "://" not in target:
                assert (path.parent / target).resolve().is_file(), f"{path.name} links {target}, which is missing"


def test_the_notebooks_point_at_the_cards_not_at_the_folders_readmes():
    """The facts the notebooks send students to live in docs/ (the model card, the data card)."""
    for path in NOTEBOOKS:
        text = "".join(cell.source for cell in cells_of(path) if cell.cell_type == "markdown")
        assert "models/README.md" not in text and "datasets/README.md" not in text, path.name
