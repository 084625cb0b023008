"""`make site` builds the course as a website: the guides, and the notebooks as students get them, never the answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_release import REGION, lines_of
from tools.docs import site
from tools.grading.nbgrader_course import source_notebooks


@pytest.fixture(scope="module")
def built() -> Path:
    return site.build()  # raises SiteError on a broken link: MkDocs' --strict for the pages, the kit's check for all


def test_the_site_has_a_home_page_the_guides_and_every_notebook(built):
    names = {path.name for path in built.glob("*.html")}
    expected = {"index.html", "students.html", "instructors.html", "development.html", "model-card.html", "data-card.html",
                "benchmarks.html"} | {f"{path.stem}.html" for path in source_notebooks()} \
        | {f"zh-{path.stem}.html" for path in source_notebooks("zh")}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert "Residual networks, hands on" in (built / "index.html").read_text()


@pytest.mark.parametrize("kind", REGION)
@pytest.mark.parametrize("edition", ["en", "zh"])
def test_no_line_of_a_solution_or_hidden_test_is_on_the_site(built, kind, edition):
    inside, outside = lines_of(kind, edition)
    secret = inside - outside  # a line that also appears outside the regions is no secret
    assert len(secret) > 10, f"the source notebooks should have {kind} regions"
    leaked = secret & site.page_lines(built)
    assert not leaked, f"{kind} lines found on the site: {sorted(leaked)[:5]}"


def test_the_notebook_pages_show_the_stored_outputs_and_the_exercise_stubs(built):
    lines = site.page_lines(built)
    assert "raise NotImplementedError()" in lines  # the student's version of an exercise
    assert any(line.startswith("out = [") for line in lines)  # a printed result, as the source notebook stored it


def test_a_link_to_a_missing_page_is_named(tmp_path):
    (tmp_path / "index.html").write_text('<a href="guide.html">x</a><a href="https://keras.io/">y</a><a href="#top">z</a>'
                                         '<img src="images/a.png"><a href="/index.html">home, from the site root</a>')
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"")
    assert site.broken_links(tmp_path) == ["index.html -> guide.html"]
