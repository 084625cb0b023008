"""The font a translated edition's figures are drawn in: only the characters its figure texts use.

matplotlib's own font (DejaVu Sans) has no Chinese, and a student's machine may have no Chinese
font at all, so the kit ships one: the glyphs its Chinese figure texts need, cut out of
WenQuanYi Micro Hei (Debian's `fonts-wqy-microhei`, Apache-2.0) with fontTools' subsetter (already
installed with matplotlib). A few dozen glyphs instead of the whole 5 MB font. `use_language`
puts it first in matplotlib's font list, DejaVu Sans after it for every other character.
`make translations` (tools/course/translations.py) rebuilds it when the figure texts need a
character it lacks; that needs the Debian font, and without it the command says so and fails.
"""

from __future__ import annotations

from pathlib import Path

from resnets_utils import KIT_DIR

# Where each language's glyphs are cut from: (font file, index in a collection), the first one installed.
SOURCE_FONTS = {"zh_CN": [(Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0)]}
SOURCE_PACKAGE = {"zh_CN": "fonts-wqy-microhei"}
FAMILY = {"zh_CN": "WenQuanYi Micro Hei kit subset"}  # a name of its own: not mistaken for the whole font
# Drawn by the first font of the list whatever the text: matplotlib's math text (a log axis's 10⁻¹ ticks) takes
# no other font for them. ASCII, and the minus sign of negative ticks.
MATH_TEXT_CHARACTERS = {chr(code) for code in range(0x20, 0x7F)} | {"\u2212"}


def default_font_characters() -> set[str]:
    """The characters matplotlib's default font draws: those need no glyph of ours."""
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    return {chr(code) for code in TTFont(font_manager.findfont("DejaVu Sans"), lazy=True).getBestCmap()}


def characters_of(path: Path) -> set[str]:
    from fontTools.ttLib import TTFont

    return {chr(code) for code in TTFont(path, lazy=True).getBestCmap()}


def needed_characters(texts: list[str]) -> set[str]:
    """The characters of `texts` that matplotlib's default font cannot draw, and those math text needs."""
    return (set("".join(texts)) - default_font_characters() - {"\n"}) | MATH_TEXT_CHARACTERS


def write_subset(language: str, characters: set[str], out: Path) -> None:
    """Cut the glyphs of `characters` out of the language's source font into `out`, renamed."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection, TTFont

    source = next(((path, index) for path, index in SOURCE_FONTS[language] if path.is_file()), None)
    if source is None:
        raise FileNotFoundError(f"no source font for {language}'s figures: install Debian's {SOURCE_PACKAGE[language]}")
    path, index = source
    # recalcTimestamp=False: the same characters give the same bytes, so the file changes only when they do
    font = TTCollection(path, recalcTimestamp=False).fonts[index] if path.suffix == ".ttc" else TTFont(path, recalcTimestamp=False)
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.drop_tables += ["FFTM"]  # FontForge's build timestamps
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(characters)))
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = FAMILY[language]
        elif record.nameID in (3, 6):
            record.string = FAMILY[language].replace(" ", "")
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(out)


def update(language: str, texts: list[str], out: Path, check: bool) -> list[str]:
    """Make (or, with `check`, compare) the language's figure font `out` so that it draws every character of
    `texts`; return the problems found."""
    shown = out.relative_to(KIT_DIR) if out.is_relative_to(KIT_DIR) else out
    needed = needed_characters(texts)
    have = characters_of(out) if out.is_file() else set()
    missing = "".join(sorted(needed - have))
    if check:
        return [f"{shown} cannot draw {missing!r}, used by the figures: run `make translations`"] if missing else []
    if needed == have:
        return []
    try:
        write_subset(language, needed, out)
    except FileNotFoundError as error:
        if not missing:  # only glyphs no longer used: the font still draws every figure
            return []
        return [f"{shown} cannot draw {missing!r}, used by the figures, and cannot be rebuilt: {error}"]
    return []
