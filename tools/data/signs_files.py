"""Write SIGNS-format HDF5 files, byte-identical for identical inputs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

CLASSES = np.arange(6, dtype=np.int64)


def write_split(
    path: Path, split: str, images: np.ndarray, labels: np.ndarray, classes: np.ndarray = CLASSES
) -> None:
    """Write `<split>_set_x` (uint8 images), `<split>_set_y` (int64) and `list_classes`, as the original files.

    The file is written beside its target and then moved into place, so an interrupted run
    never leaves a half-written data set behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".h5.partial")
    with h5py.File(partial, "w", track_order=False) as f:
        f.create_dataset(f"{split}_set_x", data=np.asarray(images, dtype=np.uint8), track_times=False)
        f.create_dataset(f"{split}_set_y", data=np.asarray(labels, dtype=np.int64), track_times=False)
        f.create_dataset("list_classes", data=np.asarray(classes, dtype=np.int64), track_times=False)
    partial.replace(path)
