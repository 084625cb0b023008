"""How real is the kit's generated data? Train on it alone, test on real hand photos.

`python -m tools.data.measure_realism [--real DIR] [--wild DIR] [--models N] [--train-per-class N] [--silhouettes]` trains small
CNNs on the kit's generated SIGNS training set only and prints their accuracy on real photos
of the same six digits: Sign Language Digits, hands on plain walls (default
../shared/data/sign-language-digits), and the photos of hands in everyday rooms (default
../shared/data/hands-in-the-wild; all of them, since these models train on none). The figures
say whether a model that learned from the kit's data can read a real hand; docs/data-card.md
reports them. The figure is the mean over several models that differ only in their seed: on
photos unlike its training data one model's accuracy swings by tens of points with its seed
(18.5% to 55.2% for three seeds on the same data), so one model says little.

`--train-per-class N` trains on N freshly generated images of each digit instead of the shipped
180 (the same generator and seed as `make_signs`): it tells how much of the gap is the
generator's drawing and how much the small number of images the course's format holds.

`--silhouettes` trains and tests on the hands' silhouettes instead (plain-wall photos only):
it separates the hands' shapes from how they are painted, so that work on the generator
knows which of the two keeps real photos from being read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import resnets_utils
from tools import at_least
from tools.data import signs_generator
from tools.data.composite_hands import hand_mask
from tools.data.import_photos import PhotoFolderError, read_photo_folder
from tools.data.make_signs import TRAIN_SEED
from tools.docs import benchmarks

DEFAULT_REAL = resnets_utils.KIT_DIR.parent / "shared" / "data" / "sign-language-digits"
DEFAULT_WILD = DEFAULT_REAL.parent / "hands-in-the-wild"


def standardize(images):
    """Zero mean, unit variance per image."""
    import keras

    mean = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = keras.ops.std(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-6)


def generated_training_set(folder: Path | None, per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The SIGNS training images and labels: freshly generated, `per_class` of each digit, or read from `folder`'s file."""
    if per_class is None:
        x_train, y_train, _, _, _ = resnets_utils.load_dataset(folder)
        return x_train, y_train.ravel()
    with tqdm(total=6 * per_class, desc="generating", unit="img") as bar:
        return signs_generator.make_split(per_class, TRAIN_SEED, on_image=bar.update)


def silhouettes(images: np.ndarray) -> np.ndarray:
    """The hands' silhouettes, as uint8 white-on-black RGB images: the shape of each hand without how it is painted.

    The mask is `composite_hands.hand_mask`'s colour rule, so it is only meaningful on plain walls.
    """
    masks = np.stack([hand_mask(image) for image in images])
    return np.repeat((masks[..., None] * 255 + 0.5).astype(np.uint8), 3, axis=-1)


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


def models(count: int) -> str:
    """'1 model', '5 models'."""
    return f"{count} model{'' if count == 1 else 's'}"


def report(predictions: list[np.ndarray], labels: np.ndarray, source: str) -> float:
    """Print, over all the seeds' models, how each digit's photos were read, and each model's accuracy; return their mean."""
    print(f"\n{source}, {len(labels)} photos. True digit: accuracy, then how its photos were read as 0 1 2 3 4 5 (all models)")
    predicted, truth = np.concatenate(predictions), np.tile(labels, len(predictions))
    for digit in range(6):
        mine = truth == digit
        counts = " ".join(f"{n:4d}" for n in np.bincount(predicted[mine], minlength=6))
        print(f"  {digit}: {np.mean(predicted[mine] == digit):6.1%} of {mine.sum()}   [{counts}]")
    each = [float(np.mean(p == labels)) for p in predictions]
    print(
        f"Synthetic-to-real accuracy, {source}: {np.mean(each):.1%}, the mean of {models(len(each))} "
        f"({', '.join(f'{a:.1%}' for a in each)}; chance: 16.7%)"
    )
    return float(np.mean(each))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="Sign Language Digits or other real photos, DIR/<digit>/*.jpg")
    parser.add_argument("--wild", type=Path, default=DEFAULT_WILD, help="photos of hands in everyday rooms, DIR/<digit>/*.jpg (skipped when absent)")
    training = parser.add_mutually_exclusive_group()
    training.add_argument("--data", type=Path, default=None, help="folder of the generated SIGNS files (default: the shipped ones)")
    training.add_argument(
        "--train-per-class", type=at_least(1), default=None, metavar="N",
        help="train on N freshly generated images of each digit instead (the shipped set has 180)",
    )
    parser.add_argument("--epochs", type=at_least(1), default=20)
    parser.add_argument("--seed", type=at_least(0), default=0, help="the first model's seed")
    parser.add_argument(
        "--models", type=at_least(1), default=5,
        help="models trained, with seeds --seed, --seed+1, ... (one model's figure swings by tens of points with its seed)",
    )
    parser.add_argument(
        "--silhouettes", action="store_true",
        help="train and test on the hands' silhouettes only (plain-wall photos; the wild ones are skipped): "
        "do the generated hands have the real ones' shapes, however they are painted?",
    )
    parser.add_argument("--record", action="store_true",
                        help="append the figures to benchmarks/records.jsonl (make realism; the default run only)")
    args = parser.parse_args()
    start = time.perf_counter()

    x_train, y_train = generated_training_set(args.data, args.train_per_class)
    folders = {f"real photos from {args.real}": args.real}
    if args.silhouettes:
        print("note: silhouettes need plain walls; the wild photos are not measured.")
    elif args.wild.is_dir():
        folders[f"wild photos from {args.wild}"] = args.wild
    else:
        print(f"note: no wild photos at {args.wild}; only {args.real} is measured.")
    try:
        sources = {source: read_photo_folder(folder)[:2] for source, folder in folders.items()}
    except PhotoFolderError as error:
        raise SystemExit(f"Error: {error}") from None
    if args.silhouettes:
        x_train = silhouettes(x_train)
        sources = {f"silhouettes of the {source}": (silhouettes(x), y) for source, (x, y) in sources.items()}

    predictions: dict[str, list[np.ndarray]] = {source: [] for source in sources}
    for seed in range(args.seed, args.seed + args.models):
        print(f"\nModel {seed - args.seed + 1} of {args.models} (seed {seed})")
        model = small_cnn(seed)
        model.fit(resnets_utils.preprocess(x_train), y_train, epochs=args.epochs, batch_size=32, verbose=2)
        for source, (x_real, _) in sources.items():
            predictions[source].append(model.predict(resnets_utils.preprocess(x_real), verbose=0).argmax(axis=1))
    shapes = " (their silhouettes)" if args.silhouettes else ""
    print(f"\nTrained {models(args.models)} on {len(x_train)} generated images{shapes} only.")
    means = [report(predictions[source], y_real, source) for source, (_, y_real) in sources.items()]
    if args.record:
        defaults = vars(parser.parse_args([]))
        changed = sorted(name for name, value in vars(args).items() if name != "record" and value != defaults[name])
        if changed or len(means) < 2:
            print(f"Not recorded: the benchmark is the default run on both photo sets ({', '.join(changed) or 'wild photos missing'}).")
        else:
            benchmarks.record("make realism", {"sld_accuracy": round(means[0], 4), "wild_accuracy": round(means[1], 4),
                                               "minutes": round((time.perf_counter() - start) / 60, 1)})

if __name__ == "__main__":
    main()
