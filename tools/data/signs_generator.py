"""Draw SIGNS-style photos of a hand showing a digit 0-5, deterministically from a seed.

A hand is a handful of rounded shapes (forearm, palm, finger and thumb segments) posed in
a hand-sized frame, then rotated, scaled and placed. It is painted at 3x the final size
with skin shading, part outlines, lighting, a soft shadow and a vignetted background, and
downsampled with anti-aliasing, blurred and noised like a phone photo shrunk to 64x64.

Poses follow the course's SIGNS photos: 0 = fingertips touching the thumb in an "O" (seen
from the side); 1 = index; 2 = index + middle; 3 = thumb + index + middle; 4 = four
fingers, thumb folded; 5 = open hand. People also count 0 as a fist and 3 as index +
middle + ring (the wild photos do), so a share of the 0s and 3s (OTHER_POSE_SHARE) is
drawn that way. The wrist enters from the bottom edge.

The course's SIGNS photos also show two poses the data sets leave out, since they would change
every notebook's figures: a 2 held sideways (the fingers level, the wrist entering from a side)
and a 5 with the fingers pressed together. `render_sign(..., variant=...)` draws them
(VARIANTS); the pretrained model trains on some and is measured on others (`make_variants`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 64
SCALE = 3
CANVAS = SIZE * SCALE

# Fingers in hand units (palm is about 1 wide): x of the knuckle, length, width, fan angle.
FINGERS = {
    "index": (0.34, 0.95, 0.22, 9.0),
    "middle": (0.11, 1.05, 0.23, 1.0),
    "ring": (-0.12, 0.98, 0.215, -7.0),
    "pinky": (-0.34, 0.76, 0.19, -16.0),
}
EXTENDED: dict[int | str, tuple[str, ...]] = {
    "fist": (),
    "three_fingers": ("index", "middle", "ring"),
    1: ("index",),
    2: ("index", "middle"),
    3: ("index", "middle"),
    4: ("index", "middle", "ring", "pinky"),
    5: ("index", "middle", "ring", "pinky"),
}
THUMB_OUT = {3, 5}
# The other way people show a digit, and the share of that digit's images drawn that way. Measured
# with `make realism` (docs/data-card.md): it raised real-photo accuracy, most on the wild photos.
OTHER_POSE = {0: "fist", 3: "three_fingers"}
OTHER_POSE_SHARE = 0.4
# The poses SIGNS shows beyond the data sets': name -> the digit it shows.
VARIANTS = {"sideways": 2, "fingers together": 5}
# Each pixel's (y, x) on the canvas, from -0.5 to 0.5: the walls' gradient, the light and the vignette use it.
CANVAS_YY, CANVAS_XX = np.mgrid[0:CANVAS, 0:CANVAS] / (CANVAS - 1) - 0.5


def _capsule(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: float, fill: int) -> None:
    """Draw a chain of round-capped thick segments: a finger, a thumb or a forearm."""
    radius = width / 2
    draw.line(points, fill=fill, width=max(1, int(round(width))), joint="curve")
    for x, y in points:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """The minimum of each (2 radius + 1)-pixel square around each pixel, edges repeated.

    Byte for byte what PIL's `ImageFilter.MinFilter(2 * radius + 1)` gives, but a square's
    minimum is a column's minimum of rows' minima, so two passes of shifted `np.minimum` do
    it about 50 times faster than PIL's rank filter, which sorts each window (that filter
    was half of the drawing time).
    """
    height, width = mask.shape
    padded = np.pad(mask, radius, mode="edge")
    rows = padded[:height]
    for shift in range(1, 2 * radius + 1):
        rows = np.minimum(rows, padded[shift : shift + height])
    square = rows[:, :width]
    for shift in range(1, 2 * radius + 1):
        square = np.minimum(square, rows[:, shift : shift + width])
    return square


def _chain(start: np.ndarray, angle_deg: float, lengths: list[float], bends: list[float]) -> list[np.ndarray]:
    """Return the joints of a finger: segments of `lengths`, each turned by a bend (degrees)."""
    points = [start]
    angle = angle_deg
    for length, bend in zip(lengths, bends):
        angle += bend
        rad = math.radians(angle)
        points.append(points[-1] + length * np.array([math.sin(rad), math.cos(rad)]))
    return points


def _palm_corners(width: float, bottom: float, top: float, skew: float = 0.0) -> list[np.ndarray]:
    """Corners of the palm, a trapezoid a little narrower at the wrist, inset for rounding."""
    half = width / 2 - 0.1
    return [
        np.array([-half * 0.85, bottom + 0.1]),
        np.array([half * 0.85, bottom + 0.1]),
        np.array([half + skew, top - 0.1]),
        np.array([-half + skew, top - 0.1]),
    ]


def _hand_parts(digit: int, rng: np.random.Generator, together: bool = False) -> list[tuple[str, list[np.ndarray], float]]:
    """Pose the hand for a digit: a list of (kind, points in hand units with y up, width); `together` presses the
    raised fingers side by side. The default pose draws from `rng` as it always has, so the data sets stay the same."""
    spread = rng.uniform(0.7, 1.9)
    finger_wobble = 3.0
    if together:
        spread, finger_wobble = rng.uniform(0.0, 0.15), 0.5
    thickness = rng.uniform(0.9, 1.1)  # slender to sturdy fingers
    parts: list[tuple[str, list[np.ndarray], float]] = []
    forearm_w = rng.uniform(0.7, 0.85)
    pose: int | str = digit
    if digit in OTHER_POSE and rng.random() < OTHER_POSE_SHARE:
        pose = OTHER_POSE[digit]
    if pose == 0:
        palm_w = rng.uniform(0.6, 0.8)  # seen from the side: a narrow palm
        parts.append(("limb", [np.array([0.0, -3.5]), np.array([0.0, -0.3])], forearm_w * 0.85))
        parts.append(("palm", _palm_corners(palm_w, -0.4, 0.45, skew=0.05), 0.2))
        ring_r = rng.uniform(0.36, 0.48)
        centre = np.array([-0.15 + ring_r, 0.4 + ring_r * 0.5])
        sweep = rng.uniform(220, 250)
        for k, (offset, width) in enumerate(((0.0, 0.36), (0.1, 0.3), (-0.08, 0.28))):
            arc = []
            for t in np.linspace(180, 180 - sweep + 10 * k, 9):
                r = ring_r + offset
                arc.append(centre + r * np.array([math.cos(math.radians(t)), math.sin(math.radians(t))]))
            parts.append(("finger", arc, width))
        tip = arc[-1]
        thumb_base = np.array([0.2, -0.1])
        parts.append(("finger", [thumb_base, (thumb_base + tip) / 2 + np.array([0.12, 0.0]), tip], 0.3))
        return parts

    palm_w = rng.uniform(0.92, 1.08)
    parts.append(("limb", [np.array([0.0, -3.5]), np.array([0.0, -0.45])], forearm_w))
    parts.append(("palm", _palm_corners(palm_w, -0.5, 0.5), 0.25))
    for name, (x, length, width, fan) in FINGERS.items():
        base = np.array([x * palm_w, 0.5])
        length *= rng.uniform(0.9, 1.1)
        if name in EXTENDED[pose]:
            angle = fan * spread + rng.normal(0, finger_wobble)
            bends = list(rng.normal([0.0, 3.0, 4.0], 4.0 if not together else 1.0))
            pts = _chain(base, angle, [length * 0.45, length * 0.3, length * 0.25], bends)
            parts.append(("finger", pts, width * thickness))
        else:  # curled towards the palm: only the back of the finger shows, pointing down
            curl = rng.uniform(0.28, 0.45)
            parts.append(("finger", [base, base + np.array([rng.normal(0, 0.03), -curl])], width * 1.05 * thickness))
    thumb_base = np.array([0.42 * palm_w, -0.3])
    if pose in THUMB_OUT:
        angle = rng.uniform(35, 70) if digit == 5 else rng.uniform(25, 60)
        pts = _chain(thumb_base, angle, [0.45, 0.32, 0.25], list(rng.normal([0.0, -8.0, -8.0], 5.0)))
    else:  # folded across the palm, over the curled fingers
        reach = -0.15 if digit == 4 else rng.uniform(-0.25, 0.05)
        pts = [thumb_base, np.array([0.3 * palm_w, 0.05]), np.array([reach, rng.uniform(0.12, 0.25)])]
    parts.append(("finger", pts, 0.27 * thickness))
    return parts


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    """A skin colour from pale to dark brown, as RGB in [0, 1]."""
    depth = rng.beta(1.2, 4.0)  # most hands light, some dark, like the course photos
    light = np.array([0.88, 0.74, 0.58])
    dark = np.array([0.40, 0.26, 0.17])
    tone = light + (dark - light) * depth
    return np.clip(tone + rng.normal(0, 0.025, 3), 0, 1)


def _background(rng: np.random.Generator) -> np.ndarray:
    """A light plain or gradient wall, as float RGB (CANVAS, CANVAS, 3)."""
    base = rng.uniform(0.72, 1.0) * np.ones(3) + rng.normal(0, 0.02, 3)
    direction = rng.normal(size=2)
    gradient = rng.uniform(0.0, 0.25) * (CANVAS_XX * direction[0] + CANVAS_YY * direction[1]) / np.linalg.norm(direction)
    return np.clip(base[None, None, :] * (1.0 + gradient)[:, :, None], 0, 1)


def _vignette(rng: np.random.Generator) -> np.ndarray:
    """Lens vignetting: darker corners and edges over the whole picture, hand included."""
    return np.clip(1.0 - rng.uniform(0.1, 0.75) * (CANVAS_XX**2 + CANVAS_YY**2) * 2, 0.2, 1.0)[:, :, None]


def _texture(rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth random blotches in [-1, 1]: skin creases and uneven light, without drawing them."""
    coarse = Image.fromarray(((rng.random((24, 24)) * 255)).astype(np.uint8)).resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
    return (np.asarray(coarse.filter(ImageFilter.GaussianBlur(scale)), dtype=np.float32) / 127.5) - 1.0


def render_sign(digit: int, rng: np.random.Generator, size: int = SIZE, variant: str | None = None) -> np.ndarray:
    """Return one RGB uint8 image (size x size, at most 192) of a hand showing `digit` (0-5), drawn from `rng`;
    `variant` ("sideways" or "fingers together", see VARIANTS) poses it so."""
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"no variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    parts = _hand_parts(digit, rng, together=variant == "fingers together")
    mirror = -1.0 if rng.random() < 0.2 else 1.0  # mostly right hands, as in the course photos
    hand_size = CANVAS * rng.uniform(0.33, 0.43)
    rotation = math.radians(rng.uniform(-30, 30))
    centre = np.array([CANVAS * rng.uniform(0.42, 0.58), CANVAS * rng.uniform(0.56, 0.7)])
    if variant == "sideways":  # fingers level, pointing left or right; the hand moves away from where they point
        rotation = math.radians(rng.choice([-1.0, 1.0]) * rng.uniform(65, 105))
        centre = CANVAS * (0.5 + 0.16 * np.array([math.sin(rotation), math.cos(rotation)]) + rng.normal(0, 0.03, 2))
    cos, sin = math.cos(rotation), math.sin(rotation)

    def to_canvas(point: np.ndarray) -> tuple[float, float]:
        x, y = point[0] * mirror, point[1]
        return (centre[0] + hand_size * (cos * x - sin * y), centre[1] - hand_size * (sin * x + cos * y))

    # Each part is painted over the previous ones; its outline marks where it overlaps.
    union = Image.new("L", (CANVAS, CANVAS), 0)
    outlines = Image.new("L", (CANVAS, CANVAS), 0)
    outline_px = max(1, int(round(SCALE * rng.uniform(0.5, 0.9))))
    for kind, points, width in parts:
        mask = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(mask)
        canvas_points = [to_canvas(p) for p in points]
        if kind == "palm":  # a polygon whose corners are rounded by a thick closed outline
            draw.polygon(canvas_points, fill=255)
            _capsule(draw, canvas_points + canvas_points[:1], width * hand_size, 255)
        else:
            _capsule(draw, canvas_points, width * hand_size, 255)
        edge = np.asarray(mask, dtype=np.int16) - _erode(np.asarray(mask), outline_px)
        covered = np.asarray(mask) > 0
        out = np.asarray(outlines, dtype=np.int16).copy()
        out[covered] = 0
        outlines = Image.fromarray(np.maximum(out, edge).astype(np.uint8))
        union = Image.fromarray(np.maximum(np.asarray(union), np.asarray(mask)))

    hand = np.asarray(union, dtype=np.float32) / 255.0
    roundness = np.asarray(union.filter(ImageFilter.GaussianBlur(hand_size * 0.09)), dtype=np.float32) / 255.0
    light_dir = rng.normal(size=2)
    light = 1.0 + rng.uniform(0.05, 0.3) * (CANVAS_XX * light_dir[0] + CANVAS_YY * light_dir[1]) / np.linalg.norm(light_dir)
    skin = _skin_tone(rng)
    brightness = rng.uniform(0.85, 1.1) * (0.6 + 0.4 * roundness) * light * (1 + 0.06 * _texture(rng, 2.0))
    lines = np.asarray(outlines.filter(ImageFilter.GaussianBlur(SCALE * 0.5)), dtype=np.float32) / 255.0
    # Each part's outline darkens the skin, which marks folded fingers and a thumb in front of the palm as a
    # photo's creases do: with 20-50% darkening instead of 10-25%, models trained on these images read real
    # photos 12 points better (make realism, ten models; docs/data-card.md).
    brightness *= 1.0 - rng.uniform(0.2, 0.5) * lines
    skin_rgb = skin[None, None, :] * brightness[:, :, None]

    background = _background(rng)
    shadow_offset = (int(rng.integers(-8, 9)), int(rng.integers(2, 12)))
    shadow = np.asarray(
        union.transform(union.size, Image.Transform.AFFINE, (1, 0, -shadow_offset[0], 0, 1, -shadow_offset[1]))
        .filter(ImageFilter.GaussianBlur(rng.uniform(6, 14))),
        dtype=np.float32,
    ) / 255.0
    background *= (1.0 - rng.uniform(0.1, 0.3) * shadow)[:, :, None]

    picture = (background * (1 - hand[:, :, None]) + skin_rgb * hand[:, :, None]) * _vignette(rng)
    image = Image.fromarray(np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    small = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    small += rng.normal(0, rng.uniform(1.5, 5.0), small.shape)
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


def make_split(
    per_class: int, seed: int, on_image: Callable[[int], object] = lambda n: None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (m, 64, 64, 3), labels int64 (m,)) with `per_class` of each digit, shuffled.

    `on_image(1)` is called after each image, for a progress bar.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(6, dtype=np.int64), per_class)
    rng.shuffle(labels)
    images = np.empty((len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = render_sign(int(label), rng)
        on_image(1)
    return images, labels


def make_variants(per_variant: int, seed: int, poses: tuple[str, ...] = tuple(VARIANTS)) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {variant: (images uint8 (per_variant, 64, 64, 3), labels int64)} for each of `poses` (VARIANTS' names)."""
    rng = np.random.default_rng(seed)
    return {variant: (np.stack([render_sign(VARIANTS[variant], rng, variant=variant) for _ in range(per_variant)]),
                      np.full(per_variant, VARIANTS[variant], dtype=np.int64))
            for variant in poses}
