"""`make realism` trains on generated images only and reports its accuracy on each kind of real photo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import resnets_utils
from tools.data.measure_realism import silhouettes


def photo_folder(folder: Path, seed: int) -> Path:
    """DIR/<digit>/*.jpg: two noise photos of each digit."""
    rng = np.random.default_rng(seed)
    for digit in range(6):
        (folder / str(digit)).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(folder / str(digit) / f"{k}.jpg")
    return folder


def realism(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.data.measure_realism", *args],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
    )


def measure(tiny_signs: Path, *args: str) -> subprocess.CompletedProcess:
    """One epoch on the tiny generated set."""
    return realism("--data", str(tiny_signs), "--epochs", "1", *args)


def test_it_reports_the_accuracy_on_plain_wall_and_wild_photos_per_digit(tiny_signs, tmp_path):
    real, wild = photo_folder(tmp_path / "real", 1), photo_folder(tmp_path / "wild", 2)
    result = measure(tiny_signs, "--real", str(real), "--wild", str(wild), "--models", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Trained 2 models on 12 generated images only." in result.stdout
    for source in (f"real photos from {real}", f"wild photos from {wild}"):
        assert f"{source}, 12 photos." in result.stdout
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"Synthetic-to-real accuracy, {source}: "))
        assert "the mean of 2 models" in line
    assert result.stdout.count("  5: ") == 2
    assert result.stdout.count(" of 4   [") == 12, "each digit's row counts both models' readings of its two photos"


def test_without_wild_photos_it_says_so_and_measures_the_rest(tiny_signs, tmp_path):
    real = photo_folder(tmp_path / "real", 1)
    result = measure(tiny_signs, "--real", str(real), "--wild", str(tmp_path / "absent"), "--models", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"note: no wild photos at {tmp_path / 'absent'}" in result.stdout
    assert "Synthetic-to-real accuracy, wild" not in result.stdout


def test_a_folder_without_photos_is_named(tiny_signs, tmp_path):
    (tmp_path / "empty").mkdir()
    result = measure(tiny_signs, "--real", str(tmp_path / "empty"), "--models", "1")
    assert result.returncode != 0 and str(tmp_path / "empty") in result.stderr
    assert "Traceback" not in result.stderr


def test_a_silhouette_keeps_the_hands_shape_and_drops_its_painting():
    wall = np.full((64, 64, 3), 200, dtype=np.uint8)
    wall[20:44, 24:40] = (210, 150, 120)  # a skin-coloured block
    wall[28:36, 28:36] = (120, 80, 60)  # in shadow: still hand
    shape = silhouettes(wall[None])[0]
    assert shape.shape == (64, 64, 3) and shape.dtype == np.uint8
    assert (shape[22:42, 26:38] == 255).all(), "the whole hand, its shadowed part too, is white"
    assert (shape[:12] == 0).all() and (shape[:, :16] == 0).all(), "the wall is black"


def test_with_silhouettes_it_measures_the_plain_wall_photos_shapes_and_says_why_not_the_wild_ones(tiny_signs, tmp_path):
    real, wild = photo_folder(tmp_path / "real", 1), photo_folder(tmp_path / "wild", 2)
    result = measure(tiny_signs, "--real", str(real), "--wild", str(wild), "--models", "1", "--silhouettes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: silhouettes need plain walls; the wild photos are not measured." in result.stdout
    assert "Trained 1 model on 12 generated images (their silhouettes) only." in result.stdout
    assert f"Synthetic-to-real accuracy, silhouettes of the real photos from {real}: " in result.stdout
    assert "wild photos from" not in result.stdout


def test_it_can_train_on_more_freshly_generated_images_than_the_shipped_set(tmp_path):
    real = photo_folder(tmp_path / "real", 1)
    result = realism("--train-per-class", "3", "--epochs", "1", "--models", "1", "--real", str(real), "--wild", str(tmp_path / "absent"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Trained 1 model on 18 generated images only." in result.stdout


def test_it_trains_either_on_a_folder_or_on_fresh_images(tiny_signs):
    result = measure(tiny_signs, "--train-per-class", "3")
    assert result.returncode == 2 and "not allowed with argument --data" in result.stderr


@pytest.mark.parametrize("argument, value", [("--train-per-class", "0"), ("--models", "0"), ("--epochs", "few"), ("--seed", "-1")])
def test_a_bad_number_is_named_before_anything_is_read(argument, value):
    result = realism(argument, value)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument {argument}: expected a whole number of at least" in result.stderr and repr(value) in result.stderr
