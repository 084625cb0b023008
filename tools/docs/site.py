"""Build the course website: `python -m tools.docs.site` (what `make site` runs), into build/site/.

Its home page is README.md, its other pages `docs/` and the five notebooks as students get them, in English and, as
`zh-NN_name.html`, in Chinese: nbgrader's student release (no
solution, no hidden test) with the source notebooks' stored outputs put back, since the release clears
them and the site shows what a run prints without running anything. MkDocs with Material for MkDocs
renders it, and mkdocs-jupyter the notebooks (`mkdocs.yml`): all three install from PyPI and build
offline, where Jupyter Book 2's HTML build fetches its theme from the web at build time.

MkDocs checks the links of the Markdown pages (`--strict`); the notebooks reach it as HTML, so the
links of every built page are checked here, after the build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from resnets_utils import KIT_DIR
from tools.grading.nbgrader_course import build_course, source_notebooks

SOURCE = KIT_DIR / "build" / "site-src"
PAGES = SOURCE / "pages"  # mkdocs.yml's docs_dir
SITE = KIT_DIR / "build" / "site"  # mkdocs.yml's site_dir
DOCS_LINK = re.compile(r"\]\(docs/([\w-]+)\.md")  # a release notebook's link to a guide, docs/NAME.md
README_LINK = re.compile(r"\]\((?:docs|notebooks)/")  # the README's links into docs/ and notebooks/


class SiteError(RuntimeError):
    """The site could not be built, or a built page links to nothing."""


def with_stored_outputs(release: Path, source: Path) -> nbformat.NotebookNode:
    """The release notebook at `release` with the outputs stored in the source notebook, cell for cell,
    and its links to the guides pointing at their pages."""
    student, stored = nbformat.read(release, as_version=4), nbformat.read(source, as_version=4)
    if [cell.cell_type for cell in student.cells] != [cell.cell_type for cell in stored.cells]:
        raise SiteError(f"{release.name}: the release's cells do not line up with {source}'s")
    for cell, original in zip(student.cells, stored.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = original.outputs, original.execution_count
        elif cell.cell_type == "markdown":
            cell.source = DOCS_LINK.sub(r"](\1.html", cell.source)  # mkdocs.yml: use_directory_urls false
    return student


def stage_pages() -> None:
    """Write the README as the home page, docs/, images/ and the release notebooks with their outputs into PAGES."""
    release = build_course(SOURCE / "course")
    shutil.rmtree(PAGES, ignore_errors=True)
    shutil.copytree(KIT_DIR / "docs", PAGES)
    (PAGES / "index.md").write_text(README_LINK.sub("](", (KIT_DIR / "README.md").read_text()))
    shutil.copytree(KIT_DIR / "images", PAGES / "images")
    for source in source_notebooks():
        nbformat.write(with_stored_outputs(release / source.name, source), PAGES / source.name)
    chinese = build_course(SOURCE / "course-zh", "zh")
    for source in source_notebooks("zh"):  # beside the English pages, so that their links to the guides and pictures hold
        nbformat.write(with_stored_outputs(chinese / source.name, source), PAGES / f"zh-{source.name}")


class _Links(HTMLParser):
    """The href and src values of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def broken_links(site: Path = SITE) -> list[str]:
    """Every link between the site's own files that leads to no file: "page -> target"."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        for target in parser.targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:  # the web, or an anchor on the same page
                continue
            base = site if parts.path.startswith("/") else page.parent  # 404.html links from the site's root
            if not (base / unquote(parts.path).lstrip("/")).exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    return broken


class _Text(HTMLParser):
    """The text a reader sees on one HTML page (tags dropped, entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def page_lines(site: Path = SITE) -> set[str]:
    """Every stripped line of text of every page of the site, and of every notebook it offers for download."""
    lines: set[str] = set()
    for path in site.rglob("*"):
        if path.suffix == ".html":
            parser = _Text()
            parser.feed(path.read_text(errors="replace"))
            lines.update(line.strip() for line in "".join(parser.parts).splitlines())
        elif path.suffix == ".ipynb":
            for cell in nbformat.read(path, as_version=4).cells:
                lines.update(line.strip() for line in cell.source.splitlines())
    return lines


def build() -> Path:
    """Stage the pages, build the site with MkDocs (strict), check its links; returns build/site/."""
    stage_pages()
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "--config-file", str(KIT_DIR / "mkdocs.yml")],
                         cwd=KIT_DIR, capture_output=True, text=True)
    if run.returncode != 0:
        raise SiteError(f"mkdocs build failed:\n{run.stderr[-4000:]}")
    broken = broken_links(SITE)
    if broken:
        raise SiteError("links to nothing:\n  " + "\n  ".join(broken))
    return SITE


def main() -> None:
    try:
        site = build()
    except SiteError as error:
        sys.exit(f"Error: {error}")
    print(f"Built the course website in {site.relative_to(KIT_DIR)}/: open {(site / 'index.html').relative_to(KIT_DIR)} "
          "in a browser, or serve it with `.venv/bin/python -m http.server -d build/site`.")


if __name__ == "__main__":
    main()
