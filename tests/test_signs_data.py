"""The kit's SIGNS data regenerates identically, and the importer builds SIGNS files from photos."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

import resnets_utils
from tools.data import signs_generator
from tools.data.import_photos import PhotoFolderError, import_photos
from tools.data.make_signs import make_signs


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_make_signs_regenerates_the_shipped_files_byte_for_byte(tmp_path):
    make_signs(tmp_path, progress=False)
    for name in ("train_signs.h5", "test_signs.h5"):
        assert sha256(tmp_path / name) == sha256(resnets_utils.datasets_dir() / name), f"{name} differs"


def test_datasets_readme_states_the_checksums_of_the_shipped_files():
    readme = (resnets_utils.datasets_dir() / "README.md").read_text()
    for name in ("train_signs.h5", "test_signs.h5"):
        assert sha256(resnets_utils.datasets_dir() / name) in readme, f"README has a stale sha256 for {name}"


def test_generator_draws_each_digit_deterministically_from_the_seed():
    first = signs_generator.make_split(1, seed=7)
    second = signs_generator.make_split(1, seed=7)
    assert np.array_equal(first[0], second[0]) and first[1].tolist() == second[1].tolist()
    assert sorted(first[1].tolist()) == list(range(6))


def test_generated_images_show_a_skin_coloured_wrist_at_the_bottom_on_a_neutral_wall():
    images, _ = signs_generator.make_split(5, seed=3)
    warmth = images[..., 0].astype(float) - images[..., 2]  # red minus blue: high on skin, near 0 on a wall
    top_corners = np.concatenate([warmth[:, :6, :6], warmth[:, :6, -6:]], axis=1).mean(axis=(1, 2))
    bottom_edge = np.percentile(warmth[:, -3:, :], 90, axis=(1, 2))
    # Walls get a slight random tint (std 0.02 per channel, so about 7 in red minus blue): neutral means
    # most near 0 and none as warm or as cold as skin is warm.
    assert np.median(np.abs(top_corners)) < 5 and (np.abs(top_corners) < 15).all(), "the wall should be neutral grey or white"
    assert (bottom_edge > top_corners + 15).all(), "the wrist should cross the bottom edge"


def drawn_pose(digit: int, seed: int) -> str:
    """Which fingers the generator raised for `digit`: "O" for the ring of fingertips, else the raised ones."""
    parts = signs_generator._hand_parts(digit, np.random.default_rng(seed))
    fingers, thumb = [points for _, points, _ in parts[2:-1]], parts[-1][1]
    if any(len(points) > 4 for points in fingers):  # the "O": arcs, not straight finger joints
        return "O"
    raised = [name for name, points in zip(signs_generator.FINGERS, fingers) if len(points) == 4]
    return " + ".join((["thumb"] if len(thumb) == 4 else []) + raised) or "fist"


def test_generator_draws_both_ways_people_show_0_and_3_and_one_way_the_other_digits():
    poses = {digit: [drawn_pose(digit, seed) for seed in range(300)] for digit in range(6)}
    assert set(poses[0]) == {"O", "fist"} and 0.3 < poses[0].count("fist") / 300 < 0.5
    assert set(poses[3]) == {"thumb + index + middle", "index + middle + ring"}
    assert 0.3 < poses[3].count("index + middle + ring") / 300 < 0.5
    assert set(poses[1]) == {"index"} and set(poses[2]) == {"index + middle"}
    assert set(poses[4]) == {"index + middle + ring + pinky"} and set(poses[5]) == {"thumb + index + middle + ring + pinky"}


def finger_fan(digit: int, seed: int, together: bool) -> float:
    """Degrees between the directions of the outermost raised fingers' first joints."""
    parts = signs_generator._hand_parts(digit, np.random.default_rng(seed), together=together)
    raised = [points for _, points, _ in parts[2:-1] if len(points) == 4]
    angles = [np.degrees(np.arctan2(*(points[1] - points[0]))) for points in raised]
    return max(angles) - min(angles)


def test_generator_draws_the_poses_signs_shows_beyond_the_data_set_on_request():
    variants = signs_generator.make_variants(6, seed=5)
    assert {variant: labels.tolist() for variant, (_, labels) in variants.items()} == {"sideways": [2] * 6,
                                                                                     "fingers together": [5] * 6}
    together = [finger_fan(5, seed, together=True) for seed in range(50)]
    spread = [finger_fan(5, seed, together=False) for seed in range(50)]
    assert max(together) < 10 < np.median(spread) - 10, "fingers together: the raised fingers nearly parallel"
    images, _ = variants["sideways"]
    warmth = images[..., 0].astype(float) - images[..., 2]  # skin, as above
    sides = np.maximum(np.percentile(warmth[:, :, :3], 90, axis=(1, 2)), np.percentile(warmth[:, :, -3:], 90, axis=(1, 2)))
    top_corners = np.concatenate([warmth[:, :6, :6], warmth[:, :6, -6:]], axis=1).mean(axis=(1, 2))
    assert (sides > top_corners + 15).all(), "held sideways, the wrist crosses a side edge"
    assert np.array_equal(signs_generator.make_variants(6, seed=5)["sideways"][0], images), "drawn from the seed"
    assert np.array_equal(signs_generator.make_variants(6, seed=5, poses=("sideways",))["sideways"][0], images), \
        "the sideways 2s alone (what training draws) are the same images"
    with pytest.raises(ValueError, match="no variant 'upside down'"):
        signs_generator.render_sign(2, np.random.default_rng(0), variant="upside down")


def photo_folder(root, counts):
    rng = np.random.default_rng(0)
    for label, n in counts.items():
        (root / str(label)).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(root / str(label) / f"{i}.jpg")
    return root


def test_importer_writes_signs_files_with_a_stratified_split(tmp_path):
    src = photo_folder(tmp_path / "photos", {0: 10, 1: 10, 3: 5})
    import_photos(src, tmp_path / "out", test_fraction=0.2, progress=False)
    x_train, y_train, x_test, y_test, classes = resnets_utils.load_dataset(tmp_path / "out")
    assert classes.tolist() == [0, 1, 3]
    assert np.bincount(y_test.ravel()).tolist() == [2, 2, 0, 1]
    assert x_train.shape == (20, 64, 64, 3) and x_test.shape == (5, 64, 64, 3)


def test_importer_split_is_seeded(tmp_path):
    src = photo_folder(tmp_path / "photos", {0: 6, 1: 6})
    import_photos(src, tmp_path / "a", seed=4, progress=False)
    import_photos(src, tmp_path / "b", seed=4, progress=False)
    assert sha256(tmp_path / "a" / "test_signs.h5") == sha256(tmp_path / "b" / "test_signs.h5")


def test_importer_lists_what_it_skipped_and_why(tmp_path):
    src = photo_folder(tmp_path / "photos", {2: 3})
    (src / "thumbs").mkdir()
    (src / "2" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (src / "2" / "notes.txt").write_text("hi")
    skipped = dict((path.name, reason) for path, reason in import_photos(src, tmp_path / "out", progress=False))
    assert "is not a digit label" in skipped["thumbs"]
    assert "not an image file" in skipped["broken.jpg"]
    assert "not a photo" in skipped["notes.txt"]


def test_importer_refuses_a_folder_without_photos_and_says_why(tmp_path):
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    with pytest.raises(PhotoFolderError, match=r"No readable photos in .*photos.*\n  skipped .*cats: folder name 'cats'"):
        import_photos(tmp_path / "photos", tmp_path / "out", progress=False)


def test_importer_refuses_a_path_that_is_not_a_folder(tmp_path):
    with pytest.raises(PhotoFolderError, match="is not a folder"):
        import_photos(tmp_path / "nope", tmp_path / "out", progress=False)


def test_importer_reads_the_real_photo_mirror(real_photos, tmp_path):
    skipped = import_photos(real_photos, tmp_path, progress=False)
    x_train, y_train, x_test, y_test, classes = resnets_utils.load_dataset(tmp_path)
    assert classes.tolist() == list(range(6))
    assert len(x_train) + len(x_test) + len([s for s in skipped if s[0].suffix.lower() == ".jpg"]) >= 1200
    assert set(np.unique(y_test)) == set(range(6))
