"""The real photos' splits, the calibration error, the "not sure" threshold, and the evaluation of the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.data import real_splits
from tools.model import evaluate


def _names(part: real_splits.Part) -> set[str]:
    return {str(path) for path in part.paths}


def _session_of(folder: Path) -> dict[str, str]:
    rows = real_splits._read_wild_index(folder / "index.csv")
    return {str(folder / row["file"]): row["session"] for row in rows}


# --- The splits --------------------------------------------------------------------------


def test_the_wild_split_is_the_same_on_every_call(wild_photos):
    first, second = real_splits.split_wild(wild_photos), real_splits.split_wild(wild_photos)
    for name in ("train", "validation", "test"):
        assert first[name].paths == second[name].paths and (first[name].labels == second[name].labels).all(), name


def test_the_wild_split_shares_no_session_between_parts_and_loses_no_photo(wild_photos):
    session_of = _session_of(wild_photos)
    split = real_splits.split_wild(wild_photos)
    sessions = {name: {session_of[path] for path in _names(part)} for name, part in split.items()}
    assert not sessions["train"] & sessions["validation"], sessions
    assert not sessions["train"] & sessions["test"], sessions
    assert not sessions["validation"] & sessions["test"], sessions
    assert sum(len(part.paths) for part in split.values()) == len(session_of)


def test_every_part_of_both_splits_shows_every_digit(wild_photos, real_photos):
    for source, split in (("wild", real_splits.split_wild(wild_photos)), ("SLD", real_splits.split_sld(real_photos))):
        for name, part in split.items():
            assert set(part.labels.tolist()) == set(real_splits.CLASSES), f"{source} {name}"


def test_the_wild_labels_are_the_folders_the_photos_are_in(wild_photos):
    for part in real_splits.split_wild(wild_photos).values():
        assert [int(path.parent.name) for path in part.paths] == part.labels.tolist()


def test_the_sld_test_part_is_a_seeded_fifth_of_each_digit(real_photos):
    split = real_splits.split_sld(real_photos)
    assert _names(split["test"]) == _names(real_splits.split_sld(real_photos)["test"])
    assert _names(split["test"]) != _names(real_splits.split_sld(real_photos, test_seed=real_splits.SLD_TEST_SEED + 1)["test"])
    for digit in real_splits.CLASSES:
        in_test = np.sum(split["test"].labels == digit)
        in_all = sum(np.sum(part.labels == digit) for part in split.values())
        assert abs(in_test - in_all / 5) <= 1, f"digit {digit}: {in_test} of {in_all} held out"


def test_the_sld_parts_are_disjoint_and_lose_no_photo(real_photos):
    split = real_splits.split_sld(real_photos)
    names = [_names(part) for part in split.values()]
    assert sum(map(len, names)) == len(set().union(*names)) == sum(len(list((real_photos / str(d)).iterdir())) for d in real_splits.CLASSES)


def test_a_wild_index_without_a_session_column_is_named(tmp_path):
    (tmp_path / "index.csv").write_text("file,label\n0/a.jpg,0\n")
    with pytest.raises(real_splits.RealDataError, match=r"index\.csv has no column session"):
        real_splits.split_wild(tmp_path)


def test_a_wild_photo_outside_its_label_folder_is_named_with_its_line(tmp_path):
    (tmp_path / "index.csv").write_text("file,label,session\n0/a.jpg,0,3\n1/b.jpg,2,3\n")
    with pytest.raises(real_splits.RealDataError, match=r"index\.csv, line 3: file '1/b\.jpg' with label '2'"):
        real_splits.split_wild(tmp_path)


def test_a_wild_index_missing_a_held_out_session_is_named(tmp_path):
    (tmp_path / "index.csv").write_text("file,label,session\n0/a.jpg,0,2\n")
    held_out = ", ".join(real_splits.WILD_TEST_SESSIONS + real_splits.WILD_VALIDATION_SESSIONS)
    with pytest.raises(real_splits.RealDataError, match=f"has no session {held_out}, which the split holds out"):
        real_splits.split_wild(tmp_path)


def test_a_wild_test_part_lacking_a_digit_is_named(tmp_path):
    held_out = real_splits.WILD_TEST_SESSIONS + real_splits.WILD_VALIDATION_SESSIONS
    rows = [f"{digit}/{session}_{digit}.jpg,{digit},{session}" for session in held_out for digit in range(5)]
    (tmp_path / "index.csv").write_text("file,label,session\n" + "\n".join(rows) + "\n")
    with pytest.raises(real_splits.RealDataError, match=r"validation sessions .* no photo of digit\(s\) 5"):
        real_splits.split_wild(tmp_path)


def test_a_missing_sld_folder_is_named(tmp_path):
    with pytest.raises(real_splits.RealDataError, match="nowhere is not a folder"):
        real_splits.split_sld(tmp_path / "nowhere")


# --- Figures -------------------------------------------------------------------------------


def test_a_perfectly_calibrated_toy_has_no_calibration_error():
    # 60%-sure answers right 6 times in 10, 90%-sure ones 9 in 10, fully sure ones always.
    confidences = np.repeat([0.6, 0.9, 1.0], [10, 10, 5])
    correct = np.concatenate([np.arange(10) < 6, np.arange(10) < 9, np.ones(5, dtype=bool)])
    assert evaluate.expected_calibration_error(confidences, correct) == pytest.approx(0.0, abs=1e-12)


def test_a_sampled_calibrated_model_has_a_calibration_error_near_zero():
    rng = np.random.default_rng(0)
    confidences = rng.uniform(1 / 6, 1, 200_000)
    assert evaluate.expected_calibration_error(confidences, rng.random(200_000) < confidences) < 0.01


def test_an_overconfident_toy_has_the_gap_between_confidence_and_accuracy():
    # Half the photos 95% sure and 70% right, half 55% sure and 50% right: (0.25 + 0.05) / 2.
    confidences = np.repeat([0.95, 0.55], 10)
    correct = np.concatenate([np.arange(10) < 7, np.arange(10) < 5])
    assert evaluate.expected_calibration_error(confidences, correct) == pytest.approx(0.15)


def test_the_calibration_error_compares_each_bin_on_its_own():
    # 0.50 and 0.55 fall in different 15ths: their gaps add up instead of cancelling.
    confidences, correct = np.array([0.5, 0.55]), np.array([True, False])
    assert evaluate.expected_calibration_error(confidences, correct) == pytest.approx((0.5 + 0.55) / 2)
    assert evaluate.expected_calibration_error(confidences, correct, bins=1) == pytest.approx(0.05 / 2)


def test_the_threshold_is_the_lowest_confidence_whose_answers_reach_the_target():
    confidences = np.array([0.9, 0.6, 0.8, 0.7])
    correct = np.array([True, True, True, False])
    assert evaluate.choose_threshold(confidences, correct, target=0.75, min_answered=1) == pytest.approx(0.6)
    assert evaluate.choose_threshold(confidences, correct, target=0.9, min_answered=1) == pytest.approx(0.8)


def test_photos_of_equal_confidence_are_answered_alike():
    confidences = np.array([0.9, 0.8, 0.8])
    correct = np.array([True, True, False])
    assert evaluate.choose_threshold(confidences, correct, target=0.75, min_answered=1) == pytest.approx(0.9)


def test_no_threshold_when_even_the_surest_answer_is_wrong():
    assert evaluate.choose_threshold(np.array([0.99, 0.5]), np.array([False, True]), target=0.95, min_answered=1) is None


def test_one_lucky_photo_does_not_set_the_threshold():
    confidences = np.array([0.99, 0.9, 0.8, 0.7])
    correct = np.array([True, False, True, True])
    assert evaluate.choose_threshold(confidences, correct, target=0.95, min_answered=1) == pytest.approx(0.99)
    assert evaluate.choose_threshold(confidences, correct, target=0.95, min_answered=2) is None
    assert evaluate.choose_threshold(confidences, correct, target=0.75, min_answered=2) == pytest.approx(0.7)


def test_every_digit_counts_the_same_in_the_mean_per_class_accuracy():
    labels = np.array([0] * 8 + [1] * 2)
    predictions = np.array([0] * 8 + [0, 1])
    confusion = evaluate.confusion_matrix(labels, predictions, classes=2)
    assert confusion.tolist() == [[8, 0], [1, 1]]
    assert evaluate.mean_class_accuracy(confusion) == pytest.approx((1.0 + 0.5) / 2)


def test_coverage_and_accuracy_count_only_the_answers_above_the_threshold():
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    figures = evaluate.measure(probabilities, np.array([0, 0, 1, 1]), threshold=0.75)
    assert (figures.coverage, figures.answered_accuracy) == (0.5, 1.0)
    assert figures.accuracy == 0.5


# --- The shipped model -----------------------------------------------------------------------


def test_the_shipped_model_is_measured_on_a_sample_of_every_source(wild_photos, real_photos):
    evaluation = evaluate.evaluate(evaluate.resnets_utils.PRETRAINED, wild_photos, real_photos, per_digit=2)
    variants = {name: [evaluate.signs_generator.VARIANTS[variant]] for variant, name in evaluate.VARIANT_SOURCES.items()}
    assert len(evaluation.sources) == 3 + len(variants) and set(variants) <= set(evaluation.sources)
    for name, figures in evaluation.sources.items():
        digits = variants.get(name, range(6))
        assert figures.photos == 2 * len(digits) and figures.confusion.sum() == 2 * len(digits), name
        assert np.flatnonzero(figures.confusion.sum(axis=1)).tolist() == list(digits), name
    assert evaluation.sources["kit SIGNS test set"].accuracy >= 11 / 12
    section = evaluate.model_card_section(evaluation)
    assert section.startswith("## Measured on real photos\n")
    assert all(f"| {name} | {evaluation.sources[name].photos} |" in section for name in evaluation.sources)
    assert "(12 of each, drawn from seed" in section, "the no-hand sentence counts the pictures this run showed"


def test_without_the_wild_photos_the_threshold_beside_the_model_is_measured():
    evaluation = evaluate.evaluate(evaluate.resnets_utils.PRETRAINED, None, None, per_digit=2)
    assert evaluation.validation is None
    assert evaluation.threshold == evaluate.resnets_utils.not_sure_below()
    assert "the threshold written beside the model" in evaluate.text_report(evaluation)
    assert not any(np.isnan(share) for share in evaluation.not_sure_of_no_hand.values())


def test_a_model_without_a_threshold_and_no_photos_to_choose_one_on_says_so(tmp_path):
    for suffix in (".json", ".npz"):
        (tmp_path / f"m{suffix}").symlink_to(evaluate.resnets_utils.PRETRAINED.with_suffix(suffix))
    evaluation = evaluate.evaluate(tmp_path / "m", None, None, per_digit=1)
    assert evaluation.threshold is None
    assert "none is written beside the model" in evaluate.text_report(evaluation)


def test_pictures_with_no_hand_are_drawn_the_same_on_every_call_and_of_every_kind(tmp_path):
    first, second = evaluate.no_hand_pictures(None, per_kind=5), evaluate.no_hand_pictures(tmp_path / "absent", per_kind=5)
    assert list(first) == ["rooms the kit draws", "cats the kit draws"] == list(second)
    for kind, pictures in first.items():
        assert pictures.shape == (5, 64, 64, 3) and pictures.dtype == np.uint8, kind
        assert np.array_equal(pictures, second[kind]), kind
        assert len({picture.tobytes() for picture in pictures}) == 5, kind


def test_the_walls_are_corners_of_held_out_sld_photos_of_every_digit(real_photos):
    walls = evaluate.no_hand_pictures(real_photos, per_kind=12)["walls of held-out SLD photos"]
    test = real_splits.split_sld(real_photos)["test"]
    spread = np.unique(np.linspace(0, len(test.labels) - 1, 12).astype(int))
    assert walls.shape == (12, 64, 64, 3) and set(test.labels[spread]) == set(range(6))
    first = evaluate.resnets_utils.read_photo(test.paths[0], size=128)[: evaluate.WALL_SIDE, : evaluate.WALL_SIDE]
    assert np.abs(walls[0].astype(int).mean() - first.astype(int).mean()) < 3  # the same wall, enlarged


# --- The wild photos as SIGNS files (make wild-signs, make real-data) ------------------------------


def test_the_wild_signs_files_hold_the_training_and_the_test_sessions_and_nothing_else(tmp_path):
    from PIL import Image

    import resnets_utils

    sessions = ("2",) + real_splits.WILD_TEST_SESSIONS + real_splits.WILD_VALIDATION_SESSIONS
    rows = []
    for number, session in enumerate(sessions):
        for digit in range(6):  # red tells the session, green the digit, through JPEG's rounding
            (tmp_path / "wild" / str(digit)).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (80, 80), (30 * number, 40 * digit, 128)).save(tmp_path / "wild" / str(digit) / f"{session}.jpg")
            rows.append(f"{digit}/{session}.jpg,{digit},{session}")
    (tmp_path / "wild" / "index.csv").write_text("file,label,session\n" + "\n".join(rows) + "\n")

    counts = real_splits.write_wild_signs(tmp_path / "wild", tmp_path / "signs")
    x_train, y_train, x_test, y_test, classes = resnets_utils.load_dataset(tmp_path / "signs")

    def sessions_and_digits(images):
        return {(sessions[round(x[32, 32, 0] / 30)], round(x[32, 32, 1] / 40)) for x in images.astype(float)}

    assert counts == {"train": 6, "test": 6 * len(real_splits.WILD_TEST_SESSIONS)}
    assert sessions_and_digits(x_train) == {("2", digit) for digit in range(6)}
    assert sessions_and_digits(x_test) == {(session, digit) for session in real_splits.WILD_TEST_SESSIONS for digit in range(6)}
    assert [round(float(x[32, 32, 1]) / 40) for x in x_test] == y_test.ravel().tolist(), "each photo keeps its label"
    assert list(classes) == list(range(6))


def test_make_wild_signs_shows_how_many_photos_of_each_digit_each_session_gives_each_part(tmp_path):
    test_session, validation_session = real_splits.WILD_TEST_SESSIONS[0], real_splits.WILD_VALIDATION_SESSIONS[0]
    photos = [("2", 1)] * 3 + [("2", 4)] + [("pic", 5)] * 2 + [(test_session, 0), (validation_session, 3)]
    (tmp_path / "index.csv").write_text(
        "file,label,session\n" + "".join(f"{digit}/{n}.jpg,{digit},{session}\n" for n, (session, digit) in enumerate(photos)))

    rows = [line.split() for line in real_splits.wild_split_table(tmp_path).splitlines()]
    assert rows[0] == ["part", "session", "0", "1", "2", "3", "4", "5", "all"]
    counts = {(row[0], row[1]): [int(n) for n in row[2:]] for row in rows[1:]}
    assert counts[("train", "2")] == [0, 3, 0, 0, 1, 0, 4]
    assert counts[("train", "pic")] == [0, 0, 0, 0, 0, 2, 2]
    assert counts[("train", "all")] == [0, 3, 0, 0, 1, 2, 6]
    assert counts[("test", test_session)] == counts[("test", "all")] == [1, 0, 0, 0, 0, 0, 1]
    assert counts[("validation", "all")] == [0, 0, 0, 1, 0, 0, 1]
    assert [row[0] for row in rows[1:]] == ["train"] * 3 + ["validation"] * 2 + ["test"] * 2, "each part's sessions, then its total"


def test_the_real_wild_photos_become_signs_files_of_their_split(wild_photos, tmp_path):
    import resnets_utils

    split = real_splits.split_wild(wild_photos)
    real_splits.write_wild_signs(wild_photos, tmp_path)
    x_train, y_train, x_test, y_test, _ = resnets_utils.load_dataset(tmp_path)
    assert x_train.shape == (len(split["train"].labels), 64, 64, 3) and x_test.shape[0] == len(split["test"].labels)
    assert (y_train.ravel() == split["train"].labels).all() and (y_test.ravel() == split["test"].labels).all()


# --- "Not sure": the threshold beside the model, and a reading below it --------------------------


class FixedModel:
    """Stands for a Keras model whose softmax output is known, to test the reading alone."""

    def __init__(self, probabilities):
        self.probabilities = np.array([probabilities])

    def predict(self, batch, batch_size=32, verbose=0):
        assert batch.shape == (1, 64, 64, 3) and batch.max() <= 1.0, "the photo goes in preprocessed, as one batch"
        return self.probabilities


class LeftBrightModel:
    """Reads a 0 when the photo's left edge is bright, else a 5: it tells a photo from its mirror image."""

    def predict(self, batch, batch_size=32, verbose=0):
        left_is_bright = batch[:, :, 0].mean(axis=(1, 2)) > 0.5
        return np.where(left_is_bright[:, None], [[0.9, 0, 0, 0, 0, 0.1]], [[0.3, 0, 0, 0, 0, 0.7]])


def test_a_reading_below_the_threshold_is_not_sure_and_says_its_best_guess():
    import resnets_utils

    pixels = np.full((64, 64, 3), 255, np.uint8)
    sure = resnets_utils.predict_digit(FixedModel([0.05, 0.05, 0.8, 0.05, 0.03, 0.02]), pixels, threshold=0.7)
    unsure = resnets_utils.predict_digit(FixedModel([0.1, 0.1, 0.45, 0.3, 0.03, 0.02]), pixels, threshold=0.7)
    assert (sure.digit, str(sure)) == (2, "a 2 (80% sure)")
    assert unsure.digit is None and str(unsure) == "not sure (its best guess, a 2, is only 45% likely)"


def test_a_reading_averages_the_photo_and_its_mirror_image():
    import resnets_utils

    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, :32] = 255  # bright on the left, dark on the right: its mirror image is the other way round
    reading = resnets_utils.predict_digit(LeftBrightModel(), pixels)
    assert reading.digit == 0 and reading.probabilities == pytest.approx([0.6, 0, 0, 0, 0, 0.4])


def test_the_threshold_is_written_beside_the_model_and_read_back(tmp_path):
    import resnets_utils

    validation = evaluate.measure(np.array([[0.9, 0.1]] * 20), np.zeros(20, int), threshold=0.9)
    file = evaluate.write_threshold(tmp_path / "m", evaluate.Evaluation(0.9, validation, {}, [], {}))
    assert file == tmp_path / f"m{resnets_utils.NOT_SURE_SUFFIX}"
    assert resnets_utils.not_sure_below(tmp_path / "m") == 0.9


def test_a_missing_or_malformed_threshold_file_is_named(tmp_path):
    import resnets_utils

    with pytest.raises(resnets_utils.ModelFileError, match=r"m\.not-sure\.json not found.*make evaluate-pretrained"):
        resnets_utils.not_sure_below(tmp_path / "m")
    (tmp_path / f"m{resnets_utils.NOT_SURE_SUFFIX}").write_text('{"threshold": 7}')
    with pytest.raises(resnets_utils.ModelFileError, match=r"m\.not-sure\.json: the threshold 7.0 is not a probability"):
        resnets_utils.not_sure_below(tmp_path / "m")
    (tmp_path / f"m{resnets_utils.NOT_SURE_SUFFIX}").write_text("{broken")
    with pytest.raises(resnets_utils.ModelFileError, match=r"m\.not-sure\.json holds no threshold"):
        resnets_utils.not_sure_below(tmp_path / "m")
