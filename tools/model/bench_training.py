"""Measure training speed: `python -m tools.model.bench_training` (what `make bench` runs).

Prints, in one run on this machine, after the CPU's model name (figures mean little without it):
1. images per second of `keras.applications.ResNet50(weights=None)` trained with plain `fit`
   in float32 (the baseline a student would write);
2. images per second of the kit's recipe (tools/model/train_pretrained.py: the notebooks'
   ResNet50, the augmenting tf.data pipeline, `resnets_utils.speed_up_training`, its batch size;
   `--batch-sizes 32,128` measures the recipe at other batch sizes as well);
3. their ratio, at the recipe's batch size;
4. notebook 4's training run, from scratch, timed: the same split, recipe
   (`compile_for_short_training` and the constants, read from the notebook), epochs and batch
   size as the notebook, with the test accuracy after every epoch; then its final test accuracy and
   training time, and the time it took to reach 90% and 95% test accuracy. `--notebook-epochs N`
   trains it over N epochs instead (the schedule spread over N), to see when a longer run gets there.
With `--record` (what `make bench` passes), the figures of the default run are appended to
benchmarks/records.jsonl.
Throughput is timed over whole epochs after one warm-up epoch, which pays for tracing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import resnets_utils
from tools import at_least, cpu_model
from tools.course.notebook_source import notebook_constant, reference_resnet50, training_recipe
from tools.docs import benchmarks
from tools.model.train_pretrained import BATCH_SIZE, SEED, compile_for_training

TARGET_ACCURACIES = (0.90, 0.95)
NOTEBOOK_SEED = 1  # notebook 4's tf.keras.utils.set_random_seed(1)


def images_per_second(model, data, images: int, epochs: int, **fit_options) -> float:
    """The median over `epochs` timed epochs (this machine's speed wanders), after a warm-up epoch."""
    model.fit(data, epochs=1, verbose=0, **fit_options)  # warm-up: tracing and memory
    speeds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, **fit_options)
        speeds.append(images / (time.perf_counter() - start))
    return float(np.median(speeds))


def batch_sizes(text: str) -> list[int]:
    """Parse "32,128" into [32, 128], for argparse."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers separated by commas, like 32,128; got {text!r}")
    return sizes


def notebook_run(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 epochs: int | None = None) -> dict:
    """Train as notebook 4 does (over `epochs` instead of its own, if given), one epoch at a time, print the test
    accuracy after each (not timed), and return the final accuracy, the minutes of training and the minutes to each
    of TARGET_ACCURACIES (None: not reached)."""
    import tensorflow as tf

    batch_size, learning_rate = (notebook_constant(name) for name in ("BATCH_SIZE", "LEARNING_RATE"))
    epochs = epochs or notebook_constant("EPOCHS")
    train, val = resnets_utils.validation_split(y_train)
    validation = (resnets_utils.preprocess(x_train[val]), tf.keras.utils.to_categorical(y_train[val], 6))
    tf.keras.utils.set_random_seed(NOTEBOOK_SEED)
    pipeline = resnets_utils.training_pipeline(x_train[train], y_train[train], batch_size=batch_size, augment=False)
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    resnets_utils.zero_init_residual(model)
    resnets_utils.set_batchnorm_momentum(model, 0.9)  # notebook 4's
    compile_for_short_training, _ = training_recipe()
    compile_for_short_training(model, len(pipeline), epochs, learning_rate)
    resnets_utils.speed_up_training(model)
    x_test_ready = resnets_utils.preprocess(x_test)
    seconds, reached = 0.0, {}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.fit(pipeline, initial_epoch=epoch - 1, epochs=epoch, validation_data=validation, verbose=0, shuffle=False)
        seconds += time.perf_counter() - start
        accuracy = float(np.mean(model.predict(x_test_ready, verbose=0).argmax(axis=1) == y_test))
        print(f"  epoch {epoch}: test accuracy {accuracy:.1%} after {seconds:.0f} s of training", flush=True)
        for target in TARGET_ACCURACIES:
            if target not in reached and accuracy >= target:
                reached[target] = (seconds / 60, epoch)
    span = f"{epochs} epoch" + ("s" if epochs > 1 else "")
    print(f"notebook 4's training run ({span}, {model.dtype_policy.name}): test accuracy {accuracy:.1%} "
          f"after {seconds / 60:.1f} min of training")
    for target in TARGET_ACCURACIES:
        minutes, epoch = reached.get(target, (None, None))
        print(f"time to {target:.0%} test accuracy from scratch: "
              + (f"{minutes:.1f} min ({epoch} of {span})" if minutes is not None else f"not reached in {span}"))
    return {
        "notebook_test_accuracy": round(accuracy, 4),
        "notebook_training_minutes": round(seconds / 60, 2),
        **{f"minutes_to_{target * 100:.0f}": round(reached[target][0], 2) if target in reached else None
           for target in TARGET_ACCURACIES},
    }


def not_the_benchmark(notebook_epochs: int | None) -> str | None:
    """Why a run's figures would mislead on the benchmarks page (None: the run is the benchmark's own)."""
    epochs = notebook_constant("EPOCHS")
    if notebook_epochs not in (None, epochs):
        return f"the benchmark is notebook 4's own run, {epochs} epochs, not {notebook_epochs}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for each throughput figure")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=[BATCH_SIZE],
                        help=f"the recipe's batch sizes to time, comma-separated (default: the recipe's, {BATCH_SIZE})")
    parser.add_argument("--notebook-epochs", type=at_least(1), metavar="N",
                        help=f"train notebook 4's run over this many epochs (default: the notebook's, {notebook_constant('EPOCHS')})")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/records.jsonl (make bench)")
    args = parser.parse_args()

    import tensorflow as tf

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores", flush=True)
    x_train, y_train, x_test, y_test, _ = resnets_utils.load_dataset()
    y_train, y_test = y_train.ravel(), y_test.ravel()

    tf.keras.utils.set_random_seed(SEED)
    tf.keras.mixed_precision.set_global_policy("float32")
    baseline = tf.keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)
    baseline.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    keras_speed = images_per_second(
        baseline, resnets_utils.preprocess(x_train), len(x_train), args.epochs,
        y=tf.keras.utils.to_categorical(y_train, 6), batch_size=32,
    )
    print(f"keras.applications.ResNet50, plain fit, float32: {keras_speed:.1f} img/s", flush=True)
    del baseline

    precision = resnets_utils.fast_precision()
    figures = {"keras_images_per_second": round(keras_speed, 1), "precision": precision}
    for batch_size in args.batch_sizes:
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(SEED)
        pipeline = resnets_utils.training_pipeline(x_train, y_train, batch_size=batch_size, seed=SEED)
        model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
        compile_for_training(model, steps_per_epoch=len(pipeline), epochs=args.epochs + 2)
        resnets_utils.speed_up_training(model)
        kit_speed = images_per_second(model, pipeline, len(x_train), args.epochs, shuffle=False)
        recipe = " (the recipe's)" if batch_size == BATCH_SIZE else ""
        print(f"the kit's recipe ({precision}, batch {batch_size}{recipe}, tf.data pipeline): {kit_speed:.1f} img/s", flush=True)
        if batch_size == BATCH_SIZE:
            print(f"ratio: {kit_speed / keras_speed:.2f}x", flush=True)
            figures |= {"recipe_images_per_second": round(kit_speed, 1), "ratio": round(kit_speed / keras_speed, 3)}
        del model

    figures |= notebook_run(x_train, y_train, x_test, y_test, args.notebook_epochs)
    if args.record:
        reason = not_the_benchmark(args.notebook_epochs)
        if reason:
            print(f"Not recorded: {reason}.")
        else:
            benchmarks.record("make bench", figures)


if __name__ == "__main__":
    main()
