"""The shipped pretrained model: the notebooks' ResNet50, under 50 MB, and it reads hands."""

from __future__ import annotations

import pytest

import resnets_utils
from tools.model.train_pretrained import accuracies, evaluation_sets

GOALS = {"kit SIGNS test set": 0.99, "held-out real photos": 0.97}


@pytest.fixture(scope="module")
def model():
    return resnets_utils.load_pretrained()


def test_the_model_files_fit_in_the_repository():
    for suffix in (".json", ".npz"):
        assert resnets_utils.PRETRAINED.with_suffix(suffix).stat().st_size < 50 * 2**20


def test_the_model_is_the_notebooks_resnet50_in_float32(model):
    resnets_utils.check_resnet50(model, classes=6)
    assert {weight.dtype for weight in model.weights} == {"float32"}


def test_the_model_reads_at_least_99_percent_of_the_kit_test_set(model):
    accuracy = accuracies(model, evaluation_sets(None))["kit SIGNS test set"]
    assert accuracy >= GOALS["kit SIGNS test set"], f"{accuracy:.1%}"


def test_the_model_reads_at_least_97_percent_of_the_held_out_real_photos(model, real_photos):
    accuracy = accuracies(model, evaluation_sets(real_photos))["held-out real photos"]
    assert accuracy >= GOALS["held-out real photos"], f"{accuracy:.1%}"
