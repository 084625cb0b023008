"""The README is a newcomer's first five minutes, and the guides are for their readers, not a lab notebook."""

from __future__ import annotations

import re

import pytest

from resnets_utils import KIT_DIR
from tools.docs.benchmarks import BEGIN, END, PAGE

README = KIT_DIR / "README.md"
# Prose that carries a measurement's circumstances: a date, a clock time, a CPU's brand or model.
LAB_NOTEBOOK = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b|\bUTC\b|\bEPYC\b|\bXeon\b|\bIntel\b|\bAMD\b")
GUIDES = sorted(path for path in (KIT_DIR / "docs").glob("*.md") if path != PAGE)
FOLDER_READMES = [KIT_DIR / name / "README.md" for name in ("models", "datasets", "deploy", "autograder")]


def prose(path) -> str:
    """The text a person wrote: a card's generated tables (records, with their CPU and date) left out."""
    return re.sub(re.escape(BEGIN).replace(r"\{name\}", r"[\w-]+") + ".*?" + re.escape(END), "", path.read_text(), flags=re.S)


def test_the_readme_fits_the_first_five_minutes():
    words = len(README.read_text().split())
    assert words <= 1200, f"README.md has {words} words: keep it to about 1,200 and move the rest to docs/"
    assert "make lab" in README.read_text() and "make test" in README.read_text()


@pytest.mark.parametrize("path", [README, *GUIDES, *FOLDER_READMES], ids=lambda path: str(path.relative_to(KIT_DIR)))
def test_no_dates_clock_times_or_cpu_names_in_the_prose(path):
    found = [line.strip() for line in prose(path).splitlines() if LAB_NOTEBOOK.search(line)]
    assert not found, f"{path.name}: measurements belong in benchmarks/ records, not prose: {found[:3]}"


def test_the_readme_links_a_guide_for_each_reader():
    text = README.read_text()
    for guide in ("students", "instructors", "development", "model-card", "data-card", "benchmarks"):
        assert f"(docs/{guide}.md)" in text, f"README.md does not link docs/{guide}.md"
        assert (KIT_DIR / "docs" / f"{guide}.md").is_file()
