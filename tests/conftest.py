"""Shared fixtures: small SIGNS files and photos made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.data.measure_realism import DEFAULT_REAL as REAL_PHOTOS
from tools.data.real_splits import WILD_PHOTOS
from tools.data.signs_files import write_split


@pytest.fixture
def tiny_signs(tmp_path: Path) -> Path:
    """A folder with valid SIGNS files of 12 train and 6 test images."""
    rng = np.random.default_rng(0)
    write_split(tmp_path / "train_signs.h5", "train", rng.integers(0, 256, (12, 64, 64, 3)), np.arange(12) % 6)
    write_split(tmp_path / "test_signs.h5", "test", rng.integers(0, 256, (6, 64, 64, 3)), np.arange(6))
    return tmp_path


@pytest.fixture
def real_photos() -> Path:
    """The real hand photos beside the repo; tests that need them skip when they are absent."""
    if not REAL_PHOTOS.is_dir():
        pytest.skip(f"real photos not present at {REAL_PHOTOS} (../shared is outside the repo)")
    return REAL_PHOTOS


@pytest.fixture
def wild_photos() -> Path:
    """The photos of hands in everyday rooms beside the repo; tests that need them skip when they are absent."""
    if not (WILD_PHOTOS / "index.csv").is_file():
        pytest.skip(f"wild photos not present at {WILD_PHOTOS} (../shared is outside the repo)")
    return WILD_PHOTOS
