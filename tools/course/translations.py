"""The course in other languages, from the English source notebooks and a gettext catalogue per notebook.

`python -m tools.course.translations` (what `make translations` runs) does two things:

1. **Update the catalogues** (`translations/<language>/<notebook>.po`). Every piece a student
   reads becomes a message: each Markdown block of a text cell (paragraph, list, table,
   heading), each comment and docstring of a code cell, and each string it prints or draws in
   a figure (`shown_strings`). Its context (`msgctxt`) is the cell's id, so a translation belongs
   to one cell. The kit's own messages (`_()` and `_figure_text()` in MESSAGE_SOURCES) go to
   `<language>/resnets_kit.po`, compiled into `locale/` for Python's gettext; the figure texts'
   characters go into the language's figure font (tools/course/figure_font.py). Babel merges
   the new English into the catalogue as `msgmerge` does: a changed English piece keeps its old
   translation but is marked fuzzy (stale), with the English it was written for beside it; a
   new piece has no translation yet.
2. **Write the notebooks** (`notebooks/<language>/`). Each is the English notebook with every
   translated piece put in: the code is the English code (what a student reads aside), with
   paths one folder deeper and the kit's language set after `import resnets_utils`. Outputs
   stored by an earlier run are kept for every code cell whose source is unchanged, so a
   wording fix does not throw away an executed notebook; `--execute` runs the others.

`--check` writes nothing and fails when a notebook differs from what its source and
catalogue give, or when a piece is untranslated or stale, naming each. gettext's `.po`
format, because translators' tools (Poedit, Weblate, Lokalize) read it, it records the
English each translation was made from, and Babel (already installed with JupyterLab)
reads, merges and writes it without the gettext programs.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

import resnets_utils
from resnets_utils import KIT_DIR, LOCALE_DIR, MESSAGES_DOMAIN
from tools.course import figure_font

SOURCE_DIR = KIT_DIR / "notebooks"
CATALOGUE_DIR = KIT_DIR / "translations"
LANGUAGES = {"zh_CN": "zh"}  # catalogue folder -> notebooks/<folder>
# The modules whose messages a student reads: wrapped in _() (or N_() where defined, and translated where shown:
# the grader speaks each submission's language).
MESSAGE_SOURCES = ("resnets_utils.py", "tools/grading/grade.py", "tools/grading/submissions.py")
# Put after `import resnets_utils` in a translated notebook: the kit's messages in the notebook's language.
LANGUAGE_LINE = 'resnets_utils.use_language("{language}")\n'
# Comments that tools read: nbgrader's solution and hidden-test markers stay as they are.
KEPT_COMMENTS = re.compile(r"#+ *(BEGIN|END) (SOLUTION|HIDDEN TESTS)|#+ *(START|END) CODE HERE")
COMMENT_NOTE = "a code comment: one line, no line break"
DOCSTRING_NOTE = "a docstring: keep its line breaks and indentation, and no triple quotes"
EXPECTED_HEADINGS = ("**Expected output**", "**预期输出**")  # an "Expected output" cell's heading, in each language
# What `print` prints, and a figure's titles, labels and legend entries (drawn in the edition's figure font,
# tools/course/figure_font.py, since matplotlib's own font has no Chinese).
PRINTED_BY = {"print"}
DRAWN_BY = {"title", "suptitle", "set_title", "xlabel", "ylabel", "set_xlabel", "set_ylabel", "text"}
SHOWN_NOTE = ("a string the code prints or shows: keep it valid Python, with its quotes, its f prefix and every "
              "{expression} and format spec exactly as they are")
FIGURE_NOTE = "drawn in a figure: keep it short"
KIT_MESSAGE_NOTE = "a message of the kit: keep every {placeholder} as it is"
FENCE = re.compile(r"^\s*(```|~~~)")


class TranslationError(RuntimeError):
    """A catalogue cannot be read, or a notebook does not match its source and catalogue."""


@dataclass(frozen=True)
class Piece:
    """One translatable piece of a cell: its text, and where it sits in the cell's source."""

    text: str
    start: int  # character offsets in the cell's source
    end: int
    kind: str  # what a translator needs to know about it


def markdown_pieces(source: str) -> list[Piece]:
    """The blocks of a Markdown cell, separated by blank lines; fenced code blocks are left out
    (they show code or printed output, which must stay as the code prints it)."""
    pieces, offset, block_start, in_fence = [], 0, None, False
    lines = source.splitlines(keepends=True)
    for line in lines + [""]:
        if FENCE.match(line):
            if not in_fence and block_start is not None:
                pieces.append((block_start, offset))
                block_start = None
            in_fence = not in_fence
        elif not in_fence:
            if line.strip() and block_start is None:
                block_start = offset
            elif not line.strip() and block_start is not None:
                pieces.append((block_start, offset))
                block_start = None
        offset += len(line)
    result = []
    for start, end in pieces:
        text = source[start:end].rstrip("\n")
        result.append(Piece(text, start, start + len(text), "Markdown"))
    return result


def _offsets(source: str) -> list[int]:
    """The character offset at which each line (1-based) of `source` starts."""
    starts, total = [0, 0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _masked(source: str) -> str:
    """The source with IPython's `%` and `!` lines blanked, so that Python's parser reads it."""
    return "".join(" " * (len(line) - 1) + "\n" if line.lstrip().startswith(("%", "!")) else line
                   for line in source.splitlines(keepends=True))


def code_pieces(source: str) -> list[Piece]:
    """The comments (their text after `#`) and docstrings (their text inside the quotes) of a code cell."""
    masked = _masked(source)
    starts = _offsets(masked)
    pieces, strings = [], {}
    for token in tokenize.generate_tokens(io.StringIO(masked).readline):
        if token.type == tokenize.COMMENT and not KEPT_COMMENTS.match(token.string):
            text = token.string.lstrip("#").strip()
            if text:
                start = starts[token.start[0]] + token.start[1] + token.string.index(text)
                pieces.append(Piece(text, start, start + len(text), COMMENT_NOTE))
        elif token.type == tokenize.STRING:
            strings.setdefault(token.start[0], token)  # ast's columns count bytes, tokenize's characters: match by line
    for node in ast.walk(ast.parse(masked)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                token = strings[first.lineno]
                start, end = starts[token.start[0]] + token.start[1], starts[token.end[0]] + token.end[1]
                quote = token.string[:3] if token.string[:3] in ('"""', "'''") else token.string[0]
                pieces.append(Piece(masked[start + len(quote):end - len(quote)], start + len(quote), end - len(quote), DOCSTRING_NOTE))
    pieces += shown_strings(masked, starts)
    return sorted(pieces, key=lambda piece: piece.start)


def shown_strings(masked: str, starts: list[int]) -> list[Piece]:
    """The string literals a student reads: what `print` prints and the messages of `assert`, outside solutions and
    hidden tests; each as its whole literal (quotes, f prefix and {expressions})."""
    lines = masked.splitlines(keepends=True)
    secret = set()  # the lines of solution and hidden-test regions: no student reads them
    inside = False
    for number, line in enumerate(lines, start=1):
        if re.match(r"\s*### BEGIN (SOLUTION|HIDDEN TESTS)", line):
            inside = True
        elif re.match(r"\s*### END (SOLUTION|HIDDEN TESTS)", line):
            inside = False
        if inside:
            secret.add(number)

    def offset(lineno: int, col: int) -> int:  # ast counts columns in UTF-8 bytes
        return starts[lineno] + len(lines[lineno - 1].encode()[:col].decode())

    literals = []  # (node, what the translator is told)
    for node in ast.walk(ast.parse(masked)):
        if isinstance(node, ast.Call):
            called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if called in PRINTED_BY:
                literals += [(argument, SHOWN_NOTE) for argument in node.args]
            elif called in DRAWN_BY:
                literals += [(argument, f"{SHOWN_NOTE}; {FIGURE_NOTE}") for argument in node.args]
            literals += [(keyword.value, f"{SHOWN_NOTE}; {FIGURE_NOTE}") for keyword in node.keywords if keyword.arg == "label"]
        elif isinstance(node, ast.Assert) and node.msg is not None:
            literals.append((node.msg, SHOWN_NOTE))
    pieces = []
    for argument, note in literals:
        for literal in text_literals(argument):
            if literal.lineno in secret:
                continue
            start, end = offset(literal.lineno, literal.col_offset), offset(literal.end_lineno, literal.end_col_offset)
            text = masked[start:end]
            if re.search(r"[A-Za-z]{2}", re.sub(r"\{[^{}]*\}", "", text)) and not re.match(r"f?[\"']out =", text):
                pieces.append(Piece(text, start, end, note))
    return pieces


def text_literals(node: ast.expr) -> list[ast.expr]:
    """The string literals an argument is made of: itself, or the parts of a `+` or of an `a if c else b`."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return [node]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return text_literals(node.left) + text_literals(node.right)
    if isinstance(node, ast.IfExp):
        return text_literals(node.body) + text_literals(node.orelse)
    return []


def cell_pieces(cell: dict) -> list[Piece]:
    source = "".join(cell["source"])
    if cell["cell_type"] == "markdown":
        return markdown_pieces(source)
    if cell["cell_type"] == "code":
        return code_pieces(source)
    return []


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def template(notebook: Path) -> Catalog:
    """The catalogue of one English notebook's pieces, with no translations."""
    catalog = Catalog(project="resnets kit", fuzzy=False)
    for cell in read_notebook(notebook)["cells"]:
        for piece in cell_pieces(cell):
            catalog.add(piece.text, locations=[(notebook.name, None)], context=cell["id"], auto_comments=[piece.kind])
    return catalog


def catalogue_path(language: str, notebook: Path) -> Path:
    return CATALOGUE_DIR / language / notebook.with_suffix(".po").name


# A .po line: a comment, a keyword and a quoted string, or a quoted string that continues one.
PO_LINE = re.compile(r'\s*(#.*|(msgctxt|msgid|msgid_plural|msgstr(\[\d+\])?) +"(?:[^"\\]|\\.)*"|"(?:[^"\\]|\\.)*")?\s*')


def read_catalogue(path: Path, language: str) -> Catalog:
    """Read a catalogue, or an empty one when there is none. Babel reads a string with a missing quote as
    empty, and writing the catalogue back would lose that translation: such a line is refused here."""
    if not path.is_file():
        return Catalog(locale=language, project="resnets kit", fuzzy=False)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not PO_LINE.fullmatch(line):
            raise TranslationError(f"{path}, line {number}, cannot be read as a gettext catalogue line: {line[:80]!r} "
                                   "(a string needs its closing quote, and a quote inside it is written \\\")")
    try:
        with path.open("rb") as file:
            return read_po(file, locale=language, abort_invalid=True)
    except Exception as error:  # Babel raises its own PoFileError and ValueErrors for a damaged file
        raise TranslationError(f"{path} cannot be read as a gettext catalogue: {error}") from None


def catalogue_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    # no line or cell numbers: an edit elsewhere in a file would otherwise change every catalogue after it
    write_po(out, catalog, width=0, omit_header=False, include_previous=True, ignore_obsolete=True, include_lineno=False)
    return out.getvalue()


def updated_catalogue(language: str, notebook: Path) -> Catalog:
    """The language's catalogue for `notebook`, merged with the notebook's current pieces."""
    catalog = read_catalogue(catalogue_path(language, notebook), language)
    catalog.update(template(notebook), update_creation_date=False)
    catalog.fuzzy = False
    catalog.revision_date = catalog.creation_date  # no timestamps: the file changes only when its messages do
    return catalog


def translated(catalog: Catalog, context: str, text: str) -> str | None:
    """The translation of `text` in cell `context`, or None when there is none or it is stale (fuzzy)."""
    message = catalog.get(text, context=context)
    if message is None or not message.string or message.fuzzy:
        return None
    return message.string


def messages_template() -> Catalog:
    """The catalogue of the kit's own messages (MESSAGE_SOURCES), extracted as `pybabel extract` does."""
    catalog = Catalog(project="resnets kit", fuzzy=False)
    for name in MESSAGE_SOURCES:
        for keywords, notes in (({"_": None, "N_": None}, [KIT_MESSAGE_NOTE]), ({"_figure_text": None}, [KIT_MESSAGE_NOTE, FIGURE_NOTE])):
            for lineno, message, comments, context in extract_from_file("python", KIT_DIR / name, keywords=keywords):
                catalog.add(message, locations=[(name, lineno)], auto_comments=notes, context=context)
    return catalog


def figure_texts(catalogs: list[Catalog]) -> list[str]:
    """The translations drawn in figures: what the edition's figure font must draw."""
    return [message.string for catalog in catalogs for message in catalog
            if message.id and message.string and any(FIGURE_NOTE in note for note in message.auto_comments)]


def messages_catalogue_path(language: str) -> Path:
    return CATALOGUE_DIR / language / f"{MESSAGES_DOMAIN}.po"


def compiled_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{MESSAGES_DOMAIN}.mo"


def figure_font_path(language: str) -> Path:
    """Where `resnets_utils.use_language` finds the language's figure font, under this module's LOCALE_DIR."""
    return LOCALE_DIR / resnets_utils.FIGURE_FONTS[language].relative_to(resnets_utils.LOCALE_DIR)


def compiled_bytes(catalog: Catalog) -> bytes:
    """The .mo file Python's gettext reads; stale (fuzzy) translations are left out, so English shows instead."""
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def with_language_line(source: str, language: str) -> str:
    """The import cell's source with the kit's language set right after `import resnets_utils`."""
    return re.sub(r"^import resnets_utils\n", lambda match: match[0] + LANGUAGE_LINE.format(language=language),
                  source if source.endswith("\n") else source + "\n", count=1, flags=re.MULTILINE).rstrip("\n")


def deeper_paths(source: str) -> str:
    """Paths to the kit's folders from `notebooks/<language>/` instead of `notebooks/`."""
    return source.replace("../images/", "../../images/").replace("../docs/", "../../docs/")


def translated_notebook(language: str, notebook: Path, catalog: Catalog, previous: dict | None) -> tuple[dict, list[str]]:
    """Return (the translated notebook, its pieces with no current translation, each described)."""
    book = read_notebook(notebook)
    old_cells = {cell["id"]: cell for cell in (previous or {}).get("cells", [])}
    missing = []
    for number, cell in enumerate(book["cells"]):
        source, cell_missing = "".join(cell["source"]), []
        for piece in reversed(cell_pieces(cell)):
            text = translated(catalog, cell["id"], piece.text)
            if text is None:
                message = catalog.get(piece.text, context=cell["id"])
                state = "stale (its English changed)" if message is not None and message.fuzzy else "untranslated"
                cell_missing.append(f"{state}: cell {number + 1} ({cell['id']}) {piece.text[:60]!r}")
                continue
            source = source[:piece.start] + text + source[piece.end:]
        missing += reversed(cell_missing)
        if cell["cell_type"] == "code" and re.search(r"^import resnets_utils$", source, flags=re.MULTILINE):
            source = with_language_line(source, language)
        cell["source"] = deeper_paths(source).splitlines(keepends=True)
        if cell["cell_type"] == "code":  # outputs depend on the code alone: keep those of an unchanged cell
            old = old_cells.get(cell["id"])
            unchanged = old is not None and old["source"] == cell["source"]
            cell["outputs"] = old["outputs"] if unchanged else []
            cell["execution_count"] = old["execution_count"] if unchanged else None
            cell["metadata"].pop("execution", None)
            if unchanged and "execution" in old.get("metadata", {}):
                cell["metadata"]["execution"] = old["metadata"]["execution"]
    sync_expected_outputs(book)
    book["metadata"]["resnets_kit"] = {"language": language, "source": f"notebooks/{notebook.name}"}
    if previous and "widgets" in previous.get("metadata", {}):
        book["metadata"]["widgets"] = previous["metadata"]["widgets"]
    return book, missing


def sync_expected_outputs(book: dict) -> None:
    """Set each "Expected output" block's code to what the code cell above printed in this edition's own run, as
    `tools.course.sync_expected` does for the English: the kit's messages print in the notebook's language."""
    above = None
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            above = cell
        elif above is not None and above["outputs"]:
            source = "".join(cell["source"])
            fence = source.find("\n\n```\n")
            if fence > 0 and source.endswith("\n```") and source[:fence] in EXPECTED_HEADINGS:
                printed = "".join("".join(output.get("text", "")) for output in above["outputs"] if output.get("name") == "stdout")
                cell["source"] = (source[:fence] + f"\n\n```\n{printed.rstrip()}\n```").splitlines(keepends=True)


def notebook_text(book: dict) -> str:
    return json.dumps(book, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat writes it


def shown(path: Path) -> str:
    """A path as messages show it: from the kit's folder when it is inside."""
    return str(path.relative_to(KIT_DIR)) if path.is_relative_to(KIT_DIR) else str(path)


def source_notebooks() -> list[Path]:
    return sorted(SOURCE_DIR.glob("[0-9][0-9]_*.ipynb"))


def needs_running(book: dict) -> bool:
    """A notebook whose code changed has code cells without stored outputs: its outputs must come from one run."""
    return any(cell["cell_type"] == "code" and cell["execution_count"] is None for cell in book["cells"])


def execute(path: Path) -> None:
    """Run a notebook in its own folder with the kit's kernel and store its outputs (nbclient, as nbconvert does)."""
    import nbclient
    import nbformat

    book = nbformat.read(path, as_version=4)
    print(f"Running {shown(path)} ...", flush=True)
    nbclient.NotebookClient(book, timeout=1800, resources={"metadata": {"path": str(path.parent)}}).execute()
    path.write_text(notebook_text(json.loads(nbformat.writes(book))), encoding="utf-8")


def run_messages(language: str, check: bool) -> tuple[list[str], Catalog]:
    """Update (or compare) the catalogue of the kit's messages and its compiled .mo; return the problems found and
    the catalogue."""
    po_path, mo_path = messages_catalogue_path(language), compiled_path(language)
    catalog = read_catalogue(po_path, language)
    catalog.update(messages_template(), update_creation_date=False)
    catalog.fuzzy = False
    catalog.revision_date = catalog.creation_date
    problems = [f"{shown(po_path)}: {'stale (its English changed)' if message.fuzzy else 'untranslated'}: {message.id[:60]!r}"
                for message in catalog if message.id and (message.fuzzy or not message.string)]
    if check:
        if not po_path.is_file() or po_path.read_bytes() != catalogue_bytes(catalog):
            problems.append(f"{shown(po_path)} is not up to date with the kit's messages: run `make translations`")
        if not mo_path.is_file() or mo_path.read_bytes() != compiled_bytes(catalog):
            problems.append(f"{shown(mo_path)} is not compiled from {shown(po_path)}: run `make translations`")
    else:
        po_path.parent.mkdir(parents=True, exist_ok=True)
        po_path.write_bytes(catalogue_bytes(catalog))
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        mo_path.write_bytes(compiled_bytes(catalog))
    return problems, catalog


def run(languages: list[str], check: bool, run_notebooks: bool = False) -> list[str]:
    """Update (or, with `check`, compare) every catalogue and translated notebook; return the problems found."""
    problems = []
    for language in languages:
        kit_problems, kit_catalog = run_messages(language, check)
        problems += kit_problems
        catalogs = [kit_catalog]
        out_dir = SOURCE_DIR / LANGUAGES[language]
        for notebook in source_notebooks():
            po_path, out_path = catalogue_path(language, notebook), out_dir / notebook.name
            catalog = updated_catalogue(language, notebook)
            catalogs.append(catalog)
            previous = read_notebook(out_path) if out_path.is_file() else None
            book, missing = translated_notebook(language, notebook, catalog, previous)
            problems += [f"{shown(po_path)}: {item}" for item in missing]
            if check:
                if not po_path.is_file() or po_path.read_bytes() != catalogue_bytes(catalog):
                    problems.append(f"{shown(po_path)} is not up to date with {shown(notebook)}: run `make translations`")
                if previous is None or notebook_text(previous) != notebook_text(book):
                    problems.append(f"{shown(out_path)} differs from what its source and catalogue give: run `make translations`")
                elif needs_running(previous):
                    problems.append(f"{shown(out_path)} has code cells that were never run: `make translations EXECUTE=1` runs it")
            else:
                po_path.parent.mkdir(parents=True, exist_ok=True)
                po_path.write_bytes(catalogue_bytes(catalog))
                out_dir.mkdir(parents=True, exist_ok=True)
                out_path.write_text(notebook_text(book), encoding="utf-8")
                if needs_running(book):
                    if run_notebooks:
                        execute(out_path)
                    else:
                        problems.append(f"{shown(out_path)}: its code changed, so its outputs are gone: `make translations EXECUTE=1` runs it")
        problems += figure_font.update(language, figure_texts(catalogs), figure_font_path(language), check)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when anything is out of date, untranslated or stale")
    parser.add_argument("--execute", action="store_true", help="run every written notebook whose code changed, storing its outputs")
    parser.add_argument("--language", choices=sorted(LANGUAGES), action="append", help="one language (default: all)")
    args = parser.parse_args()
    try:
        problems = run(args.language or sorted(LANGUAGES), args.check, args.execute)
    except TranslationError as error:
        raise SystemExit(f"Error: {error}") from None
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s).")
    if args.check and problems:
        sys.exit(1)
    if not args.check:
        print(f"Wrote the catalogues in {CATALOGUE_DIR.relative_to(KIT_DIR)}/ and the notebooks in "
              + ", ".join(f"notebooks/{LANGUAGES[language]}/" for language in args.language or sorted(LANGUAGES)) + ".")


if __name__ == "__main__":
    main()
