"""Regenerate the kit's SIGNS files: `python -m tools.data.make_signs [--out DIR] [--train-per-class N] [--test-per-class N]`.

The defaults make exactly the shipped `datasets/train_signs.h5` (180 images per digit) and
`datasets/test_signs.h5` (20 per digit). A larger `--train-per-class` makes a bigger set for
pretraining, from the same seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

import resnets_utils
from tools.data import signs_generator
from tools.data.signs_files import write_split
from tools.docs import benchmarks

TRAIN_SEED, TEST_SEED = 2015, 2016  # the year ResNets were published, and the next


def make_signs(out_dir: Path, train_per_class: int = 180, test_per_class: int = 20, progress: bool = True) -> None:
    """Render and write both SIGNS files into `out_dir`."""
    for split, per_class, seed in (("train", train_per_class, TRAIN_SEED), ("test", test_per_class, TEST_SEED)):
        bar = tqdm(total=per_class * 6, desc=f"{split}_signs.h5", unit="img", disable=not progress)
        images, labels = signs_generator.make_split(per_class, seed, on_image=bar.update)
        bar.close()
        write_split(out_dir / f"{split}_signs.h5", split, images, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=resnets_utils.KIT_DIR / "datasets", help="folder for the two .h5 files")
    parser.add_argument("--train-per-class", type=int, default=180)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--record", action="store_true", help="append the time to benchmarks/records.jsonl (make bench-data)")
    args = parser.parse_args()
    start = time.perf_counter()
    make_signs(args.out, args.train_per_class, args.test_per_class)
    seconds = time.perf_counter() - start
    total = 6 * (args.train_per_class + args.test_per_class)
    print(f"Wrote {total} images to {args.out} in {seconds:.1f} s.")
    if args.record:
        if (args.train_per_class, args.test_per_class) == (180, 20):
            benchmarks.record("make bench-data", {"seconds": round(seconds, 2)})
        else:
            print("Not recorded: the benchmark is the kit's own 1200 images (180 and 20 of each digit).")


if __name__ == "__main__":
    main()
