"""Crop every labelled hand of HandsDataset's photos, as `make real-data` does after fetching them.

SOURCE holds the repository's `images/train/` and `images/test/`: photos (`<stem>.jpg`) and
their box files (`<stem>.xml`, Pascal VOC, one `<object>` per hand named "0-hand" ... "5-hand",
the number of open fingers). Each hand becomes `OUT/<label>/<split>_<stem>_<i>.jpg`, with `i`
the box's place in its XML file, and one row of `OUT/index.csv`, exactly as in
../shared/data/hands-in-the-wild/ (same crop, file names and columns):

- the crop (`resnets_utils.hand_crop_box`) is a square of 1.15 times the box's longer side, centred on
  the box, moved inside the photo where it would cross an edge (and no larger than the photo's shorter side), its corners
  rounded to whole pixels; it is resized to 128x128 and saved as JPEG of quality 95;
- `session` is the capture burst, the photo's name before "_pic" ("16_pic00003" -> "16",
  "3_1528499009.07_pic00009" -> "3_1528499009.07"), or its leading letters ("pic00047" -> "pic",
  "Hand_0000026" -> "Hand"). Split by session, not by photo: a burst's photos are near-identical.

Labels are the source's own: 0 is a closed fist and 3 is index + middle + ring, where SIGNS shows
0 as an "O" and 3 as thumb + index + middle (see docs/data-card.md).
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

import resnets_utils

CROP_SIZE = 128
JPEG_QUALITY = 95  # the quantisation tables of the crops in ../shared are those of quality 95
SPLITS = ("train", "test")
LABELS = range(6)
INDEX_COLUMNS = ("file", "label", "orig_split", "source_image", "xmin", "ymin", "xmax", "ymax",
                 "crop_x0", "crop_y0", "crop_x1", "crop_y1", "hands_in_image", "session")

Box = tuple[int, int, int, int]


class CropError(RuntimeError):
    """A photo or box file of the source cannot be read."""


def crop_box(box: Box, width: int, height: int) -> Box:
    """The square crop (x0, y0, x1, y1) around a hand's box (xmin, ymin, xmax, ymax) in a width x height photo:
    `resnets_utils.hand_crop_box`, the crop the kit's reader reads a found hand by."""
    return tuple(int(v) for v in resnets_utils.hand_crop_box(resnets_utils.Box(*box), width, height))


def session_of(stem: str) -> str:
    """The capture session of a photo, from its file name without extension (see the module's docstring)."""
    if "_pic" in stem:
        return stem.rsplit("_pic", 1)[0]
    return re.match(r"[A-Za-z]*", stem).group() or stem


def read_hands(xml_path: Path) -> tuple[list[tuple[int, Box] | str], int]:
    """Return ([(label, box) or the reason it is skipped, for each object in order], number of objects).

    Raises CropError naming the file when it is not a Pascal VOC box file.
    """
    try:  # the standard parser is safe here: make real-data parses only files that match the kit's checksums
        objects = ElementTree.parse(xml_path).getroot().findall("object")
    except (ElementTree.ParseError, OSError) as error:
        raise CropError(f"{xml_path} is not a readable box file (XML): {error}") from None
    hands: list[tuple[int, Box] | str] = []
    for number, item in enumerate(objects):
        name = (item.findtext("name") or "").strip()
        label = name.removesuffix("-hand")
        try:
            box = tuple(int(item.findtext(f"bndbox/{corner}")) for corner in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            hands.append(f"hand {number}: its box has no whole-number xmin, ymin, xmax, ymax")
            continue
        if not (label.isdigit() and int(label) in LABELS):
            hands.append(f"hand {number}: label '{name}' is not one of 0-hand ... 5-hand")
        elif box[2] <= box[0] or box[3] <= box[1]:
            hands.append(f"hand {number}: empty box {box}")
        else:
            hands.append((int(label), box))
    return hands, len(objects)


def open_photo(path: Path) -> Image.Image:
    """The photo as RGB, in its stored orientation: the one its box file's coordinates and <size> use."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise CropError(f"{path} is missing: every box file needs its photo beside it.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CropError(f"{path} is not a readable photo ({error}).") from None


def crop_hands(source: Path, out: Path, progress: bool = True) -> tuple[int, list[tuple[Path, str]]]:
    """Write every hand of `source` to `out`, listed in `out/index.csv`; return (hands written, skipped).

    `skipped` lists (box file, reason) for each hand whose label or box is unusable.

    Raises CropError naming the file when a box file or a photo cannot be read, or when
    `source` holds no box file at all.
    """
    source, out = Path(source), Path(out)
    box_files = [(split, path) for split in SPLITS for path in sorted((source / "images" / split).glob("*.xml"))]
    if not box_files:
        raise CropError(f"No box files in {source} (expected {source}/images/train/*.xml and images/test/*.xml).")
    rows, skipped = [], []
    for split, xml_path in tqdm(box_files, desc="Cropping hands", unit="photo", disable=not progress):
        hands, count = read_hands(xml_path)
        photo_path = xml_path.with_suffix(".jpg")
        photo = open_photo(photo_path)
        for number, hand in enumerate(hands):
            if isinstance(hand, str):
                skipped.append((xml_path, hand))
                continue
            label, box = hand
            corners = crop_box(box, *photo.size)
            name = f"{label}/{split}_{xml_path.stem}_{number}.jpg"
            (out / str(label)).mkdir(parents=True, exist_ok=True)
            crop = photo.crop(corners).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.LANCZOS)
            crop.save(out / name, quality=JPEG_QUALITY)
            rows.append((name, label, split, photo_path.relative_to(source).as_posix(), *box, *corners, count,
                         session_of(xml_path.stem)))
    with open(out / "index.csv", "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(rows)
    return len(rows), skipped

