"""The Chinese edition is the English course, translated: generated from the source notebooks and a
catalogue, complete, current, with the English code, the same numbers and the glossary's terms."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
from babel.messages.pofile import read_po

from tools.course import figure_font, translations
from tools.course.translations import KIT_DIR, LANGUAGES, source_notebooks

GLOSSARY = KIT_DIR / "translations" / "zh_CN" / "glossary.md"
# Not prose: code, link targets, addresses, titles (quoted, or in italics ending with a full stop), a message's
# {placeholders} and the keyword arguments it quotes (padding='same')
NOT_PROSE = re.compile(r"`[^`]*`|\]\([^)]*\)|https?://\S+|\"[^\"]*\"|\*[^*]+[.?]\*|\{[^{}]*\}|\b\w+=")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def catalogues(language: str = "zh_CN"):
    for notebook in source_notebooks():
        path = translations.catalogue_path(language, notebook)
        with path.open("rb") as file:
            yield path, read_po(file, locale=language, abort_invalid=True)


def messages():
    """Every translated message: the notebooks' and the kit's own."""
    found = [(path.name, message) for path, catalog in catalogues() for message in catalog if message.id]
    with translations.messages_catalogue_path("zh_CN").open("rb") as file:
        found += [("resnets_kit.po", message) for message in read_po(file, locale="zh_CN") if message.id]
    return found


def glossary() -> list[tuple[str, str]]:
    rows = [line.split("|")[1:3] for line in GLOSSARY.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    return [(english.strip(), chinese.strip()) for english, chinese in rows[1:]]


def prose(text: str) -> str:
    return NOT_PROSE.sub(" ", text)


def test_every_notebook_is_generated_translated_and_current():
    problems = translations.run(sorted(LANGUAGES), check=True)
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} in all; `make translations` regenerates, translators fill the .po files)"


class ShownText(ast.NodeTransformer):
    """Replaces each string a student reads (what `tools.course.translations.shown_strings` translates) by the
    expressions it formats, in any order: a translation may reword the text and move its {expressions}."""

    def shown(self, node):
        if isinstance(node, ast.JoinedStr):
            return ast.Constant(sorted(ast.dump(part.value) for part in node.values if isinstance(part, ast.FormattedValue)))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            node.left, node.right = self.shown(node.left), self.shown(node.right)
        elif isinstance(node, ast.IfExp):
            node.body, node.orelse = self.shown(node.body), self.shown(node.orelse)
        return ast.Constant([]) if isinstance(node, ast.Constant) and isinstance(node.value, str) else node

    def visit_Call(self, node):
        self.generic_visit(node)
        if (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) in translations.PRINTED_BY | translations.DRAWN_BY:
            node.args = [self.shown(argument) for argument in node.args]
        for keyword in node.keywords:
            if keyword.arg == "label":
                keyword.value = self.shown(keyword.value)
        return node

    def visit_Assert(self, node):
        self.generic_visit(node)
        node.msg = self.shown(node.msg) if node.msg is not None else None
        return node


@pytest.mark.parametrize("notebook", source_notebooks(), ids=lambda path: path.stem)
def test_the_code_is_the_english_code(notebook):
    """Only comments, docstrings, the text a student reads, the paths one folder deeper and the kit's language (after
    `import resnets_utils`) differ."""
    def code(path: Path, deepen: bool = False) -> list[str]:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        dumps = []
        for cell in cells:
            if cell["cell_type"] == "code":
                source = re.sub(r'^resnets_utils\.use_language\("zh_CN"\)\n?', "", "".join(cell["source"]), flags=re.MULTILINE)
                tree = ShownText().visit(ast.parse(translations._masked(translations.deeper_paths(source) if deepen else source)))
                for node in ast.walk(tree):
                    body = getattr(node, "body", None)
                    if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                            and isinstance(body[0].value.value, str):
                        body[0].value.value = "docstring"
                dumps.append(ast.dump(tree))
        return dumps

    for folder in LANGUAGES.values():
        assert code(notebook.parent / folder / notebook.name) == code(notebook, deepen=True)


def test_the_kit_speaks_the_language_the_notebook_chooses():
    import resnets_utils

    try:
        resnets_utils.use_language("zh_CN")
        chinese = str(resnets_utils.Reading(3, 0.97, np.eye(6)[3] * 0.97))
        no_hand = str(resnets_utils.Reading(None, 0.0, np.zeros(6), hands=0))
        with pytest.raises(AssertionError) as mistake:
            resnets_utils.check_resnet50(type("NotAModel", (), {"layers": []})(), classes=6)
        resnets_utils.use_language("en")
        english = str(resnets_utils.Reading(3, 0.97, np.eye(6)[3] * 0.97))
    finally:
        resnets_utils.use_language("en")
    assert english == "a 3 (97% sure)"
    assert "3" in chinese and "97%" in chinese and re.search(r"[\u4e00-\u9fff]", chinese), chinese
    assert re.search(r"[\u4e00-\u9fff]", no_hand) and re.search(r"[\u4e00-\u9fff]", str(mistake.value)), (no_hand, mistake.value)
    for notebook in source_notebooks():
        text = (notebook.parent / "zh" / notebook.name).read_text(encoding="utf-8")
        assert 'resnets_utils.use_language(\\"zh_CN\\")' in text, f"notebooks/zh/{notebook.name} should speak Chinese"


def test_a_language_the_kit_cannot_speak_is_refused(tmp_path, monkeypatch):
    import resnets_utils

    with pytest.raises(ValueError, match="'fr' is not one of the kit's languages"):
        resnets_utils.use_language("fr")
    monkeypatch.setattr(resnets_utils, "LOCALE_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="resnets_kit.mo not found: run `make translations`"):
        resnets_utils.use_language("zh_CN")


def test_the_figure_font_draws_every_character_the_chinese_figures_use():
    import resnets_utils

    with translations.messages_catalogue_path("zh_CN").open("rb") as file:
        kit = read_po(file, locale="zh_CN")
    needed = figure_font.needed_characters(translations.figure_texts([kit] + [catalog for _, catalog in catalogues()]))
    assert {"轮", "概", "率"} <= needed  # "epoch" in notebook 4's plot, "probability" in the kit's
    assert not needed - figure_font.characters_of(resnets_utils.FIGURE_FONTS["zh_CN"])


def test_a_figure_font_that_cannot_be_rebuilt_is_refused_by_name(tmp_path, monkeypatch):
    import resnets_utils

    monkeypatch.setitem(figure_font.SOURCE_FONTS, "zh_CN", [(tmp_path / "no-such-font.ttc", 0)])
    problems = figure_font.update("zh_CN", ["新的标题"], tmp_path / "figure-font.ttf", check=False)
    assert len(problems) == 1 and "cannot be rebuilt" in problems[0] and "fonts-wqy-microhei" in problems[0], problems
    assert not (tmp_path / "figure-font.ttf").exists()
    monkeypatch.setitem(resnets_utils.FIGURE_FONTS, "zh_CN", tmp_path / "figure-font.ttf")
    with pytest.raises(FileNotFoundError, match="figure-font.ttf not found"):
        resnets_utils.use_language("zh_CN")
    assert resnets_utils._("epoch") == "epoch", "a language that cannot be set up leaves the kit speaking as before"


def test_the_kits_messages_keep_their_placeholders():
    with translations.messages_catalogue_path("zh_CN").open("rb") as file:
        catalog = read_po(file, locale="zh_CN", abort_invalid=True)
    placeholder = re.compile(r"\{[^{}]*\}")
    changed = [message.id for message in catalog if message.id and message.string
               and sorted(placeholder.findall(message.id)) != sorted(placeholder.findall(message.string))]
    assert not changed, f"translations that drop or change a {{placeholder}}: {changed}"


def test_the_catalogue_follows_the_glossary():
    terms = glossary()
    assert len(terms) > 40, f"{GLOSSARY} should list the course's terms"
    misses = []
    for name, message in messages():
        if not message.string:
            continue
        for english, chinese in terms:
            if re.search(rf"\b{re.escape(english)}(e?s)?\b", prose(message.id), re.IGNORECASE) and chinese not in message.string:
                misses.append(f"{name} {message.context}: {english!r} should be {chinese!r} in {message.string[:80]!r}")
    assert not misses, "\n".join(misses)


def in_ten_thousands(message) -> set[str]:
    """The English's millions that the Chinese counts in 万, as Chinese does (23.6 million: 2360 万)."""
    return {number for number in NUMBER.findall(message.id) if re.fullmatch(r"\d+\.\d", number)
            and re.search(rf"{float(number) * 100:g} ?万", message.string)}


def test_the_translation_keeps_every_number_code_span_and_heading():
    problems = []
    for name, message in messages():
        if not message.string:
            continue
        where = f"{name} {message.context} {message.id[:50]!r}"
        missing_numbers = set(NUMBER.findall(prose(message.id))) - set(NUMBER.findall(message.string)) - in_ten_thousands(message)
        if missing_numbers:
            problems.append(f"{where}: numbers {sorted(missing_numbers)} are missing")
        converted = {f"{float(number) * 100:g}" for number in in_ten_thousands(message)}
        added_numbers = set(NUMBER.findall(prose(message.string))) - set(NUMBER.findall(message.id)) - converted
        if added_numbers:
            problems.append(f"{where}: numbers {sorted(added_numbers)} are not in the English")
        missing_code = {span for span in re.findall(r"`[^`]+`", message.id) if span not in message.string}
        if missing_code:
            problems.append(f"{where}: code {sorted(missing_code)} is missing")
        heading = re.match(r"#+ ", message.id)
        if heading and not message.string.startswith(heading.group()):
            problems.append(f"{where}: the translation should stay a {heading.group().strip()} heading")
        if message.id.count("\n|") != message.string.count("\n|"):
            problems.append(f"{where}: a table should keep its rows")
    assert not problems, "\n".join(problems)


def test_a_changed_english_text_is_reported_stale_and_a_new_one_untranslated(tmp_path, monkeypatch):
    source, catalogues_dir = tmp_path / "notebooks", tmp_path / "translations"
    source.mkdir()
    cell = {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Title\n", "\n", "Residual networks learn.\n"]}
    code = {"cell_type": "code", "id": "code", "metadata": {}, "execution_count": 1, "outputs": [],
            "source": ["x = 1  # one\n", "print(x)"]}
    notebook = {"cells": [cell, code], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (source / "01_demo.ipynb").write_text(json.dumps(notebook))
    monkeypatch.setattr(translations, "SOURCE_DIR", source)
    monkeypatch.setattr(translations, "CATALOGUE_DIR", catalogues_dir)
    monkeypatch.setattr(translations, "LOCALE_DIR", tmp_path / "locale")  # the compiled messages and the figure font
    translations.run(["zh_CN"], check=False)
    po = catalogues_dir / "zh_CN" / "01_demo.po"
    text = po.read_text()
    for english, chinese in [("# Title", "# 标题"), ("Residual networks learn.", "残差网络会学习。"), ("one", "一")]:
        text = text.replace(f'msgid "{english}"\nmsgstr ""', f'msgid "{english}"\nmsgstr "{chinese}"')
    po.write_text(text)
    assert [problem for problem in translations.run(["zh_CN"], check=False) if "01_demo" in problem and "outputs are gone" not in problem] == []
    written = json.loads((source / "zh" / "01_demo.ipynb").read_text())
    assert "".join(written["cells"][0]["source"]) == "# 标题\n\n残差网络会学习。\n"
    assert "".join(written["cells"][1]["source"]) == "x = 1  # 一\nprint(x)"

    cell["source"][2] = "Residual networks learn faster.\n"
    cell["source"].append("\nA new paragraph.\n")
    (source / "01_demo.ipynb").write_text(json.dumps(notebook))
    problems = translations.run(["zh_CN"], check=True)
    assert any("stale" in problem and "Residual networks learn faster." in problem for problem in problems), problems
    assert any("untranslated" in problem and "A new paragraph." in problem for problem in problems), problems
    assert any("01_demo.ipynb differs" in problem for problem in problems), problems


def test_a_damaged_catalogue_is_named(tmp_path, monkeypatch):
    (tmp_path / "zh_CN").mkdir()
    (tmp_path / "zh_CN" / "01_why_deep_plain_networks_fail.po").write_text('msgid "a"\nmsgstr "b\n')
    monkeypatch.setattr(translations, "CATALOGUE_DIR", tmp_path)
    with pytest.raises(translations.TranslationError, match=r"01_why_deep_plain_networks_fail.po, line 2, cannot be read"):
        translations.run(["zh_CN"], check=True)
