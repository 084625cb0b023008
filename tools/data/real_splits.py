"""The real photos split into training, validation and held-out test parts, the same for every tool.

Training (`tools.model.train_pretrained`) learns from the `train` parts, chooses by the
`validation` parts, and never sees the `test` parts, which `tools.model.evaluate` reports.
- Hands in the wild (`../shared/data/hands-in-the-wild/`): split by whole capture sessions
  (the `session` column of its index.csv), because photos come in bursts of near-identical
  frames; a photo-level split would put near-copies on both sides.
- Sign Language Digits (`../shared/data/sign-language-digits/`): a seeded fifth per digit is
  the test part (the very fifth the shipped model was trained without), and a seeded eighth of
  the rest is the validation part. The dataset names no person or session, so this split is
  by photo.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np

import resnets_utils
from tools.data.import_photos import find_photos, split_stratified
from tools.data.measure_realism import DEFAULT_REAL as SLD_PHOTOS

WILD_PHOTOS = SLD_PHOTOS.parent / "hands-in-the-wild"
CLASSES = range(6)

# Fixed by hand, not drawn: the sessions are few and uneven (session 2 alone holds half the
# photos and most of the 1s and 2s, so it trains; only sessions 3 and 55 have many 1s, so one
# tests and one validates; 16, 46, 26 and 96 add the 5s that 3 and 55 lack). Each part then
# holds every digit and about a fifth of the photos. Sessions not named here (a larger
# download) go to training.
WILD_TEST_SESSIONS = ("3", "16", "46")
WILD_VALIDATION_SESSIONS = ("55", "26", "96")

SLD_TEST_FRACTION = 0.2
SLD_TEST_SEED = 2016  # the held-out fifth of the shipped model
SLD_VALIDATION_FRACTION = 0.125  # of the four fifths left: a tenth of all photos
SLD_VALIDATION_SEED = 2017


class RealDataError(RuntimeError):
    """A real-photo folder or its index is missing, malformed, or cannot give every part every digit."""


class Part(NamedTuple):
    """Photos of one part of a split: their paths and digit labels, in the same order."""

    paths: list[Path]
    labels: np.ndarray

    def subset(self, indices: np.ndarray) -> Part:
        """Return the photos at `indices`, in that order (a sample, or one source's photos)."""
        return Part([self.paths[i] for i in indices], self.labels[indices])


def _require_every_digit(part: Part, what: str) -> None:
    missing = sorted(set(CLASSES) - set(part.labels.tolist()))
    if missing:
        raise RealDataError(f"{what} has no photo of digit(s) {', '.join(map(str, missing))}.")


def _read_wild_index(index: Path) -> list[dict[str, str]]:
    """Return index.csv's rows, each checked to name a photo `<label>/<name>` with a digit label and a session."""
    if not index.is_file():
        raise RealDataError(f"{index} not found: the wild photos' folder must hold index.csv (see its README).")
    with index.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise RealDataError(f"{index} lists no photo.")
    missing = {"file", "label", "session"} - set(rows[0])
    if missing:
        raise RealDataError(f"{index} has no column {', '.join(sorted(missing))} (it has {', '.join(rows[0])}).")
    for line, row in enumerate(rows, start=2):
        if row["label"] not in {str(digit) for digit in CLASSES} or Path(row["file"]).parent.name != row["label"]:
            raise RealDataError(
                f"{index}, line {line}: file {row['file']!r} with label {row['label']!r}; "
                "expected a digit 0-5 and the file in that digit's folder."
            )
        if not row["session"]:
            raise RealDataError(f"{index}, line {line}: {row['file']} has no session.")
    return rows


def part_of_session(session: str) -> str:
    """Return the part a wild capture session belongs to: "test", "validation", or "train" (any other session)."""
    if session in WILD_TEST_SESSIONS:
        return "test"
    return "validation" if session in WILD_VALIDATION_SESSIONS else "train"


def _numbered_first(session: str) -> tuple[bool, str]:
    """Sort key: numbered sessions in number order (2, 25), then named ones ("pic")."""
    return not session.isdigit(), session.zfill(9)


def wild_split_table(folder: Path = WILD_PHOTOS) -> str:
    """Return a text table of the photos of each digit in each session, session by session within each part.

    It shows what the model learns real rooms from: with ../shared's photos, nearly all the
    training sessions' 1s to 4s come from one capture session (one place, one burst of poses).
    """
    rows = _read_wild_index(Path(folder) / "index.csv")
    lines = [f"{'part':<11} {'session':<8}" + "".join(f"{digit:>6}" for digit in CLASSES) + f"{'all':>6}"]

    def line(part: str, session: str, chosen: list[dict[str, str]]) -> str:
        counts = [sum(row["label"] == str(digit) for row in chosen) for digit in CLASSES]
        return f"{part:<11} {session:<8}" + "".join(f"{n:>6}" for n in counts) + f"{len(chosen):>6}"

    for name in ("train", "validation", "test"):
        in_part = [row for row in rows if part_of_session(row["session"]) == name]
        for session in sorted({row["session"] for row in in_part}, key=_numbered_first):
            lines.append(line(name, session, [row for row in in_part if row["session"] == session]))
        lines.append(line(name, "all", in_part))
    return "\n".join(lines)


def split_wild(folder: Path = WILD_PHOTOS) -> dict[str, Part]:
    """Return {"train", "validation", "test": Part} of the wild photos, split by whole sessions.

    Raises RealDataError naming index.csv when it is missing or malformed, when a session
    named above is not in it, or when the validation or test part lacks a digit.
    """
    index = Path(folder) / "index.csv"
    rows = _read_wild_index(index)
    sessions = {row["session"] for row in rows}
    absent = [s for s in WILD_TEST_SESSIONS + WILD_VALIDATION_SESSIONS if s not in sessions]
    if absent:
        raise RealDataError(f"{index} has no session {', '.join(absent)}, which the split holds out.")
    split = {}
    for name in ("train", "validation", "test"):
        chosen = [row for row in rows if part_of_session(row["session"]) == name]
        split[name] = Part([Path(folder) / row["file"] for row in chosen], np.array([int(row["label"]) for row in chosen]))
    _require_every_digit(split["validation"], f"{index}: the validation sessions {', '.join(WILD_VALIDATION_SESSIONS)}")
    _require_every_digit(split["test"], f"{index}: the test sessions {', '.join(WILD_TEST_SESSIONS)}")
    return split


def split_sld(folder: Path = SLD_PHOTOS, test_seed: int = SLD_TEST_SEED) -> dict[str, Part]:
    """Return {"train", "validation", "test": Part} of the Sign Language Digits photos `folder/<digit>/*.jpg`.

    The test part is a fifth of each digit drawn with `test_seed`. Raises RealDataError when
    the folder is missing or a digit has too few photos to appear in every part.
    """
    if not Path(folder).is_dir():
        raise RealDataError(f"{folder} is not a folder of photos <digit>/*.jpg.")
    photos = [(path, label) for path, label in find_photos(Path(folder))[0] if label in CLASSES]
    paths = np.array([path for path, _ in photos], dtype=object)
    labels = np.array([label for _, label in photos], dtype=np.int64)
    is_test = split_stratified(labels, SLD_TEST_FRACTION, test_seed)
    rest = np.flatnonzero(~is_test)
    is_validation = np.zeros(len(labels), dtype=bool)
    is_validation[rest[split_stratified(labels[rest], SLD_VALIDATION_FRACTION, SLD_VALIDATION_SEED)]] = True
    masks = {"train": ~is_test & ~is_validation, "validation": is_validation, "test": is_test}
    split = {name: Part(list(paths[mask]), labels[mask]) for name, mask in masks.items()}
    for name, part in split.items():
        _require_every_digit(part, f"{folder}: the {name} part")
    return split


def read_part(part: Part) -> np.ndarray:
    """Return the part's photos as uint8 (m, 64, 64, 3), read as `resnets_utils.read_photo` reads a student's.

    Raises resnets_utils.PhotoError naming the first photo that cannot be read.
    """
    return np.stack([resnets_utils.read_photo(path) for path in part.paths])


WILD_SIGNS = resnets_utils.KIT_DIR / "build" / "wild-signs"


def write_wild_signs(folder: Path = WILD_PHOTOS, out: Path = WILD_SIGNS) -> dict[str, int]:
    """Write SIGNS files of the wild photos, so that notebook 4 can train on them (RESNETS_DATASETS=out).

    train_signs.h5 holds the training sessions and test_signs.h5 the test sessions; the
    validation sessions stay out of both, as they choose the kit's pretrained model. Return the
    number of photos in each file. Raises RealDataError or resnets_utils.PhotoError naming the file.
    """
    from tools.data.signs_files import write_split

    split = split_wild(folder)
    for name in ("train", "test"):
        write_split(Path(out) / f"{name}_signs.h5", name, read_part(split[name]), split[name].labels)
    return {name: len(split[name].labels) for name in ("train", "test")}


def main() -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Write SIGNS files of the wild photos, split by session: "
                                                 "`python -m tools.data.real_splits [--wild DIR] [--out DIR]`.")
    parser.add_argument("--wild", type=Path, default=WILD_PHOTOS, help="the wild photos: <digit>/*.jpg and index.csv")
    parser.add_argument("--out", type=Path, default=WILD_SIGNS, help="where to write train_signs.h5 and test_signs.h5")
    args = parser.parse_args()
    try:
        counts = write_wild_signs(args.wild, args.out)
    except (RealDataError, resnets_utils.PhotoError) as error:
        sys.exit(f"Error: {error}")
    print(f"Wrote {counts['train']} training photos (sessions other than {', '.join(WILD_TEST_SESSIONS + WILD_VALIDATION_SESSIONS)}) "
          f"and {counts['test']} test photos (sessions {', '.join(WILD_TEST_SESSIONS)}) to {args.out}.")
    print(f"Photos of each digit, by part (the validation sessions choose the kit's pretrained model):\n{wild_split_table(args.wild)}")
    print(f"Train notebook 4 on them with: RESNETS_DATASETS={args.out} make lab")


if __name__ == "__main__":
    main()
