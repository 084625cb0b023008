"""How real is the kit's generated data? Train on it alone, test on real hand photos.

`python -m tools.data.measure_realism [--real DIR] [--wild DIR]` trains a small CNN on the
kit's generated SIGNS training set only and prints its accuracy on real photos of the same
six digits: Sign Language Digits, hands on plain walls (default
../shared/data/sign-language-digits), and the photos of hands in everyday rooms (default
../shared/data/hands-in-the-wild; all of them, since this model trains on none). The figures
say whether a model that learned from the kit's data can read a real hand; datasets/README.md
reports them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import resnets_utils
from tools.data.import_photos import PhotoFolderError, read_photo_folder

DEFAULT_REAL = resnets_utils.KIT_DIR.parent / "shared" / "data" / "sign-language-digits"
DEFAULT_WILD = DEFAULT_REAL.parent / "hands-in-the-wild"


def standardize(images):
    """Zero mean, unit variance per image."""
    import keras

    mean = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = keras.ops.std(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-6)


def small_cnn(seed: int):
    """A four-stage CNN, small enough to train in about a minute on two CPU cores."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input((64, 64, 3)),
        keras.layers.RandomRotation(0.04),
        keras.layers.RandomZoom(0.1),
        keras.layers.RandomTranslation(0.08, 0.08),
        keras.layers.Lambda(standardize),  # per image: indifferent to a photo's overall light and contrast
    ]
    for filters in (32, 64, 128, 128):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.3), keras.layers.Dense(6, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def report(predicted: np.ndarray, labels: np.ndarray, source: str) -> None:
    """Print the accuracy per digit, how each digit's photos were read, and the accuracy on all."""
    print(f"\n{source}, {len(labels)} photos. True digit: accuracy, then how its photos were read as 0 1 2 3 4 5")
    for digit in range(6):
        mine = labels == digit
        counts = " ".join(f"{n:3d}" for n in np.bincount(predicted[mine], minlength=6))
        print(f"  {digit}: {np.mean(predicted[mine] == digit):6.1%} of {mine.sum()}   [{counts}]")
    print(f"Synthetic-to-real accuracy, {source}: {np.mean(predicted == labels):.1%} (chance: 16.7%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="Sign Language Digits or other real photos, DIR/<digit>/*.jpg")
    parser.add_argument("--wild", type=Path, default=DEFAULT_WILD, help="photos of hands in everyday rooms, DIR/<digit>/*.jpg (skipped when absent)")
    parser.add_argument("--data", type=Path, default=None, help="folder of the generated SIGNS files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x_train, y_train, _, _, _ = resnets_utils.load_dataset(args.data)
    folders = {f"real photos from {args.real}": args.real}
    if args.wild.is_dir():
        folders[f"wild photos from {args.wild}"] = args.wild
    else:
        print(f"note: no wild photos at {args.wild}; only {args.real} is measured.")
    try:
        sources = {source: read_photo_folder(folder)[:2] for source, folder in folders.items()}
    except PhotoFolderError as error:
        raise SystemExit(f"error: {error}") from None

    model = small_cnn(args.seed)
    model.fit(resnets_utils.preprocess(x_train), y_train.ravel(), epochs=args.epochs, batch_size=32, verbose=2)
    print(f"\nTrained on {len(x_train)} generated images only.")
    for source, (x_real, y_real) in sources.items():
        report(model.predict(resnets_utils.preprocess(x_real), verbose=0).argmax(axis=1), y_real, source)


if __name__ == "__main__":
    main()
