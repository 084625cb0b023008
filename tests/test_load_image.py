"""`load_image` takes any photo a student might take, and names the file when it cannot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import resnets_utils
from resnets_utils import PhotoError, load_image


def save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


@pytest.mark.parametrize(
    "name, image",
    [
        ("rgb.jpg", Image.new("RGB", (640, 480), (200, 150, 100))),
        ("gray.png", Image.new("L", (50, 80), 128)),
        ("alpha.png", Image.new("RGBA", (64, 64), (255, 0, 0, 128))),
        ("palette.png", Image.new("P", (30, 30), 3)),
        ("photo.webp", Image.new("RGB", (300, 200), (10, 200, 30))),
        ("sixteen.png", Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16))),
    ],
)
def test_load_image_returns_a_preprocessed_batch_for_any_common_photo(tmp_path, name, image):
    batch = load_image(save(tmp_path, name, image))
    assert batch.shape == (1, 64, 64, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_load_image_uses_the_same_preprocessing_as_training(tmp_path):
    path = save(tmp_path, "flat.png", Image.new("RGB", (64, 64), (51, 102, 255)))
    np.testing.assert_allclose(load_image(path)[0, 0, 0], resnets_utils.preprocess(np.array([51, 102, 255], np.uint8)))


def test_load_image_puts_transparent_pixels_on_white(tmp_path):
    path = save(tmp_path, "clear.png", Image.new("RGBA", (10, 10), (0, 0, 0, 0)))
    np.testing.assert_allclose(load_image(path), 1.0)


def test_load_image_spreads_16_bit_values_to_8_bit(tmp_path):
    path = save(tmp_path, "deep.png", Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)))
    np.testing.assert_allclose(load_image(path), 1.0)


def test_load_image_centre_crops_instead_of_squashing(tmp_path):
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # a white square in the middle of a black band
    batch = load_image(save(tmp_path, "wide.png", Image.fromarray(wide)))
    assert batch.min() > 0.9, "the centre square should fill the whole picture"


def test_load_image_turns_the_photo_upright_from_exif(tmp_path):
    tall = np.zeros((100, 50, 3), np.uint8)
    tall[:50] = 255  # top half white as stored
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: rotated 180 degrees
    batch = load_image(save(tmp_path, "rotated.jpg", Image.fromarray(tall), exif=exif, quality=95))
    assert batch[0, :20].mean() < 0.2 and batch[0, -20:].mean() > 0.8


def test_load_image_names_a_missing_file(tmp_path):
    with pytest.raises(PhotoError, match="Photo not found: .*nothing.jpg"):
        load_image(tmp_path / "nothing.jpg")


def test_load_image_names_an_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PhotoError, match=r"empty\.jpg is an empty file"):
        load_image(tmp_path / "empty.jpg")


def test_load_image_names_a_file_that_is_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(PhotoError, match=r"notes\.jpg is not an image file"):
        load_image(tmp_path / "notes.jpg")


def test_load_image_names_a_truncated_photo(tmp_path):
    path = save(tmp_path, "cut.jpg", Image.effect_noise((400, 400), 50).convert("RGB"), quality=90)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(PhotoError, match=r"cut\.jpg is damaged or truncated"):
        load_image(path)


def test_load_image_refuses_a_decompression_bomb(tmp_path):
    path = save(tmp_path, "bomb.png", Image.new("1", (12_000, 12_000)))
    with pytest.raises(PhotoError, match=r"bomb\.png is 12000x12000 pixels"):
        load_image(path)


def test_an_uploaded_photo_is_read_exactly_as_the_same_file_on_disk(tmp_path):
    tall = np.zeros((90, 40, 3), np.uint8)
    tall[:30] = (250, 200, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: taken sideways, as phones store photos
    path = save(tmp_path, "phone.jpg", Image.fromarray(tall), exif=exif, quality=95)
    uploaded = resnets_utils.read_uploaded_photo(memoryview(path.read_bytes()), "phone.jpg")  # what FileUpload gives
    np.testing.assert_array_equal(uploaded, resnets_utils.read_photo(path))


def test_an_uploaded_file_that_is_not_a_photo_is_named():
    with pytest.raises(PhotoError, match=r"notes\.txt is not an image file"):
        resnets_utils.read_uploaded_photo(b"hello", "notes.txt")


def test_an_empty_upload_is_named():
    with pytest.raises(PhotoError, match=r"blank\.jpg is an empty file"):
        resnets_utils.read_uploaded_photo(b"", "blank.jpg")
