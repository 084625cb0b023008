"""Measure the pretrained model on photos it never trained on: `python -m tools.model.evaluate [--markdown FILE]`.

For each held-out source (the kit's SIGNS test set, the test fifth of Sign Language Digits,
the test sessions of the wild photos; `tools.data.real_splits` draws the parts), and for the
poses SIGNS shows beyond the kit's data set (2s held sideways, 5s with the fingers together, drawn
from a seed training never used), it prints
the accuracy, the mean per-class accuracy, the confusion matrix, the expected calibration
error, and how often the model answers, and how well, when it says "not sure" below a
confidence threshold. The threshold is chosen on the wild validation sessions: the photos
most like a student's, and the one validation part the shipped model never trained on (a
model trained on the `train` parts of `tools.data.real_splits` never sees it either).
It also shows the model pictures with no hand (walls cut from the held-out SLD photos, rooms
and cats the kit draws) and counts how many come out "not sure", as they should.
`--markdown FILE` also writes the full figures (confusion matrices, no-hand pictures) as a Markdown section;
the model card's table is generated from the benchmark records instead (`--record`, tools/docs/benchmarks.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

import resnets_utils
from tools.data import composite_hands, real_splits, signs_generator
from tools.docs import benchmarks

ECE_BINS = 15
NOT_SURE_TARGET = 0.95  # the answers given on validation photos must be at least this often right
MIN_ANSWERED = 20  # ... and on at least this many photos, so that one lucky photo cannot set the threshold
NO_HAND_PER_KIND = 60  # pictures of each kind the kit draws
NO_HAND_SEED = 404  # not train_pretrained's seed: these drawn rooms and cats were never trained on
VARIANTS_PER_POSE = 60  # sideways 2s and fingers-together 5s the kit draws (signs_generator.VARIANTS)
VARIANTS_SEED = 505  # not train_pretrained's seed either
VARIANT_SOURCES = {"sideways": "sideways 2s the kit draws", "fingers together": "fingers-together 5s the kit draws"}
WALL_SIDE = 32  # a wall is the top corner, this many pixels square, of an SLD photo read at 128 px


class Figures(NamedTuple):
    """What one source's photos show about the model."""

    photos: int
    accuracy: float
    mean_class_accuracy: float
    confusion: np.ndarray  # rows: true digit, columns: the digit the model read
    calibration_error: float
    coverage: float  # share of photos answered at the "not sure" threshold (nan without a threshold)
    answered_accuracy: float  # accuracy on those answered photos (nan when none is)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 6) -> np.ndarray:
    """Return the (classes, classes) counts of true digit (row) read as digit (column)."""
    # One numpy line; TensorFlow's tf.math.confusion_matrix would make these figures need TensorFlow.
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def mean_class_accuracy(confusion: np.ndarray) -> float:
    """Return the accuracy of each true digit, averaged over the digits present: every digit counts the same."""
    totals = confusion.sum(axis=1)
    present = totals > 0
    return float(np.mean(np.diag(confusion)[present] / totals[present]))


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Return the ECE of Guo et al. (2017): |accuracy - mean confidence| per confidence bin, weighted by its photos.

    Bins are of equal width, (k/bins, (k+1)/bins]. A model whose 90%-sure answers are right
    90% of the time scores 0; one that is 95% sure and 60% right scores 0.35.
    """
    # Hand-written: none of the pinned libraries (numpy, TensorFlow, Keras) provides ECE, and
    # tensorflow-probability or torchmetrics would add a large dependency for these four lines.
    confidences = np.asarray(confidences, dtype=np.float64)
    bin_of = np.clip(np.ceil(confidences * bins).astype(int) - 1, 0, bins - 1)
    gap_sums = np.bincount(bin_of, weights=np.asarray(correct, dtype=np.float64) - confidences, minlength=bins)
    return float(np.abs(gap_sums).sum() / len(confidences))


def choose_threshold(
    confidences: np.ndarray, correct: np.ndarray, target: float = NOT_SURE_TARGET, min_answered: int = MIN_ANSWERED
) -> float | None:
    """Return the lowest confidence at or above which at least `min_answered` answers are `target` right, or None.

    Answering from the most confident photo down, the threshold stops only between different
    confidences, so photos of equal confidence are answered alike.
    """
    order = np.argsort(-np.asarray(confidences), kind="stable")
    ranked = np.asarray(confidences)[order]
    answered = np.arange(1, len(ranked) + 1)
    answered_accuracy = np.cumsum(np.asarray(correct)[order]) / answered
    ends_a_tie = np.append(ranked[1:] != ranked[:-1], True)
    good = np.flatnonzero((answered_accuracy >= target) & ends_a_tie & (answered >= min_answered))
    return float(ranked[good[-1]]) if len(good) else None


def measure(probabilities: np.ndarray, labels: np.ndarray, threshold: float | None) -> Figures:
    """Return the figures of one source from the model's probabilities and the true labels."""
    predictions = probabilities.argmax(axis=1)
    confidences = probabilities.max(axis=1)
    correct = predictions == labels
    confusion = confusion_matrix(labels, predictions, probabilities.shape[1])
    answered = confidences >= threshold if threshold is not None else np.zeros(len(labels), dtype=bool)
    return Figures(
        photos=len(labels),
        accuracy=float(correct.mean()),
        mean_class_accuracy=mean_class_accuracy(confusion),
        confusion=confusion,
        calibration_error=expected_calibration_error(confidences, correct),
        coverage=float(answered.mean()) if threshold is not None else float("nan"),
        answered_accuracy=float(correct[answered].mean()) if answered.any() else float("nan"),
    )


def sample_per_digit(labels: np.ndarray, per_digit: int | None) -> np.ndarray:
    """Return the indices of the first `per_digit` photos of each digit (all photos when None)."""
    if per_digit is None:
        return np.arange(len(labels))
    return np.sort(np.concatenate([np.flatnonzero(labels == digit)[:per_digit] for digit in np.unique(labels)]))


def held_out_sources(wild: Path | None, sld: Path | None, per_digit: int | None = None) -> tuple[dict, tuple | None, list[str]]:
    """Return ({test source: (uint8 images, labels)}, the wild validation (images, labels) or None, notes).

    The notes name the sources left out because their folder is None (not asked for) or absent.
    """
    _, _, kit_x, kit_y, _ = resnets_utils.load_dataset()
    kit_chosen = sample_per_digit(kit_y.ravel(), per_digit)
    sources = {"kit SIGNS test set": (kit_x[kit_chosen], kit_y.ravel()[kit_chosen])}
    for variant, (images, labels) in signs_generator.make_variants(per_digit or VARIANTS_PER_POSE, VARIANTS_SEED).items():
        sources[VARIANT_SOURCES[variant]] = (images, labels)
    validation, notes = None, []

    def read(part: real_splits.Part) -> tuple[np.ndarray, np.ndarray]:
        chosen = part.subset(sample_per_digit(part.labels, per_digit))
        return real_splits.read_part(chosen), chosen.labels

    if sld is not None and sld.is_dir():
        sources["held-out SLD fifth"] = read(real_splits.split_sld(sld)["test"])
    else:
        notes.append(f"Sign Language Digits {'not given' if sld is None else f'not found at {sld}'}: its test fifth is not measured.")
    if wild is not None and wild.is_dir():
        wild_split = real_splits.split_wild(wild)
        sources[f"held-out wild sessions {', '.join(real_splits.WILD_TEST_SESSIONS)}"] = read(wild_split["test"])
        validation = read(wild_split["validation"])
    else:
        notes.append(f"wild photos {'not given' if wild is None else f'not found at {wild}'}: no wild figures and no 'not sure' threshold.")
    return sources, validation, notes


def sld_walls(part: real_splits.Part) -> np.ndarray:
    """Return the top corner of each photo (left and right in turn), enlarged to 64x64: the plain wall above the hand."""
    walls = []
    for index, path in enumerate(part.paths):
        photo = resnets_utils.read_photo(path, size=128)
        corner = photo[:WALL_SIDE, :WALL_SIDE] if index % 2 == 0 else photo[:WALL_SIDE, -WALL_SIDE:]
        walls.append(np.asarray(Image.fromarray(corner).resize((64, 64), Image.BILINEAR)))
    return np.stack(walls)


def no_hand_pictures(sld: Path | None, per_kind: int = NO_HAND_PER_KIND) -> dict[str, np.ndarray]:
    """Return {kind: uint8 pictures with no hand}: rooms and cats the kit draws, and walls of held-out SLD photos if given."""
    rng = np.random.default_rng(NO_HAND_SEED)
    pictures = {
        "rooms the kit draws": np.stack([composite_hands.drawn_background(rng).astype(np.uint8) for _ in range(per_kind)]),
        "cats the kit draws": np.stack([composite_hands.drawn_cat(rng) for _ in range(per_kind)]),
    }
    if sld is not None and sld.is_dir():
        test = real_splits.split_sld(sld)["test"]
        spread = np.unique(np.linspace(0, len(test.labels) - 1, per_kind).astype(int))  # photos of every digit
        pictures["walls of held-out SLD photos"] = sld_walls(test.subset(spread))
    return pictures


class Evaluation(NamedTuple):
    """The threshold, the validation photos' figures it was chosen by, the figures of each test source,
    and the share of each kind of picture with no hand that comes out "not sure" (nan without a threshold)."""

    threshold: float | None
    validation: Figures | None
    sources: dict[str, Figures]
    notes: list[str]
    not_sure_of_no_hand: dict[str, float]
    no_hand_per_kind: int = NO_HAND_PER_KIND  # how many pictures of each kind were shown


def evaluate(model_path: Path, wild: Path | None, sld: Path | None, per_digit: int | None = None) -> Evaluation:
    """Measure the model at `model_path` (.json/.npz) on every held-out source present.

    Raises resnets_utils.ModelFileError, DatasetError or PhotoError, or real_splits.RealDataError,
    each naming the file at fault.
    """
    sources, validation, notes = held_out_sources(wild, sld, per_digit)
    model = resnets_utils.load_pretrained(model_path)

    def probabilities(images: np.ndarray) -> np.ndarray:
        return resnets_utils.digit_probabilities(model, images, batch_size=64)  # as predict_digit reads a photo

    threshold = validation_figures = None
    if validation is not None:
        validation_probabilities = probabilities(validation[0])
        correct = validation_probabilities.argmax(axis=1) == validation[1]
        threshold = choose_threshold(validation_probabilities.max(axis=1), correct)
        validation_figures = measure(validation_probabilities, validation[1], threshold)
    else:  # nothing to choose on: measure the threshold the model ships with, if it has one
        threshold = shipped_threshold(model_path)
    figures = {name: measure(probabilities(x), y, threshold) for name, (x, y) in sources.items()}
    per_kind = NO_HAND_PER_KIND if per_digit is None else 6 * per_digit
    not_sure = {
        kind: float(np.mean(probabilities(pictures).max(axis=1) < threshold)) if threshold is not None else float("nan")
        for kind, pictures in no_hand_pictures(sld, per_kind).items()
    }
    return Evaluation(threshold, validation_figures, figures, notes, not_sure, per_kind)


def shipped_threshold(model_path: Path) -> float | None:
    """Return the threshold written beside the model, or None when there is none."""
    try:
        return resnets_utils.not_sure_below(model_path)
    except resnets_utils.ModelFileError:
        return None


def write_threshold(model_path: Path, evaluation: Evaluation) -> Path:
    """Write the "not sure" threshold beside the model (`resnets_utils.not_sure_below` reads it); return the file."""
    file = Path(model_path).with_suffix(resnets_utils.NOT_SURE_SUFFIX)
    chosen_on = f"wild validation sessions {', '.join(real_splits.WILD_VALIDATION_SESSIONS)} ({evaluation.validation.photos} photos)"
    file.write_text(json.dumps({
        "threshold": evaluation.threshold,
        "chosen_on": chosen_on,
        "rule": f"the lowest confidence at which at least {MIN_ANSWERED} answers are {NOT_SURE_TARGET:.0%} right",
    }, indent=1) + "\n")
    return file


def _percent(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.1%}"


def _threshold_sentence(evaluation: Evaluation) -> str:
    sessions = ", ".join(real_splits.WILD_VALIDATION_SESSIONS)
    if evaluation.validation is None and evaluation.threshold is None:
        return "No \"not sure\" threshold: the wild validation photos are absent, and none is written beside the model."
    if evaluation.validation is None:
        return (
            f"\"Not sure\" below a confidence of {evaluation.threshold:.3f}, the threshold written beside the model "
            "(the wild validation photos are absent, so none is chosen here)."
        )
    if evaluation.threshold is None:
        return (
            f"No \"not sure\" threshold: at no confidence are at least {MIN_ANSWERED} of the model's answers on the "
            f"wild validation sessions ({sessions}; {evaluation.validation.photos} photos) {NOT_SURE_TARGET:.0%} right."
        )
    return (
        f"\"Not sure\" below a confidence of {evaluation.threshold:.3f}: the lowest at which the model's answers on the "
        f"wild validation sessions ({sessions}; {evaluation.validation.photos} photos) are at least "
        f"{NOT_SURE_TARGET:.0%} right, on at least {MIN_ANSWERED} photos (it answers "
        f"{_percent(evaluation.validation.coverage)} of them, {_percent(evaluation.validation.answered_accuracy)} right)."
    )


def text_report(evaluation: Evaluation) -> str:
    """Return the figures as plain text for the terminal."""
    lines = [*(f"note: {note}" for note in evaluation.notes), _threshold_sentence(evaluation)]
    for name, f in evaluation.sources.items():
        lines += [
            "",
            f"{name}: {f.photos} photos",
            f"  accuracy {_percent(f.accuracy)}, mean per-class accuracy {_percent(f.mean_class_accuracy)}, "
            f"ECE ({ECE_BINS} bins) {f.calibration_error:.3f}",
            f"  answered at the threshold {_percent(f.coverage)}, of which right {_percent(f.answered_accuracy)}",
            "  confusion (rows: true digit 0-5, columns: read as 0-5):",
            *(f"    {digit}: " + " ".join(f"{count:4d}" for count in row) for digit, row in enumerate(f.confusion)),
        ]
    lines += ["", "pictures with no hand that come out \"not sure\" (they should):",
              *(f"  {kind}: {_percent(share)}" for kind, share in evaluation.not_sure_of_no_hand.items())]
    return "\n".join(lines)


def model_card_section(evaluation: Evaluation) -> str:
    """Return the full figures as a "Measured on real photos" section in markdown."""
    lines = [
        "## Measured on real photos",
        "",
        "`python -m tools.model.evaluate --markdown FILE` writes this section. The held-out parts are drawn by "
        "`tools/data/real_splits.py`: whole capture sessions of `../shared/data/hands-in-the-wild/`, "
        "a seeded fifth of `../shared/data/sign-language-digits/`. Each photo is read as `predict_digit` reads it: "
        "the model's probabilities for the photo and for its mirror image, averaged "
        "(`resnets_utils.digit_probabilities`). ECE is the expected calibration error "
        f"({ECE_BINS} equal-width confidence bins; 0 means the confidence is the chance of being right). "
        "The wild photos show 0 as a fist and 3 as index + middle + ring (or an OK-like pose), where the kit "
        "and SLD show 0 as an \"O\" and 3 as thumb + index + middle.",
        "",
        *(f"Note: {note}" for note in evaluation.notes),
        _threshold_sentence(evaluation),
        "",
        "| held-out photos | photos | accuracy | mean per-class accuracy | ECE | answered at the threshold | right when answering |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {f.photos} | {_percent(f.accuracy)} | {_percent(f.mean_class_accuracy)} | "
            f"{f.calibration_error:.3f} | {_percent(f.coverage)} | {_percent(f.answered_accuracy)} |"
            for name, f in evaluation.sources.items()
        ),
        "",
        "Pictures with no hand should come out \"not sure\": "
        + "; ".join(f"{kind}, {_percent(share)} do" for kind, share in evaluation.not_sure_of_no_hand.items())
        + f" ({evaluation.no_hand_per_kind} of each, drawn from seed {NO_HAND_SEED}, which training never used; a wall is the top "
        "corner of a photo, above the hand).",
    ]
    for name, f in evaluation.sources.items():
        lines += [
            "",
            f"Confusion matrix, {name} (rows: true digit; columns: the digit the model read):",
            "",
            "| true \\ read | " + " | ".join(map(str, range(len(f.confusion)))) + " |",
            "| --- " * (len(f.confusion) + 1) + "|",
            *(f"| **{digit}** | " + " | ".join(map(str, row)) + " |" for digit, row in enumerate(f.confusion)),
        ]
    return "\n".join(lines) + "\n"


def record(evaluation: Evaluation, changed: list[str]) -> None:
    """Append the shipped model's figures to the benchmark records; only a full evaluation of it is a benchmark."""
    kit, sld, wild = (next((f for name, f in evaluation.sources.items() if name.startswith(prefix)), None)
                      for prefix in ("kit SIGNS", "held-out SLD", "held-out wild"))
    sideways, together = (evaluation.sources[VARIANT_SOURCES[variant]] for variant in ("sideways", "fingers together"))
    if changed or sld is None or wild is None:
        print(f"Not recorded: the benchmark is the shipped model on every held-out photo ({', '.join(changed) or 'photos missing'}).")
        return
    benchmarks.record("make evaluate-pretrained", {
        **{f"{name}_accuracy": round(f.mean_class_accuracy, 4) for name, f in (("kit", kit), ("sld", sld), ("wild", wild))},
        **{f"{name}_ece": round(f.calibration_error, 4) for name, f in (("kit", kit), ("sld", sld), ("wild", wild))},
        "threshold": round(evaluation.threshold, 3), "wild_answered": round(wild.coverage, 4),
        "wild_right_when_answered": round(wild.answered_accuracy, 4),
        "sideways_two_accuracy": round(sideways.accuracy, 4), "together_five_accuracy": round(together.accuracy, 4)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=resnets_utils.PRETRAINED, help="MODEL.json/.npz to measure")
    parser.add_argument("--wild", type=Path, default=real_splits.WILD_PHOTOS, help="the wild photos' folder")
    parser.add_argument("--sld", type=Path, default=real_splits.SLD_PHOTOS, help="Sign Language Digits, DIR/<digit>/*.jpg")
    parser.add_argument("--per-digit", type=int, metavar="N", help="only the first N photos of each digit per source")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the full figures as a Markdown section to FILE")
    parser.add_argument("--write-threshold", action="store_true",
                        help=f"also write the threshold to MODEL{resnets_utils.NOT_SURE_SUFFIX}, where notebook 5 reads it")
    parser.add_argument("--record", action="store_true",
                        help="append the figures to benchmarks/records.jsonl (make evaluate-pretrained; the shipped model on all its photos only)")
    args = parser.parse_args()
    if args.per_digit is not None and args.per_digit < 1:
        parser.error(f"--per-digit must be at least 1, not {args.per_digit}")
    try:
        evaluation = evaluate(args.model, args.wild, args.sld, args.per_digit)
    except (resnets_utils.ModelFileError, resnets_utils.PhotoError, resnets_utils.DatasetError, real_splits.RealDataError) as error:
        raise SystemExit(f"Error: {error}") from None
    print(text_report(evaluation))
    if args.record:
        record(evaluation, changed=[name for name in ("model", "wild", "sld", "per_digit")
                                    if getattr(args, name) != parser.get_default(name)])
    if args.markdown:
        args.markdown.write_text(model_card_section(evaluation))
        print(f"\nWrote the full figures to {args.markdown}.")
    if args.write_threshold:
        if evaluation.validation is None or evaluation.threshold is None:
            raise SystemExit("Error: no threshold was chosen, so none is written (see above).")
        print(f"Wrote the threshold to {write_threshold(args.model, evaluation)}.")


if __name__ == "__main__":
    main()
