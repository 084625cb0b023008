"""Train the kit's pretrained ResNet50: `python -m tools.model.train_pretrained [--real DIR] [--epochs N]`.

The architecture is the notebooks' reference ResNet50 (read from the source notebooks, not
copied). It trains on the kit's generated SIGNS training set plus, when given, real hand
photos DIR/<digit>/*.jpg, of which a seeded fifth per digit is held out and never trained
on. Input pipeline: tf.data with augmentation suited to hand photos (mirror, small
rotations, zoom, shifts, brightness and contrast); one epoch of learning-rate warm-up, then
cosine decay; mixed bfloat16 where the CPU has bf16 instructions and oneDNN is on
(`resnets_utils.fast_precision`); a checkpoint every epoch, and an interrupted run resumes
where it stopped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import resnets_utils
from tools.data.import_photos import read_photo_folder, split_stratified
from tools.data.measure_realism import DEFAULT_REAL
from tools.course.notebook_source import reference_resnet50

SEED = 2015
BATCH_SIZE = 32
EPOCHS = 30
LEARNING_RATE = 3e-4  # the peak, after one epoch of warm-up; 1e-3 made ResNet50 unstable from scratch
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 2016


def load_real_photos(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (train images, train labels, held-out images, held-out labels) from real photos."""
    images, labels, _ = read_photo_folder(folder, progress=False)
    held_out = split_stratified(labels, HOLDOUT_FRACTION, HOLDOUT_SEED)
    return images[~held_out], labels[~held_out], images[held_out], labels[held_out]


def compile_for_training(model, steps_per_epoch: int, epochs: int, learning_rate: float = LEARNING_RATE) -> None:
    """Notebook 4's compile (`resnets_utils.compile_for_short_training`) without label smoothing, which the
    shipped model was trained without: 30 epochs on more data do not need it."""
    resnets_utils.compile_for_short_training(model, steps_per_epoch, epochs, learning_rate, label_smoothing=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=str(DEFAULT_REAL), help="real photos DIR/<digit>/*.jpg ('' for none)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="peak, after one epoch of warm-up")
    parser.add_argument("--work", type=Path, default=resnets_utils.KIT_DIR / "build" / "pretrained")
    parser.add_argument("--evaluate", type=Path, metavar="MODEL", help="only print the accuracies of MODEL (.json/.npz)")
    args = parser.parse_args()
    args.real = Path(args.real) if args.real else None
    if args.evaluate:
        return report(args.evaluate, evaluation_sets(args.real))

    import tensorflow as tf

    tf.keras.utils.set_random_seed(SEED)
    x_train, y_train, x_test, y_test, _ = resnets_utils.load_dataset()
    y_train, y_test = y_train.ravel(), y_test.ravel()
    if args.real and args.real.is_dir():
        real_x, real_y, held_x, _ = load_real_photos(args.real)
        x_train, y_train = np.concatenate([x_train, real_x]), np.concatenate([y_train, real_y])
        print(f"Training on {len(x_train)} images ({len(real_x)} real); holding out {len(held_x)} real photos.")

    gpus = len(tf.config.list_physical_devices("GPU"))
    tf.keras.mixed_precision.set_global_policy(resnets_utils.fast_precision())
    strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
    print(f"Precision {tf.keras.mixed_precision.global_policy().name}; {max(gpus, 1)} {'GPU' if gpus else 'CPU'} replica(s).")
    pipeline = resnets_utils.training_pipeline(x_train, y_train, args.batch_size * strategy.num_replicas_in_sync, seed=SEED)
    with strategy.scope():
        model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
        compile_for_training(model, len(pipeline), args.epochs, args.learning_rate)
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model.fit(
        pipeline,
        epochs=args.epochs,
        shuffle=False,  # the pipeline shuffles already
        callbacks=[
            tf.keras.callbacks.BackupAndRestore(str(args.work / "resume")),
            tf.keras.callbacks.ModelCheckpoint(str(args.work / "last.weights.h5"), save_weights_only=True),
        ],
    )
    print(f"Trained in {(time.perf_counter() - start) / 60:.1f} min.")
    export(model, args.work / "resnet50_signs")
    tf.keras.mixed_precision.set_global_policy("float32")
    report(args.work / "resnet50_signs", evaluation_sets(args.real))  # judge the file, not the run
    print(f"Wrote {args.work / 'resnet50_signs'}.json/.npz; copy both into models/ when the figures improve.")


def evaluation_sets(real: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The kit's SIGNS test set, and the held-out real photos when `real` is a folder."""
    _, _, x_test, y_test, _ = resnets_utils.load_dataset()
    sets = {"kit SIGNS test set": (x_test, y_test.ravel())}
    if real and Path(real).is_dir():
        _, _, held_x, held_y = load_real_photos(Path(real))
        sets["held-out real photos"] = (held_x, held_y)
    return sets


def accuracies(model, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    return {
        name: float(np.mean(model.predict(resnets_utils.preprocess(x), verbose=0).argmax(axis=1) == y))
        for name, (x, y) in sets.items()
    }


def report(path: Path, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for name, accuracy in accuracies(resnets_utils.load_pretrained(path), sets).items():
        print(f"accuracy on the {name}: {accuracy:.1%} of {len(sets[name][1])}")


def export(model, path: Path) -> None:
    """Write the architecture as float32 Keras JSON and the weights as float16 (`load_pretrained` reads both)."""
    import tensorflow as tf

    tf.keras.mixed_precision.set_global_policy("float32")
    float32_model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    path.with_suffix(".json").write_text(float32_model.to_json())
    np.savez(path.with_suffix(".npz"), **{f"w{i}": w.astype(np.float16) for i, w in enumerate(model.get_weights())})


if __name__ == "__main__":
    main()
