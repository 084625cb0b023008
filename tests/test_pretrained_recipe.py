"""The pretrained model's recipe trains the notebooks' own ResNet50 on a sound input pipeline."""

from __future__ import annotations

import numpy as np
from PIL import Image

import resnets_utils
from tools import train_pretrained
from tools.notebook_source import reference_resnet50


def test_recipe_builds_resnet50_from_the_source_notebooks():
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    resnets_utils.check_resnet50(model, classes=6)


def test_training_pipeline_yields_preprocessed_augmented_batches_with_one_hot_labels():
    images = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    batches = list(resnets_utils.training_pipeline(images, np.arange(10) % 6, batch_size=4))
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape[1:] == (64, 64, 3) and 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    assert y.shape == (4, 6) and np.allclose(np.sum(y, axis=1), 1.0)


def test_without_augmentation_the_pipeline_feeds_exactly_what_preprocess_makes():
    images = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(12).reshape(1, 12) % 6  # the SIGNS files' row of labels
    x, y = next(iter(resnets_utils.training_pipeline(images, labels, batch_size=12, augment=False)))
    order = [int(np.argmin(np.abs(resnets_utils.preprocess(images) - image).sum(axis=(1, 2, 3)))) for image in np.asarray(x)]
    assert sorted(order) == list(range(12))
    assert np.allclose(np.asarray(x), resnets_utils.preprocess(images)[order])
    assert np.asarray(y).argmax(axis=1).tolist() == [labels[0, i] for i in order]


def test_real_photos_are_split_into_disjoint_training_and_held_out_parts(tmp_path):
    rng = np.random.default_rng(1)
    for label in range(6):
        (tmp_path / str(label)).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(tmp_path / str(label) / f"{i}.png")
    x_train, y_train, x_held, y_held = train_pretrained.load_real_photos(tmp_path)
    assert np.bincount(y_held).tolist() == [1] * 6 and np.bincount(y_train).tolist() == [4] * 6
    trained = {x.tobytes() for x in x_train}
    assert not any(x.tobytes() in trained for x in x_held), "a held-out photo is also in the training part"


def test_load_pretrained_names_the_missing_file(tmp_path):
    import pytest

    with pytest.raises(resnets_utils.ModelFileError, match=r"not found: .*nothing\.json.*make pretrained"):
        resnets_utils.load_pretrained(tmp_path / "nothing")


def test_load_pretrained_names_a_damaged_file(tmp_path):
    import pytest

    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "broken.npz").write_bytes(b"nope")
    with pytest.raises(resnets_utils.ModelFileError, match=r"broken\.json/\.npz cannot be loaded"):
        resnets_utils.load_pretrained(tmp_path / "broken")


def test_exported_model_loads_as_float32_and_predicts_like_the_trained_one(tmp_path):
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    train_pretrained.export(model, tmp_path / "m")
    loaded = resnets_utils.load_pretrained(tmp_path / "m")
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    assert (tmp_path / "m.npz").stat().st_size < 50_000_000
    x = np.random.default_rng(2).uniform(size=(3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-2)


def test_bfloat16_only_on_a_cpu_that_has_it():
    assert train_pretrained.precision_policy(gpus=0, bf16_cpu=True) == "mixed_bfloat16"
    assert train_pretrained.precision_policy(gpus=0, bf16_cpu=False) == "float32"
    assert train_pretrained.precision_policy(gpus=2, bf16_cpu=True) == "float32"


def test_make_pretrained_trains_exports_and_reports_end_to_end(tiny_signs, tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tools.train_pretrained", "--epochs", "1", "--real", "", "--work", str(tmp_path)],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "RESNETS_DATASETS": str(tiny_signs)}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy on the kit SIGNS test set:" in result.stdout
    model = resnets_utils.load_pretrained(tmp_path / "resnet50_signs")
    assert model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 6)
