"""Hands cut out of plain-wall photos and placed in rooms, so that a model learns the hand and not the wall.

Every Sign Language Digits photo is a hand on a light grey wall: a model trained on them
alone reads a hand at a desk by its background. Here each such hand is cut out by colour
(skin is redder than blue, a grey wall is neither), scaled and moved as in a phone photo,
tinted to another skin tone and light, and placed on a background: a corner of a wild
*training* photo (offices, hallways, brick, windows) or a procedural one (gradients,
stripes, tiles, clutter). Blur and JPEG noise finish it. The images are drawn once from a
seed, so a training run is repeatable.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from resnets_utils import Box

SIZE = 64
SKIN_CHROMA = 0.07  # (red - blue) / (red + green + blue): about 0 for the grey walls, 0.1-0.25 for skin
MIN_HAND_SHARE = 0.08  # a mask covering less of the photo missed the hand (a dark photo): the photo is left out


def hand_mask(photo: np.ndarray) -> np.ndarray:
    """Return a float mask in [0, 1] of the hand in a uint8 plain-wall photo, with soft edges."""
    pixels = photo.astype(np.float32)
    chroma = (pixels[..., 0] - pixels[..., 2]) / (pixels.sum(axis=-1) + 1.0)
    mask = Image.fromarray(((chroma > SKIN_CHROMA) * 255).astype(np.uint8))
    # Close the small holes (nails, shadows between fingers), drop specks, then soften the edge.
    mask = mask.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MinFilter(3))
    mask = mask.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(mask, dtype=np.float32) / 255.0


def room_background(rooms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a SIZE x SIZE float background: a corner of one room photo, enlarged, as a phone close-up shows it."""
    room = rooms[rng.integers(len(rooms))]
    side = int(rng.integers(room.shape[0] // 5, room.shape[0] // 3))  # larger corners show the room photo's own hand
    top = 0 if rng.random() < 0.5 else room.shape[0] - side
    left = 0 if rng.random() < 0.5 else room.shape[1] - side
    patch = Image.fromarray(room[top : top + side, left : left + side]).resize((SIZE, SIZE), Image.BILINEAR)
    patch = np.asarray(patch, dtype=np.float32)
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def drawn_background(rng: np.random.Generator) -> np.ndarray:
    """Return a SIZE x SIZE float background drawn from shapes: a lit wall with stripes, tiles or clutter on it."""
    base = rng.uniform(30, 230, size=3)
    ramp = np.linspace(-1, 1, SIZE)
    angle = rng.uniform(0, np.pi)
    light = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    image = Image.fromarray(np.clip(base + rng.uniform(0, 60) * light[..., None], 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    kind = rng.integers(3)
    if kind == 0:  # stripes: blinds, shelves, a door frame
        step = int(rng.integers(5, 20))
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        for offset in range(0, SIZE, step):
            box = [offset, 0, offset + step // 2, SIZE] if rng.random() < 0.5 else [0, offset, SIZE, offset + step // 2]
            draw.rectangle(box, fill=colour)
    elif kind == 1:  # tiles or bricks
        height, width = int(rng.integers(6, 16)), int(rng.integers(10, 28))
        mortar = tuple(int(c) for c in rng.uniform(100, 240, 3))
        for row, top in enumerate(range(0, SIZE, height)):
            draw.line([0, top, SIZE, top], fill=mortar, width=1)
            for left in range((row % 2) * width // 2, SIZE, width):
                draw.line([left, top, left, top + height], fill=mortar, width=1)
    for _ in range(int(rng.integers(0, 6))):  # clutter: screens, posters, furniture
        x0, y0 = rng.integers(-10, SIZE, 2)
        x1, y1 = x0 + rng.integers(8, 40), y0 + rng.integers(8, 40)
        shape = draw.ellipse if rng.random() < 0.3 else draw.rectangle
        shape([int(x0), int(y0), int(x1), int(y1)], fill=tuple(int(c) for c in rng.uniform(0, 255, 3)))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2))), dtype=np.float32)


def drawn_cat(rng: np.random.Generator) -> np.ndarray:
    """Return a uint8 SIZE x SIZE cartoon cat's face on a drawn wall: a picture with no hand, never trained on."""
    image = Image.fromarray(drawn_background(rng).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(0.8, 1.1)
    cx, cy = SIZE / 2 + rng.uniform(-6, 6), SIZE / 2 + 5 + rng.uniform(-4, 4)

    def at(x: float, y: float) -> tuple[float, float]:  # a point of the face, drawn 64 units wide
        return cx + scale * x, cy + scale * y

    fur = tuple(int(c) for c in rng.uniform([120, 70, 20], [230, 170, 110]))
    dark = (40, 30, 20)
    draw.polygon([at(-14, -7), at(-10, -25), at(0, -13)], fill=fur)  # ears
    draw.polygon([at(14, -7), at(10, -25), at(0, -13)], fill=fur)
    draw.ellipse([at(-18, -17), at(18, 17)], fill=fur)  # head
    draw.ellipse([at(-10, -7), at(-4, 0)], fill=dark)  # eyes
    draw.ellipse([at(4, -7), at(10, 0)], fill=dark)
    draw.polygon([at(-2, 4), at(2, 4), at(0, 7)], fill=(230, 120, 140))  # nose
    for side in (-1, 1):  # whiskers
        for slope in (-4, 4):
            draw.line([at(side * 6, 7), at(side * 20, 7 + slope)], fill=dark, width=1)
    return np.asarray(image)


def background(rooms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a uint8 SIZE x SIZE background with no hand: a room photo's corner (when `rooms` has any) or a drawn one."""
    chosen = room_background(rooms, rng) if len(rooms) and rng.random() < 0.6 else drawn_background(rng)
    return chosen.astype(np.uint8)


def _placed(layer: np.ndarray, scale: float, shift_x: int, rng: np.random.Generator) -> np.ndarray:
    """Scale an (h, w, c) float layer to SIZE * scale and place it with its bottom (the wrist) on the bottom edge."""
    side = max(8, int(round(SIZE * scale)))
    channels = [np.asarray(Image.fromarray(layer[..., c]).resize((side, side), Image.BILINEAR)) for c in range(layer.shape[-1])]
    scaled = np.stack(channels, axis=-1)
    canvas = np.zeros((SIZE, SIZE, layer.shape[-1]), dtype=np.float32)
    top = SIZE - side + int(rng.integers(0, max(1, side // 6)))  # a little of the wrist may leave the photo
    left = (SIZE - side) // 2 + shift_x
    rows, cols = slice(max(top, 0), min(top + side, SIZE)), slice(max(left, 0), min(left + side, SIZE))
    canvas[rows, cols] = scaled[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
    return canvas


def composite(photo: np.ndarray, rooms: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Return a uint8 SIZE x SIZE image of the plain-wall photo's hand on another background, or None if no hand is found."""
    small = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.BILINEAR))
    mask = hand_mask(small)
    if mask.mean() < MIN_HAND_SHARE:
        return None
    scale = rng.uniform(0.8, 1.1)  # the wild crops' hands fill most of the photo
    shift = int(rng.integers(-SIZE // 8, SIZE // 8 + 1))
    layer = _placed(np.dstack([small.astype(np.float32), mask]), scale, shift, rng)
    tone = rng.uniform(0.45, 1.15) * rng.uniform(0.92, 1.08, size=3)  # darker or lighter skin, warmer or cooler light
    hand, alpha = layer[..., :3] * tone, layer[..., 3:]
    image = alpha * hand + (1 - alpha) * background(rooms, rng)
    image = image * rng.uniform(0.7, 1.2) + rng.normal(0, rng.uniform(0, 6), image.shape)  # exposure and sensor noise
    result = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        result = result.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        result.save(buffer, format="JPEG", quality=int(rng.integers(30, 90)))
        result = Image.open(buffer).convert("RGB")
    return np.asarray(result)


def composite_hands(
    photos: np.ndarray, labels: np.ndarray, rooms: np.ndarray, copies: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images, labels): `copies` composites of each plain-wall photo's hand, drawn from `seed`.

    `photos` are uint8 (m, h, w, 3) plain-wall hand photos; `rooms` are uint8 photos whose
    corners give backgrounds (may be empty: then every background is drawn). Photos in which
    no hand is found are left out.
    """
    rng = np.random.default_rng(seed)
    images, kept = [], []
    for photo, label in zip(photos, labels):
        for _ in range(copies):
            image = composite(photo, rooms, rng)
            if image is not None:
                images.append(image)
                kept.append(label)
    return np.stack(images), np.asarray(kept, dtype=np.int64)


# --- Hands placed in larger pictures, with their boxes: what the hand finder learns from -----------


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share any area."""
    return min(a.right, b.right) > max(a.left, b.left) and min(a.bottom, b.bottom) > max(a.top, b.top)


def masked_hand(photo: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """Return a plain-wall photo's hand mask (`hand_mask`) and the hand's box, or None when no hand shows."""
    alpha = hand_mask(photo)
    if alpha.mean() < MIN_HAND_SHARE:
        return None
    rows, cols = np.nonzero(alpha > 0.5)
    return alpha, Box(int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)


def cut_out_hand(photo: np.ndarray, rng: np.random.Generator, turns: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (hand pixels, alpha) of a plain-wall photo, tinted as another skin and light, cropped to the hand."""
    masked = masked_hand(photo)
    if masked is None:
        return None
    alpha, (left, top, right, bottom) = masked
    tone = rng.uniform(0.45, 1.15) * rng.uniform(0.92, 1.08, size=3)
    hand = photo[top:bottom, left:right].astype(np.float32) * tone
    alpha = alpha[top:bottom, left:right]
    turns = int(rng.choice([0, 0, 1, 3])) if turns is None else turns  # quarter turns: sometimes sideways, as SIGNS' 2s are held
    return np.rot90(hand, turns), np.rot90(alpha, turns)


def place_hand(image: np.ndarray, boxes: list[Box], hand: np.ndarray, alpha: np.ndarray, rng: np.random.Generator):
    """Place a cut-out hand on `image` where it covers no labelled hand; return (image, boxes) or None."""
    height, width = image.shape[:2]
    side = rng.uniform(0.2, 0.7) * min(height, width)
    factor = side / max(hand.shape[:2])
    size = (max(4, int(hand.shape[1] * factor)), max(4, int(hand.shape[0] * factor)))
    for _ in range(10):
        left, top = int(rng.uniform(0, width - size[0])), int(rng.uniform(0, height - size[1]))
        box = Box(left, top, left + size[0], top + size[1])
        if all(not overlaps(box, other) for other in boxes):
            break
    else:
        return None
    scaled = np.stack([np.asarray(Image.fromarray(np.clip(hand[..., c], 0, 255).astype(np.uint8)).resize(size, Image.BILINEAR)) for c in range(3)], -1)
    mask = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).resize(size, Image.BILINEAR), dtype=np.float32)[..., None] / 255
    result = image.astype(np.float32).copy()
    region = result[top : top + size[1], left : left + size[0]]
    result[top : top + size[1], left : left + size[0]] = mask * scaled + (1 - mask) * region
    return np.clip(result, 0, 255).astype(np.uint8), boxes + [box]
