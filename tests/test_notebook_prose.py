"""Every number the notebooks' prose quotes comes from somewhere a reader or a test can check.

A number in a markdown cell is accounted for when a cell of the same notebook prints it (to
the precision the prose gives: "0.8 or more" for a printed 8.1e-01, "23.6 million" for
23,600,006), when the code sets it (`EPOCHS = 8`), when a claim in tests/notebook_claims.py
checks it, or when it is quoted from a paper or derived in a way QUOTED says. Years of
citations and the References section are left alone, and so are single digits, which count
what the reader sees ("3 convolutions", "2 epochs").
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.notebook_claims import CLAIMS
from tools.course.notebook_source import NOTEBOOKS

NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "zh").glob("*.ipynb"))  # the Chinese edition too
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e[-+]?\d+)?)(%| million)?(?![a-zA-Z0-9_])")
SCALE = {"%": 0.01, " million": 1e6}
# Numbers the prose takes from papers and documentation, or derives from numbers the cells show.
QUOTED = {
    "01_why_deep_plain_networks_fail.ipynb": {
        "40": "a gradient reaching the first of 41 conv layers has crossed the other 40",
        "30": "He et al. 2015 (initialization): their 30-layer plain network",
        "34": "He et al. 2016: their 34-layer plain network on ImageNet",
        "18": "He et al. 2016: their 18-layer plain network on ImageNet",
        "56": "He et al. 2016: their 56-layer plain network on CIFAR-10",
        "20": "He et al. 2016: their 20-layer plain network on CIFAR-10",
    },
    "02_residual_blocks.ipynb": {
        "50": "ResNet-50, a network's name",
        "101": "ResNet-101, a network's name",
        "152": "ResNet-152, a network's name",
        "4.1": "He et al. 2016, section 4.1",
        "16": "a basic block four times as wide has 4 x 4 = 16 times the weights per conv",
    },
}


def prose(markdown: str) -> str:
    """The running text of a markdown cell: no headings, code, links' addresses, formulas or references."""
    markdown = re.split(r"^#+ (References|参考文献)", markdown, flags=re.MULTILINE)[0]
    for pattern in (r"```.*?```", r"`[^`]*`", r"\$\$.*?\$\$", r"\$[^$]*\$", r"<[^>]+>", r"^#+ .*$"):
        markdown = re.sub(pattern, " ", markdown, flags=re.DOTALL | re.MULTILINE)
    # Chinese counts in 万 (ten thousands): "2360 万" says what "23.6 million" says, to the same digits
    markdown = re.sub(r"(\d+) ?万", lambda match: f"{int(match[1]) / 100:g} million", markdown)
    return re.sub(r"\]\([^)]*\)", "]", markdown)


def evidence(notebook) -> tuple[str, list[float]]:
    """What the notebook shows and sets (outputs and code), and what its claims check: as text, and its numbers."""
    texts = [claim.says for claim in CLAIMS.get(notebook.name, [])]
    for cell in notebook.nb.cells:
        if cell.cell_type == "code":
            texts.append(cell.source)
            for output in cell.get("outputs", []):
                texts.append(output.get("text", ""))
                texts += [value for kind, value in output.get("data", {}).items() if kind.startswith("text/")]
    text = "\n".join(texts)
    numbers = [float(match[1].replace(",", "")) * SCALE.get(match[2], 1) for match in NUMBER.finditer(text)]
    return text, numbers


def decimals(number: str) -> int:
    mantissa = number.split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def shown(number: str, unit: str | None, text: str, numbers: list[float]) -> bool:
    """True when `number` (with its unit) is in `text`, or is one of `numbers` rounded to the digits the prose gives."""
    if number in text:
        return True
    value = float(number.replace(",", ""))
    if "e" in number:  # written in scientific notation: compare at its significant digits
        return any(abs(other - value) <= 0.5 * 10 ** (-decimals(number)) * 10 ** int(number.split("e")[1]) for other in numbers)
    scale = SCALE.get(unit, 1)
    step = 10 ** -decimals(number) * scale
    return any(abs(other - value * scale) <= step / 2 + 1e-12 * abs(other) for other in numbers)


class Notebook:
    def __init__(self, path):
        self.name, self.nb = path.name, nbformat.read(path, as_version=4)


def unaccounted_numbers(path) -> list[str]:
    notebook = Notebook(path)
    text, numbers = evidence(notebook)
    if path.parent.name == "zh":  # a translation quotes the English run's numbers too (its own run's may differ a little)
        english_text, english_numbers = evidence(Notebook(NOTEBOOKS / path.name))
        text, numbers = text + "\n" + english_text, numbers + english_numbers
    quoted = QUOTED.get(path.name, {})
    missing = []
    for index, cell in enumerate(notebook.nb.cells):
        if cell.cell_type != "markdown":
            continue
        for match in NUMBER.finditer(prose(cell.source)):
            number, unit = match[1], match[2]
            single_digit = re.fullmatch(r"\d", number) and not unit
            year = re.fullmatch(r"(19|20)\d\d", number)
            if single_digit or year or number in quoted or shown(number, unit, text, numbers):
                continue
            missing.append(f"cell {index}: {number}{unit or ''}")
    return missing


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: str(path.relative_to(NOTEBOOKS)))
def test_every_number_in_the_prose_is_printed_set_checked_or_quoted(path):
    missing = unaccounted_numbers(path)
    assert not missing, (f"{path.name}: numbers in the prose that no cell prints, no code sets, no claim checks "
                         f"and QUOTED does not explain: {missing}")


@pytest.mark.parametrize("name", sorted(QUOTED))
def test_every_quoted_number_is_still_in_the_prose(name):
    notebook = Notebook(NOTEBOOKS / name)
    numbers = {match[1] for cell in notebook.nb.cells if cell.cell_type == "markdown"
               for match in NUMBER.finditer(prose(cell.source))}
    assert set(QUOTED[name]) <= numbers, f"{name}: QUOTED explains numbers the prose no longer has: {set(QUOTED[name]) - numbers}"


def test_a_number_no_cell_shows_is_caught(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The network reaches 97.5% accuracy and a loss of 0.12, with 23.6 million weights."),
        nbformat.v4.new_code_cell("print(accuracy)", outputs=[nbformat.v4.new_output("stream", text="0.9749 0.31 23,600,006\n")]),
    ])
    path = tmp_path / "made_up.ipynb"
    nbformat.write(notebook, path)
    assert unaccounted_numbers(path) == ["cell 0: 0.12"]
