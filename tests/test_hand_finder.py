"""A whole photo, as people take it: the kit finds the hand, then reads it (`resnets_utils.predict_photo`).

The finder is the pretrained ResNet50's first four stages and a small trained head
(`tools/model/train_finder.py`). A picture without a hand gets "no hand found", never a digit;
a photo that cannot be read gets a PhotoError naming it. Figures on the wild photos' held-out
sessions are in the model card (`make compare-tracker`); here they are floors, with a margin.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import resnets_utils
from resnets_utils import Box
from tools.course import notebook_source
from tools.data import real_splits
from tools.model import compare_tracker, train_finder

IMAGES = resnets_utils.KIT_DIR / "images"
# Floors a little under the shipped finder's validation figures (models/hand_finder.json: 31%, 48% and 76%), so that
# no retraining makes it worse unnoticed; far from what a finder should do (docs/model-card.md says so).
FOUND_AT_LEAST = {"tight crop": 0.25, "half-frame crop": 0.4, "whole photo": 0.7}
FOUND_IN_TEST_FRAMES_AT_LEAST = 0.4  # every hand of the wild test sessions' whole photos, at IoU 0.5: 48% today


@pytest.fixture(scope="module")
def model():
    return resnets_utils.load_pretrained()


@pytest.fixture(scope="module")
def finder(model):
    return resnets_utils.load_hand_finder(reader=model)


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_the_finder_and_the_reader_fit_in_the_repository_together():
    files = [resnets_utils.PRETRAINED.with_suffix(s) for s in (".json", ".npz")] + [resnets_utils.FINDER.with_suffix(s) for s in (".json", ".npz")]
    assert sum(file.stat().st_size for file in files) < 50 * 1024**2


def test_the_finder_reads_the_readers_backbone_on_pictures_of_any_size(model, finder):
    cells = finder.backbone.predict(np.zeros((1, 192, 256, 3), np.float32), verbose=0)
    assert cells.shape == (1, 12, 16, 1024)  # stage 4: one cell per 16x16 pixels
    small = finder.backbone.predict(np.full((1, 64, 64, 3), 0.5, np.float32), verbose=0)
    stage4_of_the_reader = [layer for layer in model.layers if tuple(layer.output.shape[1:3]) == (4, 4)][-1]
    import keras
    expected = keras.Model(model.input, stage4_of_the_reader.output).predict(np.full((1, 64, 64, 3), 0.5, np.float32), verbose=0)
    assert np.allclose(small, expected, atol=1e-4), "the finder's backbone is not the reader's first four stages"


def test_the_drawn_whole_photo_is_found_and_read_as_its_digit(model, finder):
    reading = resnets_utils.predict_photo(model, IMAGES / "sample_whole_photo.jpg", resnets_utils.not_sure_below(), finder=finder)
    assert reading.hands == 1 and reading.box is not None
    assert reading.digit == 2, f"read {reading}"
    assert reading.crop.shape == (64, 64, 3) and reading.crop.dtype == np.uint8


@pytest.mark.parametrize("picture", ["a black frame", "a white screenshot with text", "the cat"])
def test_a_picture_without_a_hand_is_never_given_a_digit(model, finder, picture):
    rng = np.random.default_rng(0)
    if picture == "a black frame":
        pixels = np.zeros((480, 640, 3), np.uint8)
    elif picture == "the cat":
        pixels = np.asarray(Image.open(IMAGES / "sample_no_hand_cat.jpg").convert("RGB"))
    else:
        from PIL import ImageDraw
        screen = Image.new("RGB", (1280, 800), "white")
        draw = ImageDraw.Draw(screen)
        for row in range(40):
            draw.text((20 + 40 * (row % 3), 20 * row), "def read(photo): return model.predict(photo)  # " + str(rng.integers(1e6)), fill="black")
        pixels = np.asarray(screen)
    reading = resnets_utils.predict_photo(model, jpeg(pixels), resnets_utils.not_sure_below(), name=picture, finder=finder)
    assert reading.digit is None, f"{picture}: {reading}"


def test_no_hand_found_is_its_own_answer():
    reading = resnets_utils.Reading(None, 0.0, np.zeros(6), box=None, hands=0)
    assert str(reading) == "no hand found"
    two = resnets_utils.Reading(3, 0.97, np.eye(6)[3] * 0.97, box=Box(0, 0, 10, 10), hands=2)
    assert str(two) == "a 3 (97% sure), the surest of 2 hands found"


@pytest.mark.parametrize("content, message", [
    (b"", "upload.jpg is an empty file"),
    (b"not a photo", "upload.jpg is not an image file"),
    (jpeg(np.zeros((20, 30, 3), np.uint8)), "upload.jpg is 30x20 pixels: too small to show a hand"),
])
def test_a_photo_that_cannot_be_read_gets_an_error_naming_it(model, finder, content, message):
    with pytest.raises(resnets_utils.PhotoError, match=message):
        resnets_utils.predict_photo(model, content, name="upload.jpg", finder=finder)


def test_a_missing_path_is_named(model, finder, tmp_path):
    with pytest.raises(resnets_utils.PhotoError, match="Photo not found: .*my_hand.jpg"):
        resnets_utils.predict_photo(model, tmp_path / "my_hand.jpg", finder=finder)


def test_the_box_is_in_the_photos_own_pixels_however_large_it_is(model, finder):
    photo = Image.open(IMAGES / "sample_whole_photo.jpg")
    small = resnets_utils.predict_photo(model, IMAGES / "sample_whole_photo.jpg", finder=finder).box
    large = resnets_utils.predict_photo(model, jpeg(np.asarray(photo.resize((photo.width * 5, photo.height * 5)))), finder=finder).box
    assert np.allclose(np.array(large) / 5, np.array(small), atol=8), (small, large)


def test_a_missing_finder_file_is_named(tmp_path):
    with pytest.raises(resnets_utils.ModelFileError, match="hand_finder.json"):
        resnets_utils.load_hand_finder(tmp_path / "hand_finder")


def test_the_readers_crop_is_the_one_the_shared_crops_were_cut_by():
    assert resnets_utils.hand_crop_box(Box(557, 396, 714, 594), 800, 600) == Box(522, 372, 749, 600)
    assert resnets_utils.hand_crop_box(Box(163, 1, 569, 563), 800, 600) == Box(66, 0, 666, 600)


def test_the_finder_is_judged_with_notebook_5s_intersection_over_union():
    iou = notebook_source.intersection_over_union()
    assert iou(Box(0, 0, 4, 4), Box(2, 2, 6, 6)) == pytest.approx(4 / 28)


def test_a_hand_that_peaks_in_two_cells_is_found_once():
    output = np.zeros((16, 16, 5), np.float32)
    output[..., 0] = -10.0
    output[..., 3:5] = np.log(0.5)  # boxes of 128x128 pixels around each cell's centre
    output[5, 5, 0], output[5, 6, 0] = 3.0, 2.0  # neighbours: the weaker is not a peak
    output[5, 8, 0] = 1.0  # two cells away, inside the first hand's box: the same hand
    output[12, 2, 0] = 2.5  # another hand
    found = resnets_utils.boxes_from_map(output, threshold=0.5)
    assert len(found) == 2 and found[0].score > found[1].score


def test_the_training_targets_put_one_centre_cell_per_hand():
    target = train_finder.targets([Box(0, 0, 100, 100), Box(150, 150, 250, 230)], scale=1.0, offset=(0, 0))
    assert target[..., 5].sum() == 2 and target[3, 3, 5] == 1 and target[11, 12, 5] == 1
    assert target[3, 3, 0] == 1 and 0 < target[3, 4, 0] < 1
    assert np.allclose(target[3, 3, 3:5], np.log(100 / 256))


def test_the_reader_reads_a_box_given_to_it_as_it_reads_the_box_it_found(model, finder, tmp_path):
    """compare_tracker reads the labelled and the tracker's boxes with predict_photo's own second stage,
    from the same pixels, however large the photo."""
    photo = Image.open(IMAGES / "sample_whole_photo.jpg")
    large = tmp_path / "large.jpg"
    photo.resize((photo.width * 3, photo.height * 3)).save(large, quality=95)  # above predict_photo's working size
    found = resnets_utils.predict_photo(model, large, finder=finder)
    given = compare_tracker.read_box(model, large, found.box, 0.0)
    assert given.digit == found.digit and np.allclose(given.probabilities, found.probabilities, atol=1e-4)
    assert np.allclose(given.box, found.box, atol=1e-6)
    assert compare_tracker.read_box(model, large, None, 0.0).hands == 0


def test_every_framing_carries_the_labelled_box_in_its_own_pixels(tmp_path):
    photo, hand = tmp_path / "frame.jpg", Box(250, 100, 330, 200)
    Image.new("RGB", (400, 300), "grey").save(photo)
    framings = compare_tracker.write_framings({str(photo): [(3, hand)]}, tmp_path)
    for name, scale in compare_tracker.FRAMINGS.items():
        [(file, label, box)] = framings[name]
        crop = Box(0, 0, 400, 300) if scale is None else resnets_utils.hand_crop_box(hand, 400, 300, scale)
        assert label == 3 and Image.open(file).size == (crop.right - crop.left, crop.bottom - crop.top)
        assert box == Box(hand.left - crop.left, hand.top - crop.top, hand.right - crop.left, hand.bottom - crop.top), name


def test_the_comparison_scores_no_answer_as_wrong():
    labels = np.array([0, 0, 1, 1])
    assert compare_tracker.mean_per_class(labels, [0, None, 1, 1]) == pytest.approx(0.75)


def test_a_candidate_is_compared_with_the_shipped_files_photo_by_photo():
    candidate = {"kit_right": {"tight crop": [True, True, False, False], "whole photo": [True, False]}}
    shipped = {"kit_right": {"tight crop": [True, False, True, True], "whole photo": [True, False]}}
    rows = compare_tracker.paired_table(candidate, shipped).splitlines()[2:]
    assert rows == ["| tight crop | 4 | 2 | 3 | 1 | 2 |", "| whole photo | 2 | 1 | 1 | 0 | 0 |"]


def test_a_candidate_model_that_is_missing_is_named_before_any_photo_is_read(tmp_path, monkeypatch):
    missing = tmp_path / "candidate" / "resnet50_signs"
    monkeypatch.setattr("sys.argv", ["compare_tracker", "--no-tracker", "--part", "validation", "--reader", str(missing)])
    with pytest.raises(SystemExit) as stopped:
        compare_tracker.main()
    assert str(stopped.value).startswith("Error: ") and str(missing) in str(stopped.value)


@pytest.fixture(scope="module")
def validation_figures():
    return resnets_utils.FINDER.with_suffix(".json").read_text()


def test_the_shipped_finder_finds_the_hands_of_the_validation_sessions(validation_figures):
    import json
    found = json.loads(validation_figures)["validation"]["found at IoU 0.5"]
    for framing, floor in FOUND_AT_LEAST.items():
        assert found[framing] >= floor, f"{framing}: {found[framing]:.1%} found"


def test_the_finder_finds_the_hands_of_the_wild_test_sessions_as_often_as_it_did(finder, wild_photos):
    frames = train_finder.read_frames(wild_photos)["test"]
    iou = notebook_source.intersection_over_union()
    hits = []
    for path, hands in frames.items():
        image = np.asarray(Image.open(path).convert("RGB"))
        found = resnets_utils.find_hands(finder, image)
        hits += [any(iou(hand.box, box) >= 0.5 for hand in found) for _, box in hands]
    assert np.mean(hits) >= FOUND_IN_TEST_FRAMES_AT_LEAST, f"{np.mean(hits):.1%} of the hands found"
