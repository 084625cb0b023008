"""Hands cut out of plain-wall photos land on other backgrounds, and the pretrained model's data mixes them in."""

from __future__ import annotations

import numpy as np

import resnets_utils
from tools.data import composite_hands, real_splits
from tools.model import train_pretrained

WALL, SKIN = (200, 200, 205), (205, 150, 120)


def wall_with_hand() -> np.ndarray:
    """A grey wall with a skin-coloured 'hand' (palm and a finger) rising from the bottom edge."""
    photo = np.full((64, 64, 3), WALL, np.uint8)
    photo[30:, 18:46] = SKIN
    photo[8:30, 28:34] = SKIN
    return photo


def is_skin(image: np.ndarray) -> np.ndarray:
    pixels = image.astype(np.float32)
    return (pixels[..., 0] - pixels[..., 2]) / (pixels.sum(axis=-1) + 1) > composite_hands.SKIN_CHROMA


def test_the_mask_covers_the_hand_and_not_the_wall():
    mask = composite_hands.hand_mask(wall_with_hand())
    assert mask[40:60, 22:42].min() > 0.9 and mask[12:26, 30:32].min() > 0.9, "the palm and the finger"
    assert mask[:20, :20].max() < 0.1 and mask[:, 55:].max() < 0.1, "the wall"


def test_a_photo_with_no_hand_gives_no_composite():
    wall = np.full((64, 64, 3), WALL, np.uint8)
    assert composite_hands.composite(wall, np.zeros((0, 64, 64, 3), np.uint8), np.random.default_rng(0)) is None


def test_composites_keep_the_hand_and_replace_the_wall_the_same_way_for_the_same_seed():
    photos, labels = np.stack([wall_with_hand()] * 20), np.arange(20) % 6
    rooms = np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    images, kept = composite_hands.composite_hands(photos, labels, rooms, copies=2, seed=5)
    again, _ = composite_hands.composite_hands(photos, labels, rooms, copies=2, seed=5)
    assert images.shape == (40, 64, 64, 3) and images.dtype == np.uint8 and kept.tolist() == np.repeat(labels, 2).tolist()
    assert np.array_equal(images, again)
    wall_left = [np.abs(image[:16, :16].astype(float) - WALL).mean() < 12 for image in images]
    assert np.mean(wall_left) < 0.2, "most composites no longer show the grey wall in their top corner"
    hand_shares = np.array([is_skin(image)[32:, 16:48].mean() for image in images])
    assert np.median(hand_shares) > 0.4, "the hand stays, at the bottom middle, in most composites"


def test_backgrounds_alone_show_no_hand_and_vary():
    rng = np.random.default_rng(2)
    rooms = np.random.default_rng(3).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    backgrounds = np.stack([composite_hands.background(rooms, rng) for _ in range(30)])
    assert backgrounds.shape == (30, 64, 64, 3) and backgrounds.dtype == np.uint8
    assert len({b.tobytes() for b in backgrounds}) == 30 and backgrounds.std(axis=0).mean() > 20


def test_the_masks_find_a_hand_in_nearly_every_real_plain_wall_photo(real_photos):
    part = real_splits.split_sld(real_photos)["validation"]
    shares = np.array([composite_hands.hand_mask(photo).mean() for photo in real_splits.read_part(part)])
    found = (shares >= composite_hands.MIN_HAND_SHARE) & (shares < 0.7)
    assert found.mean() >= 0.95, f"a hand of plausible size in only {found.mean():.0%} of {len(shares)} photos"


# --- The pretrained model's training data ----------------------------------------------------


def test_without_real_photos_the_data_is_the_kit_set_its_drawn_sideways_2s_and_backgrounds_of_no_hand(tiny_signs, monkeypatch):
    monkeypatch.setenv(resnets_utils.DATASETS_ENV, str(tiny_signs))
    images, labels, counts = train_pretrained.training_data(None, None)
    assert counts == {"kit SIGNS training set": 12, "sideways 2s the kit draws": 2, "backgrounds with no hand": 1}
    assert images.shape == (15, 64, 64, 3)
    assert labels.tolist() == (np.arange(12) % 6).tolist() + [2, 2, train_pretrained.NO_HAND]


def test_no_hand_images_are_taught_that_every_digit_is_as_likely():
    images = np.zeros((4, 64, 64, 3), np.uint8)
    labels = np.array([2, train_pretrained.NO_HAND, 5, train_pretrained.NO_HAND])
    batches = resnets_utils.training_pipeline(images, labels, batch_size=4, augment=False)
    _, targets = next(iter(train_pretrained.with_no_hand_targets(batches)))
    targets = np.asarray(targets)
    assert np.allclose(targets.sum(axis=1), 1.0)
    assert sorted(map(tuple, targets.round(4))) == sorted([
        (0, 0, 1, 0, 0, 0), (0, 0, 0, 0, 0, 1), (round(1 / 6, 4),) * 6, (round(1 / 6, 4),) * 6])


def test_the_training_data_holds_no_validation_or_test_photo(real_photos, wild_photos):
    wild = wild_photos
    images, _, counts = train_pretrained.training_data(real_photos, wild)
    trained = {image.tobytes() for image in images}
    for name, part in [*(("SLD " + n, p) for n, p in real_splits.split_sld(real_photos).items()),
                       *(("wild " + n, p) for n, p in real_splits.split_wild(wild).items())]:
        if name.endswith("train"):
            continue
        leaked = sum(photo.tobytes() in trained for photo in real_splits.read_part(part))
        assert leaked == 0, f"{leaked} photos of the {name} part are in the training data"
    assert counts["SLD hands on other backgrounds"] >= 1.9 * counts["SLD training part"]
