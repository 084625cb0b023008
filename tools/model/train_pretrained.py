"""Train the kit's pretrained ResNet50: `python -m tools.model.train_pretrained [--sld DIR] [--wild DIR] [--epochs N] [--seed N] [--start-from MODEL]`.

The architecture is the notebooks' reference ResNet50 (read from the source notebooks, not
copied). It learns from (`training_data`):
- the kit's generated SIGNS training set;
- the `train` parts of the real photos (`tools.data.real_splits`): Sign Language Digits
  without its validation and test parts, and the wild photos' training sessions, twice
  (they are the few photos of hands in real rooms);
- every SLD training hand cut out and placed on other backgrounds (`tools.data.composite_hands`),
  so that the hand, not the plain wall, is what tells the digits apart;
- backgrounds with no hand, whose target gives every digit the same probability: a model
  that learned to be unsure of them says "not sure" for a photo of a wall.
The validation and test parts are never trained on. Input pipeline: tf.data with augmentation
(`resnets_utils.training_pipeline`); half an epoch of learning-rate warm-up, then cosine decay (notebook 4's schedule);
notebook 4's compile (`compile_for_short_training`, read from the notebook) without label smoothing;
what only makes training faster here (`resnets_utils.speed_up_training`: precision, kernel gradients);
a checkpoint every epoch, and an interrupted run resumes where it stopped (only with its own
settings: `check_resume_settings`). With `--start-from MODEL` it goes on from a trained model's weights
instead of from scratch, its first four stages frozen (`freeze_finder_backbone`): a few epochs teach
stage 5 and the classifier what the data gained since that model was trained, and keep what it
already read well. At the end it measures the exported file
(`tools.model.evaluate`) and writes the "not sure" threshold chosen on the wild validation
sessions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import resnets_utils
from tools import at_least
from tools.course.notebook_source import reference_resnet50, training_recipe
from tools.data import composite_hands, real_splits, signs_generator
from tools.model import evaluate

SEED = 2016  # the shipped model's: judged on the wild validation sessions, seeds 2015 and 2017 trained worse ones (docs/model-card.md)
BATCH_SIZE = 32
EPOCHS = 24  # 28 until 2026-12-03 (the shipped model's); 24-epoch runs of seeds 2016 and 2015 were within the 28-epoch
             # runs' spread and took 44.2 and 44.9 min on an AVX2-only AMD EPYC (its records are in benchmarks/)
LEARNING_RATE = 3e-4  # the peak, after half an epoch of warm-up; 1e-3 made ResNet50 unstable from scratch
COMPOSITES_PER_HAND = 2
WILD_REPEATS = 2
NO_HAND_SHARE = 0.1  # backgrounds alone, as a share of the images with a hand
NO_HAND = -1  # the label of a photo of no hand: its target is 1/6 for every digit
RESUME_FOLDER = "resume"  # inside --work: where BackupAndRestore keeps an interrupted run, and what check_resume_settings checks
ROOM_SIZE = 128  # the wild photos' corners are read at this size, so that enlarged they stay sharp


def training_data(sld: Path | None, wild: Path | None, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Return (uint8 images, labels, {source: count}); labels are digits, or NO_HAND for backgrounds alone.

    A folder that is None or absent is left out (the kit's generated set is always in).
    Raises real_splits.RealDataError or resnets_utils.PhotoError naming the file at fault.
    """
    kit_x, kit_y, _, _, _ = resnets_utils.load_dataset()
    parts = {"kit SIGNS training set": (kit_x, kit_y.ravel())}
    # As many 2s held sideways, a pose SIGNS shows beyond the kit's set, as the set has of a digit. Not the other
    # such pose, 5s with the fingers together: models read them without it, and with it they took more of the kit's 3s for 4s.
    parts["sideways 2s the kit draws"] = signs_generator.make_variants(len(kit_y.ravel()) // 6, seed, ("sideways",))["sideways"]
    rooms = np.zeros((0, 64, 64, 3), np.uint8)
    if wild is not None and Path(wild).is_dir():
        train = real_splits.split_wild(Path(wild))["train"]
        parts[f"wild training sessions (x{WILD_REPEATS})"] = (
            np.concatenate([real_splits.read_part(train)] * WILD_REPEATS), np.tile(train.labels, WILD_REPEATS))
        rooms = np.stack([resnets_utils.read_photo(path, size=ROOM_SIZE) for path in train.paths])
    if sld is not None and Path(sld).is_dir():
        train = real_splits.split_sld(Path(sld))["train"]
        hands = real_splits.read_part(train)
        parts["SLD training part"] = (hands, train.labels)
        parts["SLD hands on other backgrounds"] = composite_hands.composite_hands(hands, train.labels, rooms, COMPOSITES_PER_HAND, seed)
    with_hand = sum(len(y) for _, y in parts.values())
    rng = np.random.default_rng(seed)
    no_hand = [composite_hands.background(rooms, rng) for _ in range(int(with_hand * NO_HAND_SHARE))]
    parts["backgrounds with no hand"] = (np.stack(no_hand), np.full(len(no_hand), NO_HAND))
    images = np.concatenate([x for x, _ in parts.values()])
    labels = np.concatenate([y for _, y in parts.values()]).astype(np.int64)
    return images, labels, {name: len(y) for name, (_, y) in parts.items()}


def with_no_hand_targets(pipeline):
    """Give NO_HAND images (one-hot rows of zeros: tf.one_hot of -1) the target 1/6 for every digit."""
    import tensorflow as tf

    def spread(x, y):
        missing = 1.0 - tf.reduce_sum(y, axis=-1, keepdims=True)
        return x, y + missing / tf.cast(tf.shape(y)[-1], y.dtype)

    return pipeline.map(spread)  # a sum per batch: not worth a thread


def compile_for_training(model, steps_per_epoch: int, epochs: int, learning_rate: float = LEARNING_RATE) -> None:
    """Notebook 4's compile (`compile_for_short_training`, read from the notebook) without label
    smoothing: the no-hand images already teach the model where to be unsure."""
    compile_for_short_training, _ = training_recipe()
    compile_for_short_training(model, steps_per_epoch, epochs, learning_rate, label_smoothing=0.0)


def freeze_finder_backbone(model) -> int:
    """Freeze stages 1 to 4, BatchNorm statistics included; return how many layers that is.

    The hand finder reads those stages' features (`resnets_utils.finder_backbone`), so a model
    that goes on learning with them frozen keeps the shipped finder valid. Learning them as well
    would need the finder trained again (`make finder`).
    """
    layers = resnets_utils.finder_backbone_layers(model)
    for layer in layers:
        layer.trainable = False  # a frozen BatchNorm also normalises with its running statistics (Keras 3)
    return len(layers)


class ResumeMismatch(RuntimeError):
    """The work folder holds an interrupted run whose settings differ from this run's."""


def check_resume_settings(work: Path, settings: dict) -> None:
    """Refuse to resume an interrupted run that had other settings, then record this run's.

    Keras's BackupAndRestore resumes whatever checkpoint it finds, so without this check a run
    with another seed, length or data would silently continue the interrupted one.
    """
    recorded, resume = work / "resume-settings.json", work / RESUME_FOLDER
    if resume.is_dir() and recorded.is_file():
        try:
            before = json.loads(recorded.read_text())
        except ValueError as error:
            raise ResumeMismatch(f"{recorded} cannot be read ({error}); delete {resume} to start afresh.") from None
        changed = [f"{name} {before.get(name)!r}, now {value!r}" for name, value in settings.items() if before.get(name) != value]
        if changed:
            raise ResumeMismatch(
                f"{resume} holds an interrupted run with other settings ({'; '.join(changed)}). "
                f"Run again with its settings to resume it, or delete {resume} to start afresh."
            )
    work.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings, indent=1) + "\n")


def folder_or_none(value: str) -> Path | None:
    """An argument's folder, or None for '' (leave that source out)."""
    return Path(value) if value else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sld", type=folder_or_none, default=real_splits.SLD_PHOTOS, help="Sign Language Digits DIR/<digit>/*.jpg ('' for none)")
    parser.add_argument("--wild", type=folder_or_none, default=real_splits.WILD_PHOTOS, help="the wild photos' folder ('' for none)")
    parser.add_argument("--epochs", type=at_least(1), default=EPOCHS)
    parser.add_argument("--batch-size", type=at_least(1), default=BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="peak, after half an epoch of warm-up")
    parser.add_argument(
        "--seed", type=at_least(0), default=SEED,
        help="draws the composites, the data order and the augmentation; other seeds show how far one run of the recipe is from another",
    )
    parser.add_argument(
        "--start-from", type=Path, metavar="MODEL",
        help="go on from a trained model's weights (MODEL.json/.npz, as models/resnet50_signs) instead of from scratch, "
             "stages 1 to 4 frozen so that the hand finder, which reads them, stays valid",
    )
    parser.add_argument("--work", type=Path, default=resnets_utils.KIT_DIR / "build" / "pretrained")
    args = parser.parse_args()
    try:
        start_weights = None if args.start_from is None else resnets_utils.load_pretrained(args.start_from).get_weights()
        images, labels, counts = training_data(args.sld, args.wild, args.seed)
    except (real_splits.RealDataError, resnets_utils.PhotoError, resnets_utils.DatasetError, resnets_utils.ModelFileError) as error:
        sys.exit(f"Error: {error}")
    print(f"Training on {len(images)} images: " + ", ".join(f"{count} {name}" for name, count in counts.items()) + ".")

    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    gpus = len(tf.config.list_physical_devices("GPU"))
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    print(f"Precision {resnets_utils.fast_precision()}; {max(gpus, 1)} {'GPU' if gpus else 'CPU'} replica(s); seed {args.seed}.")
    settings = {"seed": args.seed, "epochs": args.epochs, "batch size": args.batch_size, "learning rate": args.learning_rate,
                "images": counts, "precision": resnets_utils.fast_precision(),
                "start from": None if args.start_from is None else str(args.start_from)}
    try:
        check_resume_settings(args.work, settings)
    except ResumeMismatch as error:
        sys.exit(f"Error: {error}")
    batches = resnets_utils.training_pipeline(images, labels, args.batch_size * strategy.num_replicas_in_sync, seed=args.seed)
    pipeline = with_no_hand_targets(batches)
    with strategy.scope():
        model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
        if start_weights is not None:
            try:
                model.set_weights(start_weights)
            except ValueError as error:  # a model of another architecture than the notebooks' ResNet50
                sys.exit(f"Error: {args.start_from} is not the notebooks' ResNet50 for 6 digits, so training cannot go on from it ({error}).")
            frozen = freeze_finder_backbone(model)
            print(f"Starting from the weights of {args.start_from}; its first {frozen} layers (stages 1 to 4) stay as they are.")
        compile_for_training(model, len(batches), args.epochs, args.learning_rate)
        print(resnets_utils.speed_up_training(model))
    start = time.perf_counter()
    model.fit(
        pipeline,
        epochs=args.epochs,
        shuffle=False,  # the pipeline shuffles already
        callbacks=[
            tf.keras.callbacks.BackupAndRestore(str(args.work / RESUME_FOLDER)),
            tf.keras.callbacks.ModelCheckpoint(str(args.work / "last.weights.h5"), save_weights_only=True),
        ],
    )
    print(f"Trained in {(time.perf_counter() - start) / 60:.1f} min.")
    path = args.work / "resnet50_signs"
    export(model, path)
    report(path, args.sld, args.wild)  # judge the file, not the run
    print(f"Wrote {path}.json/.npz; copy them (and {path.name}{resnets_utils.NOT_SURE_SUFFIX}) into models/ when the figures improve.")


def report(path: Path, sld: Path | None, wild: Path | None) -> None:
    """Print the exported model's figures on every held-out source; write the "not sure" threshold beside it when one was chosen."""
    measured = evaluate.evaluate(path, wild, sld)
    print(evaluate.text_report(measured))
    path.with_suffix(".measured.md").write_text(evaluate.model_card_section(measured))
    if measured.validation is not None and measured.threshold is not None:
        evaluate.write_threshold(path, measured)


def export(model, path: Path) -> None:
    """Write the architecture as float32 Keras JSON and the weights as float16 (`load_pretrained` reads both)."""
    float32_model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    path.with_suffix(".json").write_text(float32_model.to_json())
    resnets_utils.save_float16_weights(model, path.with_suffix(".npz"))


if __name__ == "__main__":
    main()
