"""Measure training speed: `python -m tools.bench_training` (what `make bench` runs).

Prints, in one run on this machine:
1. images per second of `keras.applications.ResNet50(weights=None)` trained with plain `fit`
   in float32 (the baseline a student would write);
2. images per second of the kit's recipe (tools/train_pretrained.py: the notebooks'
   ResNet50, the tf.data pipeline, mixed bfloat16 where the CPU has it);
3. their ratio;
4. the wall time for the kit's recipe to reach 95% accuracy on the kit's SIGNS test set,
   from scratch, on the kit's SIGNS training set.
Throughput is timed over whole epochs after one warm-up epoch, which pays for tracing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import resnets_utils
from tools.notebook_source import reference_resnet50
from tools.train_pretrained import SEED, compile_for_training, cpu_has_bf16, precision_policy

TARGET_ACCURACY = 0.95


def images_per_second(model, data, images: int, epochs: int, **fit_options) -> float:
    """The median over `epochs` timed epochs (this machine's speed wanders), after a warm-up epoch."""
    model.fit(data, epochs=1, verbose=0, **fit_options)  # warm-up: tracing and memory
    speeds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, **fit_options)
        speeds.append(images / (time.perf_counter() - start))
    return float(np.median(speeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for each throughput figure")
    parser.add_argument("--race-epochs", type=int, default=12, help="epochs of the from-scratch run to 95%%")
    args = parser.parse_args()

    import tensorflow as tf

    x_train, y_train, x_test, y_test, _ = resnets_utils.load_dataset()
    y_train, y_test = y_train.ravel(), y_test.ravel()
    x_test_ready = resnets_utils.preprocess(x_test)

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

    precision = precision_policy(len(tf.config.list_physical_devices("GPU")), cpu_has_bf16())
    tf.keras.utils.set_random_seed(SEED)
    tf.keras.mixed_precision.set_global_policy(precision)
    pipeline = resnets_utils.training_pipeline(x_train, y_train, seed=SEED)
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    compile_for_training(model, steps_per_epoch=len(pipeline), epochs=args.epochs + 2)
    kit_speed = images_per_second(model, pipeline, len(x_train), args.epochs, shuffle=False)
    print(f"the kit's recipe ({precision}, tf.data pipeline): {kit_speed:.1f} img/s", flush=True)
    print(f"ratio: {kit_speed / keras_speed:.2f}x", flush=True)
    del model

    tf.keras.utils.set_random_seed(SEED)
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    epochs = args.race_epochs
    compile_for_training(model, steps_per_epoch=len(pipeline), epochs=epochs)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.fit(pipeline, initial_epoch=epoch - 1, epochs=epoch, verbose=0, shuffle=False)
        accuracy = np.mean(model.predict(x_test_ready, verbose=0).argmax(axis=1) == y_test)
        minutes = (time.perf_counter() - start) / 60
        print(f"  epoch {epoch}: test accuracy {accuracy:.1%} after {minutes:.1f} min", flush=True)
        if accuracy >= TARGET_ACCURACY:
            print(f"time to {TARGET_ACCURACY:.0%} test accuracy from scratch: {minutes:.1f} min ({epoch} epochs)")
            return
    print(f"did not reach {TARGET_ACCURACY:.0%} test accuracy in {epochs} epochs ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
