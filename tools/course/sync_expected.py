"""Copy what the reference code prints into the notebooks: `python -m tools.course.sync_expected NOTEBOOK...`.

Run it on executed source notebooks. It sets
- each "**Expected output**" block to the text printed by the code cell just above it, and
- each hidden test's `EXPECTED_OUTS = ...` line to the `out = [...]` values printed by the
  nearest code cell above it,
so that no expected number is ever typed by hand. Execute the notebook again afterwards.
`tests/test_notebooks.py` checks that both stay equal to the stored outputs.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

EXPECTED_HEADING = "**Expected output**"
EXPECTED_LINE = re.compile(r"^EXPECTED_OUTS = .*$", flags=re.M)


def printed_text(cell) -> str:
    """The stdout a code cell printed, as one string."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def out_values(text: str) -> list[list[float]]:
    """The lists printed on `out = [...]` lines, in order."""
    return [ast.literal_eval(line.split("=", 1)[1].strip()) for line in text.splitlines() if line.startswith("out = [")]


def expected_block(text: str) -> str:
    return f"{EXPECTED_HEADING}\n\n```\n{text.rstrip()}\n```"


def sync(notebook) -> int:
    """Update the notebook in place; return how many cells changed."""
    changed = 0
    last_code = None
    last_outs: list[list[float]] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(EXPECTED_HEADING):
            new = expected_block(printed_text(last_code))
            changed += new != cell.source
            cell.source = new
        elif cell.cell_type == "code":
            if EXPECTED_LINE.search(cell.source):
                line = f"EXPECTED_OUTS = {last_outs!r}  # printed by the reference code (tools/course/sync_expected.py)"
                new = EXPECTED_LINE.sub(lambda _: line, cell.source, count=1)
                changed += new != cell.source
                cell.source = new
            outs = out_values(printed_text(cell))
            if outs:
                last_outs = outs
            last_code = cell
    return changed


def main() -> None:
    for path in map(Path, sys.argv[1:]):
        notebook = nbformat.read(path, as_version=4)
        changed = sync(notebook)
        nbformat.write(notebook, path)
        print(f"{path}: {changed} cell(s) updated")


if __name__ == "__main__":
    main()
