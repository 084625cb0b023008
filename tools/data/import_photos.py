"""Build SIGNS-format files from your own photos: `python -m tools.data.import_photos DIR [--out OUT]`.

DIR holds one folder per digit, `DIR/<digit>/*.jpg` (PNG, WebP, ... too). Each photo is
centre-cropped to a square and resized to 64x64 exactly as `resnets_utils.load_image` does,
then a seeded, stratified split writes `OUT/train_signs.h5` and `OUT/test_signs.h5`.
Folders that are not digits and files that cannot be read are skipped and listed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

import resnets_utils
from tools.data.signs_files import write_split

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class PhotoFolderError(RuntimeError):
    """The folder holds nothing that can become a SIGNS data set."""


def find_photos(folder: Path) -> tuple[list[tuple[Path, int]], list[tuple[Path, str]]]:
    """Return ([(photo, digit), ...], [(skipped path, reason), ...]) for `folder/<digit>/*`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PhotoFolderError(f"{folder} is not a folder (expected {folder}/<digit>/*.jpg).")
    photos: list[tuple[Path, int]] = []
    skipped: list[tuple[Path, str]] = []
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir():
            if not sub.name.startswith("."):
                skipped.append((sub, "not inside a digit folder"))
            continue
        if not sub.name.isdigit():
            skipped.append((sub, f"folder name '{sub.name}' is not a digit label"))
            continue
        for path in sorted(sub.iterdir()):
            if path.suffix.lower() in PHOTO_SUFFIXES:
                photos.append((path, int(sub.name)))
            elif not path.name.startswith("."):
                skipped.append((path, "not a photo (unknown file type)"))
    return photos, skipped


def split_stratified(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Return a boolean mask of test items: `test_fraction` of each label, at least one where a label has two."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * test_fraction))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        is_test[members[:n_test]] = True
    return is_test


def read_photo_folder(folder: Path, progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """Return (uint8 images (m, 64, 64, 3), int64 labels (m,), skipped paths with reasons) for `folder/<digit>/*`.

    Raises PhotoFolderError, listing what was skipped, when no photo at all can be read.
    """
    photos, skipped = find_photos(folder)
    images, labels = [], []
    for path, label in tqdm(photos, desc=f"reading {folder}", unit="photo", disable=not progress):
        try:
            images.append(resnets_utils.read_photo(path))
            labels.append(label)
        except resnets_utils.PhotoError as error:
            skipped.append((path, str(error)))
    if not images:
        details = "".join(f"\n  skipped {path}: {reason}" for path, reason in skipped)
        raise PhotoFolderError(f"No readable photos in {folder} (expected {folder}/<digit>/*.jpg).{details}")
    return np.stack(images), np.array(labels, dtype=np.int64), skipped


def import_photos(
    folder: Path, out_dir: Path, test_fraction: float = 0.1, seed: int = 1, progress: bool = True
) -> list[tuple[Path, str]]:
    """Write SIGNS files built from `folder`; return what was skipped, with reasons.

    Raises PhotoFolderError when no photo at all can be read.
    """
    x, y, skipped = read_photo_folder(folder, progress)
    is_test = split_stratified(y, test_fraction, seed)
    classes = np.unique(y)
    write_split(Path(out_dir) / "train_signs.h5", "train", x[~is_test], y[~is_test], classes)
    write_split(Path(out_dir) / "test_signs.h5", "test", x[is_test], y[is_test], classes)
    return skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="photos as FOLDER/<digit>/*.jpg")
    parser.add_argument("--out", type=Path, default=resnets_utils.KIT_DIR / "datasets")
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        skipped = import_photos(args.folder, args.out, args.test_fraction, args.seed)
    except PhotoFolderError as error:
        raise SystemExit(f"Error: {error}") from None
    for path, reason in skipped:
        print(f"skipped {path}: {reason}")
    print(f"Wrote SIGNS files to {args.out} ({len(skipped)} item(s) skipped).")


if __name__ == "__main__":
    main()
