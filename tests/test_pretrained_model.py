"""The shipped pretrained model: the notebooks' ResNet50, under 50 MB; it reads hands, knows when it is unsure,
and says "not sure" of pictures with no hand.

The figures come from `tools.model.evaluate` on the held-out parts of the real photos
(`tools.data.real_splits`); the model card (docs/model-card.md) reports the same figures.
"""

from __future__ import annotations

import pytest

import resnets_utils
from tools.data import real_splits
from tools.model import evaluate

KIT, SLD, WILD = "kit SIGNS test set", "held-out SLD fifth", "held-out wild sessions"
# Mean per-class accuracy, as predict_digit reads a photo (with its mirror image). Kit and SLD: the goals,
# 99% and 98% (today 99.2%, one 3 read as a 4 with a margin of 0.59, the other 119 right by at least 0.45, and 100.0%).
# Wild, which misses its 95% goal (the model card says by how much and why): a floor a little under today's 53.6%,
# so that no retraining makes it worse unnoticed.
MEAN_CLASS_ACCURACY_AT_LEAST = {KIT: 0.99, SLD: 0.98, WILD: 0.50}
CALIBRATION_ERROR_AT_MOST = {KIT: 0.05, SLD: 0.05, WILD: 0.15}  # today 0.019, 0.011, 0.065
ANSWERS_RIGHT_ON_WILD_TEST_AT_LEAST = 0.85  # chosen for 95% on the validation sessions; 98.3% today
NO_HAND_NOT_SURE_AT_LEAST = 0.7  # "mostly"; today 90% of the drawn rooms, 95% of the cats, 100% of the walls


@pytest.fixture(scope="module")
def evaluation() -> evaluate.Evaluation:
    wild = real_splits.WILD_PHOTOS if (real_splits.WILD_PHOTOS / "index.csv").is_file() else None
    sld = real_splits.SLD_PHOTOS if real_splits.SLD_PHOTOS.is_dir() else None
    return evaluate.evaluate(resnets_utils.PRETRAINED, wild, sld)


def figures_of(evaluation: evaluate.Evaluation, source: str) -> evaluate.Figures:
    for name, figures in evaluation.sources.items():
        if name.startswith(source):
            return figures
    pytest.skip(f"{source} not measured: {' '.join(evaluation.notes)} (../shared is outside the repo)")


def test_the_model_files_fit_in_the_repository():
    for suffix in (".json", ".npz"):
        assert resnets_utils.PRETRAINED.with_suffix(suffix).stat().st_size < 50 * 2**20


def test_the_model_is_the_notebooks_resnet50_in_float32():
    model = resnets_utils.load_pretrained()
    resnets_utils.check_resnet50(model, classes=6)
    assert {weight.dtype for weight in model.weights} == {"float32"}


@pytest.mark.parametrize("source", [KIT, SLD, WILD])
def test_the_model_reads_each_held_out_source_at_least_as_well_as_promised(evaluation, source):
    figures = figures_of(evaluation, source)
    assert figures.mean_class_accuracy >= MEAN_CLASS_ACCURACY_AT_LEAST[source], (
        f"{source}: mean per-class accuracy {figures.mean_class_accuracy:.1%}\n{figures.confusion}")


@pytest.mark.parametrize("source", [KIT, SLD, WILD])
def test_the_models_confidence_is_close_to_its_chance_of_being_right(evaluation, source):
    figures = figures_of(evaluation, source)
    assert figures.calibration_error <= CALIBRATION_ERROR_AT_MOST[source], f"{source}: ECE {figures.calibration_error:.3f}"


def test_the_model_reads_drawn_5s_with_the_fingers_together_as_5s(evaluation):
    # 2s held sideways, the other pose the data set leaves out, the shipped model does not read: the benchmarks page shows how well
    figures = evaluation.sources[evaluate.VARIANT_SOURCES["fingers together"]]
    assert figures.accuracy >= 0.95, f"{figures.accuracy:.1%}: {figures.confusion[5].tolist()}"


def test_the_shipped_threshold_is_the_one_chosen_on_the_wild_validation_sessions(evaluation):
    if evaluation.validation is None:
        pytest.skip("the wild validation photos are absent (../shared is outside the repo)")
    # Within a margin: another CPU computes slightly different probabilities, so the chosen one may move a little.
    assert evaluation.threshold == pytest.approx(resnets_utils.not_sure_below(), abs=0.02)


def test_the_answers_it_gives_on_the_wild_test_sessions_are_mostly_right(evaluation):
    figures = figures_of(evaluation, WILD)
    assert figures.answered_accuracy >= ANSWERS_RIGHT_ON_WILD_TEST_AT_LEAST, (
        f"answers {figures.coverage:.0%} of the photos, {figures.answered_accuracy:.1%} right")


def test_pictures_with_no_hand_mostly_come_out_not_sure(evaluation):
    for kind, share in evaluation.not_sure_of_no_hand.items():
        assert share >= NO_HAND_NOT_SURE_AT_LEAST, f"{kind}: only {share:.0%} come out \"not sure\""
