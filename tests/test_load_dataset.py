"""`load_dataset` returns SIGNS as the original course did, or says clearly what is wrong."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import resnets_utils
from resnets_utils import DatasetError, load_dataset


def test_load_dataset_returns_the_original_shapes_and_types():
    x_train, y_train, x_test, y_test, classes = load_dataset()
    assert x_train.dtype == np.uint8 and x_train.shape == (1080, 64, 64, 3)
    assert y_train.shape == (1, 1080) and x_test.shape == (120, 64, 64, 3) and y_test.shape == (1, 120)
    assert classes.tolist() == [0, 1, 2, 3, 4, 5]


def test_load_dataset_has_180_train_and_20_test_images_per_digit():
    _, y_train, _, y_test, _ = load_dataset()
    assert np.bincount(y_train.ravel()).tolist() == [180] * 6
    assert np.bincount(y_test.ravel()).tolist() == [20] * 6


def test_shipped_files_have_exactly_the_original_schema():
    folder = resnets_utils.datasets_dir()
    for split, m in (("train", 1080), ("test", 120)):
        with h5py.File(folder / f"{split}_signs.h5") as f:
            assert sorted(f.keys()) == ["list_classes", f"{split}_set_x", f"{split}_set_y"]
            assert (f[f"{split}_set_x"].dtype, f[f"{split}_set_x"].shape) == (np.uint8, (m, 64, 64, 3))
            assert (f[f"{split}_set_y"].dtype, f[f"{split}_set_y"].shape) == (np.int64, (m,))
            assert (f["list_classes"].dtype, f["list_classes"][:].tolist()) == (np.int64, list(range(6)))


def test_load_dataset_reads_from_an_argument_or_the_environment_variable(tiny_signs, monkeypatch):
    assert load_dataset(tiny_signs)[0].shape == (12, 64, 64, 3)
    monkeypatch.setenv("RESNETS_DATASETS", str(tiny_signs))
    assert load_dataset()[2].shape == (6, 64, 64, 3)


def test_a_relative_environment_variable_is_read_from_the_kits_folder_whatever_the_current_one(tiny_signs, tmp_path, monkeypatch):
    """Jupyter starts kernels in notebooks/: `RESNETS_DATASETS=build/real-signs make lab` must still find the files."""
    monkeypatch.setenv("RESNETS_DATASETS", os.path.relpath(tiny_signs, resnets_utils.KIT_DIR))
    monkeypatch.chdir(tmp_path)
    assert resnets_utils.datasets_dir().resolve() == tiny_signs.resolve()
    assert resnets_utils.load_dataset()[0].shape[0] > 0


def test_load_dataset_names_the_missing_file_and_how_to_regenerate(tmp_path):
    with pytest.raises(DatasetError, match=r"train_signs\.h5.*make data"):
        load_dataset(tmp_path)


def test_load_dataset_names_a_corrupt_file(tiny_signs):
    (tiny_signs / "test_signs.h5").write_bytes(b"this is not HDF5")
    with pytest.raises(DatasetError, match=r"test_signs\.h5 cannot be read"):
        load_dataset(tiny_signs)


def test_load_dataset_names_a_truncated_file(tiny_signs):
    path = tiny_signs / "train_signs.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"train_signs\.h5"):
        load_dataset(tiny_signs)


def test_load_dataset_names_missing_keys(tiny_signs):
    with h5py.File(tiny_signs / "train_signs.h5", "w") as f:
        f["images"] = np.zeros((2, 64, 64, 3), np.uint8)
    with pytest.raises(DatasetError, match=r"no train_set_x, train_set_y, list_classes \(it has images\)"):
        load_dataset(tiny_signs)


def test_load_dataset_rejects_images_of_the_wrong_shape(tiny_signs):
    with h5py.File(tiny_signs / "test_signs.h5", "r+") as f:
        del f["test_set_x"]
        f["test_set_x"] = np.zeros((6, 32, 32, 3), np.uint8)
    with pytest.raises(DatasetError, match=r"test_signs\.h5: test_set_x must be uint8 images of shape \(m, 64, 64, 3\)"):
        load_dataset(tiny_signs)


def test_load_dataset_rejects_labels_outside_list_classes(tiny_signs):
    with h5py.File(tiny_signs / "test_signs.h5", "r+") as f:
        f["test_set_y"][0] = 9
    with pytest.raises(DatasetError, match=r"labels that are not in list_classes"):
        load_dataset(tiny_signs)


def test_convert_to_one_hot_matches_the_original_layout():
    one_hot = resnets_utils.convert_to_one_hot(np.array([[0, 2, 5]]), 6)
    assert one_hot.shape == (6, 3)
    assert one_hot.T.argmax(axis=1).tolist() == [0, 2, 5] and one_hot.sum() == 3


def test_preprocess_scales_pixels_to_float32_between_0_and_1():
    out = resnets_utils.preprocess(np.array([[0, 51, 255]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]])
