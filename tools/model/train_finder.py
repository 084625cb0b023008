"""Train the kit's hand finder: `python -m tools.model.train_finder [--wild DIR] [--sld DIR] [--epochs N]`.

The finder is the pretrained ResNet50's first four stages, frozen (`resnets_utils.finder_backbone`),
and a small head trained here: for every 16x16 cell of a 256x256 canvas, how likely a hand's
centre lies in it, where in the cell, and the box's width and height (a CenterNet-style head:
Zhou et al., "Objects as Points", 2019). Because the backbone is frozen, its features are
computed once per picture and the head trains on them in seconds per epoch.

It learns from pictures whose hand boxes are known (`training_pictures`):
- the wild whole photos of the training sessions (`frames.csv`), each as the whole photo and as
  crops around one of its hands from tight (the reader's crop) to loose, some mirrored;
- Sign Language Digits training hands: the plain-wall photo itself, and the hand cut out by
  colour (`tools.data.composite_hands.hand_mask`), tinted, sometimes turned sideways, and placed
  small or large on a wild training photo (whose own hands stay labelled) or a drawn wall;
- pictures with no hand: parts of the wild training photos away from every hand (faces, rooms)
  and drawn walls.
Validation and test sessions are never trained on. The score under which a peak is "no hand"
is chosen on the validation sessions and their hand-free parts; the head and that score are
written to `models/hand_finder.json` and `.npz`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

import resnets_utils
from resnets_utils import FINDER_SIZE, FINDER_STRIDE, Box
from tools.course import notebook_source
from tools.data import composite_hands, real_splits

SEED = 2026
EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
CELLS = FINDER_SIZE // FINDER_STRIDE
VIEWS_PER_FRAME = 4  # the whole photo and three crops around a hand
NO_HAND_SHARE = 0.15  # pictures with no hand, as a share of those with one
MIN_VISIBLE = 0.6  # a hand cut by a crop's edge stays a target if this share of its box is in the crop


def read_frames(wild: Path) -> dict[str, dict[str, list]]:
    """Return {part: {frame path: [(label, Box), ...]}} of frames.csv, split by session as the crops are."""
    index = wild / "frames.csv"
    if not index.is_file():
        raise real_splits.RealDataError(f"{index} not found: the wild whole photos are needed to train the hand finder.")
    parts: dict[str, dict[str, list]] = {"train": defaultdict(list), "validation": defaultdict(list), "test": defaultdict(list)}
    with index.open(newline="") as file:
        for row in csv.DictReader(file):
            box = Box(*(float(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")))
            label = int(row["label"]) if row["label"].strip() else -1
            parts[real_splits.part_of_session(row["session"])][str(wild / row["frame"])].append((label, box))
    return parts


def crop_view(image: np.ndarray, boxes: list[Box], crop: Box) -> tuple[np.ndarray, list[Box]]:
    """Return the image cut to `crop` and the boxes moved into it; boxes mostly outside are dropped."""
    left, top, right, bottom = (int(round(v)) for v in crop)
    view = image[max(top, 0) : bottom, max(left, 0) : right]
    kept = []
    for box in boxes:
        inside = Box(max(box.left, left), max(box.top, top), min(box.right, right), min(box.bottom, bottom))
        area = (box.right - box.left) * (box.bottom - box.top)
        if inside.right > inside.left and inside.bottom > inside.top:
            if (inside.right - inside.left) * (inside.bottom - inside.top) >= MIN_VISIBLE * area:
                kept.append(Box(inside.left - max(left, 0), inside.top - max(top, 0), inside.right - max(left, 0), inside.bottom - max(top, 0)))
    return view, kept


def framed(image: np.ndarray, box: Box, scale: float, rng: np.random.Generator) -> Box:
    """A square crop around `box` of `scale` times its longer side, shifted at random but keeping the hand in."""
    height, width = image.shape[:2]
    side = min(scale * max(box.right - box.left, box.bottom - box.top), width, height)
    slack_x, slack_y = max(0.0, side - (box.right - box.left)), max(0.0, side - (box.bottom - box.top))
    left = box.left - rng.uniform(0.2, 0.8) * slack_x
    top = box.top - rng.uniform(0.2, 0.8) * slack_y
    left, top = min(max(left, 0), width - side), min(max(top, 0), height - side)
    return Box(left, top, left + side, top + side)


def mirrored(image: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, list[Box]]:
    width = image.shape[1]
    return image[:, ::-1], [Box(width - b.right, b.top, width - b.left, b.bottom) for b in boxes]


def hand_free_crop(image: np.ndarray, boxes: list[Box], rng: np.random.Generator) -> np.ndarray | None:
    """A crop of a photo that no hand's box touches (a face, a window, a desk), or None if none was found."""
    height, width = image.shape[:2]
    for _ in range(20):
        side = rng.uniform(0.3, 0.7) * min(height, width)
        left, top = rng.uniform(0, width - side), rng.uniform(0, height - side)
        crop = Box(left, top, left + side, top + side)
        if not any(composite_hands.overlaps(crop, box) for box in boxes):
            return image[int(top) : int(top + side), int(left) : int(left + side)]
    return None


def drawn_wall(rng: np.random.Generator) -> np.ndarray:
    """A drawn wall (stripes, tiles, clutter) as a 256x256 picture."""
    return np.asarray(Image.fromarray(composite_hands.drawn_background(rng).astype(np.uint8)).resize((FINDER_SIZE, FINDER_SIZE), Image.BILINEAR))


def training_pictures(frames: dict[str, list], sld_photos: list[Path], rng: np.random.Generator, progress: bool = True):
    """Yield (uint8 picture, [Box]) for the finder to learn from (see the module's docstring)."""
    loaded = {path: np.asarray(Image.open(path).convert("RGB")) for path in tqdm(frames, desc="Reading photos", disable=not progress)}
    for path, hands in frames.items():
        image, boxes = loaded[path], [box for _, box in hands]
        yield image, boxes
        for _ in range(VIEWS_PER_FRAME - 1):
            scale = float(np.exp(rng.uniform(np.log(1.1), np.log(3.0))))
            view, kept = crop_view(image, boxes, framed(image, boxes[rng.integers(len(boxes))], scale, rng))
            yield mirrored(view, kept) if rng.random() < 0.5 else (view, kept)
    rooms = list(frames.items())
    for path in sld_photos:
        photo = np.asarray(Image.open(path).convert("RGB"))
        masked = composite_hands.masked_hand(photo)
        yield photo, [] if masked is None else [masked[1]]
        cut = composite_hands.cut_out_hand(photo, rng)
        if cut is None:
            continue
        if rng.random() < 0.7:
            room_path, hands = rooms[rng.integers(len(rooms))]
            picture, boxes = loaded[room_path], [box for _, box in hands]
        else:
            picture, boxes = drawn_wall(rng), []
        placed = composite_hands.place_hand(picture, boxes, *cut, rng)
        if placed is not None:
            yield placed
    for _ in range(int(NO_HAND_SHARE * (VIEWS_PER_FRAME * len(frames) + 2 * len(sld_photos)))):
        if rng.random() < 0.8:
            path, hands = rooms[rng.integers(len(rooms))]
            crop = hand_free_crop(loaded[path], [box for _, box in hands], rng)
            if crop is not None:
                yield crop, []
        else:
            yield drawn_wall(rng), []


def targets(boxes: list[Box], scale: float, offset: tuple[int, int]) -> np.ndarray:
    """Return the (cells, cells, 6) target of one canvas: the centre heat (a Gaussian per hand, 1 at its
    centre cell), the centre's offset in its cell (x, y), log width and height, and 1 where a centre is."""
    target = np.zeros((CELLS, CELLS, 6), np.float32)
    grid_y, grid_x = np.mgrid[0:CELLS, 0:CELLS] + 0.5
    for box in boxes:
        left, top = box.left * scale + offset[0], box.top * scale + offset[1]
        width, height = (box.right - box.left) * scale, (box.bottom - box.top) * scale
        if width < 4 or height < 4:
            continue
        centre_x, centre_y = (left + width / 2) / FINDER_STRIDE, (top + height / 2) / FINDER_STRIDE
        col, row = min(int(centre_x), CELLS - 1), min(int(centre_y), CELLS - 1)
        sigma = max(0.5, np.sqrt(width * height) / FINDER_STRIDE / 6)
        heat = np.exp(-((grid_x - (col + 0.5)) ** 2 + (grid_y - (row + 0.5)) ** 2) / (2 * sigma**2))
        target[..., 0] = np.maximum(target[..., 0], heat)
        target[row, col] = [1.0, centre_x - col - 0.5, centre_y - row - 0.5, np.log(width / FINDER_SIZE), np.log(height / FINDER_SIZE), 1.0]
    return target


def build_head():
    """The head: three convolutions over the backbone's cells, then five numbers per cell. (A U-shaped head,
    down to 4x4 cells and back, found more tight crops' hands but fewer whole photos' on the validation
    sessions, and read fewer photos right end to end.)"""
    import keras

    features = keras.Input((None, None, 1024))
    x = keras.layers.Conv2D(128, 1, activation="relu")(features)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    prior = float(np.log(0.05 / 0.95))  # start by saying "few cells hold a hand's centre" (Lin et al., 2017)
    bias = np.array([prior, 0, 0, np.log(0.3), np.log(0.3)], np.float32)
    out = keras.layers.Conv2D(5, 1, bias_initializer=keras.initializers.Constant(bias))(x)
    return keras.Model(features, out, name="hand_finder_head")


def finder_loss(target, output):
    """CenterNet's loss: a focal loss on the centre heat (the few centre cells against all others, the
    cells near a centre punished less), and L1 on offset and size at the centre cells."""
    import tensorflow as tf

    heat, is_centre = target[..., 0], target[..., 5]
    score = tf.clip_by_value(tf.sigmoid(output[..., 0]), 1e-4, 1 - 1e-4)
    positive = -is_centre * (1 - score) ** 2 * tf.math.log(score)
    negative = -(1 - is_centre) * (1 - heat) ** 4 * score**2 * tf.math.log(1 - score)
    centres = tf.maximum(tf.reduce_sum(is_centre), 1.0)
    geometry = tf.reduce_sum(is_centre[..., None] * tf.abs(target[..., 1:5] - output[..., 1:5]))
    return (tf.reduce_sum(positive + negative) + geometry) / centres


def features_of(backbone, pictures, progress: bool = True):
    """Return (float16 features, targets) of the pictures, each on its finder canvas."""
    features, goal = [], []
    batch, batch_targets = [], []

    def flush():
        features.append(backbone.predict(resnets_utils.preprocess(np.stack(batch)), verbose=0).astype(np.float16))
        goal.extend(batch_targets)
        batch.clear()
        batch_targets.clear()

    for picture, boxes in tqdm(pictures, desc="Backbone features", unit="picture", disable=not progress):
        canvas, scale, offset = resnets_utils.finder_canvas(picture)
        batch.append(canvas)
        batch_targets.append(targets(boxes, scale, offset))
        if len(batch) == 16:
            flush()
    if batch:
        flush()
    return np.concatenate(features), np.stack(goal)


def validation_views(frames: dict[str, list]) -> dict[str, list[tuple[np.ndarray, Box]]]:
    """The three framings of issue 33 for each validation hand: tight crop, half-frame crop, whole photo."""
    views: dict[str, list] = {"tight crop": [], "half-frame crop": [], "whole photo": []}
    for path, hands in frames.items():
        image = np.asarray(Image.open(path).convert("RGB"))
        boxes = [box for _, box in hands]
        if len(boxes) == 1:
            views["whole photo"].append((image, boxes[0]))
        for box in boxes:
            for name, scale in (("tight crop", 1.15), ("half-frame crop", 2.2)):
                crop = resnets_utils.hand_crop_box(box, image.shape[1], image.shape[0], scale)
                view, kept = crop_view(image, [box], crop)
                if kept:
                    views[name].append((view, kept[0]))
    return views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wild", type=Path, default=real_splits.WILD_PHOTOS)
    parser.add_argument("--sld", type=Path, default=real_splits.SLD_PHOTOS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--reader", type=Path, default=resnets_utils.PRETRAINED, help="the reader whose backbone the finder uses (MODEL.json/.npz)")
    parser.add_argument("--out", type=Path, default=resnets_utils.FINDER)
    parser.add_argument("--features", type=Path, help="keep the backbone's features in this .npz and reuse them when it exists (to try heads quickly)")
    args = parser.parse_args()
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    try:
        frames = read_frames(args.wild)
        sld = real_splits.split_sld(args.sld)["train"].paths
        reader = resnets_utils.load_pretrained(args.reader)
    except (real_splits.RealDataError, resnets_utils.ModelFileError) as error:
        raise SystemExit(f"Error: {error}") from None
    backbone = resnets_utils.finder_backbone(reader)
    if args.features and args.features.is_file():
        with np.load(args.features) as stored:
            x, y = stored["x"], stored["y"]
    else:
        x, y = features_of(backbone, training_pictures(frames["train"], sld, rng))
        if args.features:
            np.savez(args.features, x=x, y=y)
    print(f"{len(x)} training pictures, {int(y[..., 5].sum())} hands")
    head = build_head()
    steps = int(np.ceil(len(x) / BATCH_SIZE)) * args.epochs
    head.compile(optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps), weight_decay=1e-4), loss=finder_loss)
    head.fit(x, y, batch_size=BATCH_SIZE, epochs=args.epochs, verbose=2, shuffle=True)
    report = judge(resnets_utils.HandFinder(backbone, head, 0.0), frames["validation"], rng)
    export(head, report, args.out)
    print(json.dumps(report, indent=1))
    print(f"Trained the hand finder in {time.perf_counter() - started:.0f} s")


def judge(finder, frames: dict[str, list], rng: np.random.Generator) -> dict:
    """Measure on the validation sessions: how often the best peak is the hand (IoU at least 0.5) per framing,
    and choose the score under which a peak is "no hand" from the hands' and the hand-free crops' best scores.
    `finder` keeps every peak (its no-hand score is 0)."""
    iou = notebook_source.intersection_over_union()
    report: dict = {"found at IoU 0.5": {}}
    hand_scores = []
    for name, pairs in validation_views(frames).items():
        hits = 0
        for image, box in pairs:
            found = resnets_utils.find_hands(finder, image)[:1]
            if found:
                hits += iou(found[0].box, box) >= 0.5
                hand_scores.append(found[0].score)
        report["found at IoU 0.5"][name] = round(float(hits) / len(pairs), 3)
    free = [hand_free_crop(np.asarray(Image.open(path).convert("RGB")), [box for _, box in hands], rng) for path, hands in frames.items()]
    free_scores = [max((hand.score for hand in resnets_utils.find_hands(finder, crop)), default=0.0) for crop in free if crop is not None]
    hand_scores, free_scores = np.array(hand_scores), np.array(free_scores)
    candidates = np.linspace(0.05, 0.6, 56)
    balanced = [(np.mean(hand_scores >= t) + np.mean(free_scores < t)) / 2 for t in candidates]
    threshold = float(candidates[int(np.argmax(balanced))])
    report.update(no_hand_below=round(threshold, 3), hands_kept=round(float(np.mean(hand_scores >= threshold)), 3),
                  hand_free_refused=round(float(np.mean(free_scores < threshold)), 3), hand_free_pictures=len(free_scores))
    return report


def export(head, report: dict, path: Path) -> None:
    """Write the head's architecture, the no-hand score and the validation figures to `<path>.json`,
    its weights as float16 to `<path>.npz`."""
    settings = {"head": json.loads(build_head().to_json()), "no_hand_below": report["no_hand_below"], "validation": report}
    path.with_suffix(".json").write_text(json.dumps(settings, indent=1) + "\n")
    resnets_utils.save_float16_weights(head, path.with_suffix(".npz"))


if __name__ == "__main__":
    main()
