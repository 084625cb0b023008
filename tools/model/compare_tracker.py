"""The kit beside a hand tracker on the same held-out photos: `python -m tools.model.compare_tracker [--record]`.

`make compare-tracker` runs it. Every hand of the wild photos' test sessions (`frames.csv`,
sessions `tools.data.real_splits.WILD_TEST_SESSIONS`, never trained on) is framed three ways:
- a tight crop: the square of 1.15 times the hand's box, as the shared crops are cut;
- a half-frame crop: a square of 2.2 times the box, centred on it (the hand fills about half);
- the whole photo, for photos with one hand (a webcam selfie).
The kit reads each with `resnets_utils.predict_photo` (find the hand, then read it); MediaPipe
Hands with a finger-counting rule (`tools/model/tracker_fingers.py`, in its own environment)
counts the fingers of the same files. To tell which stage costs what, the kit's reader also reads
each photo through two other finders: the hand's labelled box (a finder that never errs) and the
box around the tracker's landmarks (MediaPipe's palm detector as the finder). All are scored by
mean per-class accuracy of their answer (for the kit, its best guess, as if there were no "not
sure"), where "no hand found" counts as wrong; beside it, how many photos the kit answers above its
"not sure" threshold, and how many of those it reads right. The framed photos are written to a
temporary folder and deleted: they hold the shared photos' pixels, which never enter the repository.

`--reader` and `--finder` measure a candidate, such as `make pretrained`'s in `build/pretrained/`, instead
of the shipped files; judged on `--part validation` beside the shipped ones, it tells whether to ship it.
The shipped files then read the same photos too, and a last table counts the photos only one of the two
reads right: a mean over a few dozen photos moves by points with one photo of a rare digit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

import resnets_utils
from resnets_utils import Box
from tools.data import real_splits
from tools.docs import benchmarks
from tools.model.train_finder import read_frames

FRAMINGS = {"tight crop": 1.15, "half-frame crop": 2.2, "whole photo": None}
TRACKER_PYTHON = resnets_utils.KIT_DIR / ".venv-tracker" / "bin" / "python"
TRACKER_SCRIPT = Path(__file__).with_name("tracker_fingers.py")


class TrackerError(RuntimeError):
    """The tracker's environment is missing or its run failed."""


def write_framings(frames: dict[str, list], folder: Path) -> dict[str, list[tuple[Path, int, Box]]]:
    """Write every framing of every labelled hand to `folder` as JPEG; return {framing: [(file, digit, box)]},
    `box` the labelled hand's in the file's pixels."""
    written: dict[str, list[tuple[Path, int, Box]]] = {name: [] for name in FRAMINGS}
    for number, (path, hands) in enumerate(sorted(frames.items())):
        photo = Image.open(path).convert("RGB")
        for place, (label, box) in enumerate(hands):
            if label < 0:
                continue
            for name, scale in FRAMINGS.items():
                if scale is None:
                    if len(hands) != 1:
                        continue
                    picture, corner = photo, Box(0, 0, photo.width, photo.height)
                else:
                    corner = resnets_utils.hand_crop_box(box, photo.width, photo.height, scale)
                    picture = photo.crop(tuple(corner))
                file = folder / f"{name.replace(' ', '-')}-{number}-{place}.jpg"
                picture.save(file, quality=95)
                written[name].append((file, label, Box(box.left - corner.left, box.top - corner.top,
                                                       box.right - corner.left, box.bottom - corner.top)))
    return written


def mean_per_class(labels: np.ndarray, answers: list[int | None]) -> float:
    """Mean over the digits of the share of photos answered with their digit (None is never right)."""
    right = np.array([answer == label for answer, label in zip(answers, labels)])
    return float(np.mean([right[labels == digit].mean() for digit in np.unique(labels)]))


def run_tracker(files: list[Path], folder: Path) -> dict[str, dict | None]:
    """Run MediaPipe Hands in its own environment over `files`: {file: {"fingers": n, "box": [left, top, right,
    bottom] in the file's pixels} of the larger hand, or None}; raise TrackerError when it cannot run."""
    if not TRACKER_PYTHON.is_file():
        raise TrackerError(f"{TRACKER_PYTHON} not found: `make compare-tracker` creates the tracker's environment first.")
    listing, out = folder / "photos.json", folder / "hands.json"
    listing.write_text(json.dumps([str(file) for file in files]))
    done = subprocess.run([str(TRACKER_PYTHON), str(TRACKER_SCRIPT), str(listing), str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise TrackerError(f"MediaPipe Hands failed ({TRACKER_SCRIPT.name}):\n{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def read_box(model, file: Path, box: Box | None, threshold: float) -> resnets_utils.Reading:
    """The kit's reader on a hand whose box (in the file's pixels) comes from elsewhere (None: no hand), read
    from the pixels `predict_photo` reads."""
    image, factor, _name = resnets_utils._working_photo(file, None)
    hands = [] if box is None else [resnets_utils.FoundHand(box.scaled(1 / factor), 1.0)]
    return resnets_utils.read_found_hands(model, image, hands, threshold, factor)


def best_guess(reading: resnets_utils.Reading) -> int | None:
    """The reading's digit as if there were no "not sure"; None when no hand was found."""
    return None if reading.hands == 0 else int(reading.probabilities.argmax())


def compare(model, finder, threshold: float, wild: Path, tracker: bool = True, part: str = "test") -> dict:
    """Return the figures of the kit (`model` reading what `finder` finds, "not sure" under `threshold`), of its
    reader on the labelled box and on the tracker's box, and of the tracker, on the three framings of one part's
    sessions (the test sessions)."""
    frames = read_frames(wild)[part]
    figures: dict = {"photos": {}, "kit": {}, "kit_right": {}, "kit_answered": {}, "kit_right_when_answered": {},
                     "reader_on_labelled_box": {}, "reader_on_tracker_box": {}, "tracker": {}, "tracker_no_hand": {}}
    with tempfile.TemporaryDirectory(prefix="compare-tracker-") as temporary:
        framings = write_framings(frames, Path(temporary))
        tracked = run_tracker([file for hands in framings.values() for file, _, _ in hands], Path(temporary)) if tracker else {}
        for name, hands in framings.items():
            labels = np.array([label for _, label, _ in hands])
            readings = [resnets_utils.predict_photo(model, file, threshold, finder=finder)
                        for file, _, _ in tqdm(hands, desc=f"The kit reads: {name}", unit="photo")]
            digits = [reading.digit for reading in readings]
            best_guesses = [best_guess(reading) for reading in readings]
            answered = np.array([digit is not None for digit in digits])
            figures["photos"][name] = len(hands)
            figures["kit"][name] = mean_per_class(labels, best_guesses)
            figures["kit_right"][name] = [guess == label for guess, label in zip(best_guesses, labels)]
            figures["kit_answered"][name] = float(answered.mean())
            figures["kit_right_when_answered"][name] = float(np.mean(np.array(digits)[answered] == labels[answered])) if answered.any() else 0.0
            figures["reader_on_labelled_box"][name] = mean_per_class(labels, [
                best_guess(read_box(model, file, box, threshold)) for file, _, box in tqdm(hands, desc=f"On the labelled box: {name}", unit="photo")])
            if tracker:
                found = [tracked[str(file)] for file, _, _ in hands]
                figures["tracker"][name] = mean_per_class(labels, [hand and hand["fingers"] for hand in found])
                figures["tracker_no_hand"][name] = float(np.mean([hand is None for hand in found]))
                figures["reader_on_tracker_box"][name] = mean_per_class(labels, [
                    best_guess(read_box(model, file, hand and Box(*hand["box"]), threshold))
                    for (file, _, _), hand in zip(tqdm(hands, desc=f"On the tracker's box: {name}", unit="photo"), found)])
    return figures


def seconds_per_phone_photo(model, finder, repeats: int = 3) -> float:
    """Seconds `predict_photo` takes for a 12-megapixel JPEG (4032x3024, drawn here), after a first call."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "phone.jpg"
        Image.fromarray(rng.integers(0, 255, (3024 // 8, 4032 // 8, 3), dtype=np.uint8)).resize((4032, 3024)).save(path, quality=90)
        resnets_utils.predict_photo(model, path, finder=finder)
        started = time.perf_counter()
        for _ in range(repeats):
            resnets_utils.predict_photo(model, path, finder=finder)
        return (time.perf_counter() - started) / repeats


def table(figures: dict) -> str:
    names = list(figures["kit"])
    lines = ["| held-out photos, framed as | photos | kit: mean per-class accuracy | kit: answered (right when answering) "
             "| kit's reader on the labelled box | kit's reader on the tracker's box | MediaPipe Hands + rule |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        tracker = f"{figures['tracker'][name]:.1%} (no hand found in {figures['tracker_no_hand'][name]:.0%})" if name in figures["tracker"] else "not run"
        on_tracker_box = f"{figures['reader_on_tracker_box'][name]:.1%}" if name in figures["reader_on_tracker_box"] else "not run"
        lines.append(f"| {name} | {figures['photos'][name]} | {figures['kit'][name]:.1%} | "
                     f"{figures['kit_answered'][name]:.0%} ({figures['kit_right_when_answered'][name]:.0%}) | "
                     f"{figures['reader_on_labelled_box'][name]:.1%} | {on_tracker_box} | {tracker} |")
    return "\n".join(lines)


def paired_table(candidate: dict, shipped: dict) -> str:
    """The photos a candidate and the shipped files read differently, framing by framing.

    A mean per-class accuracy over a few dozen photos moves by points when one photo of a rare digit
    changes, so a candidate is judged by the photos themselves: those only it reads right against
    those only the shipped files read right.
    """
    lines = ["| framing | photos | read right by the candidate | by the shipped files | only by the candidate | only by the shipped files |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, right in candidate["kit_right"].items():
        mine, theirs = np.array(right), np.array(shipped["kit_right"][name])
        lines.append(f"| {name} | {len(mine)} | {mine.sum()} | {theirs.sum()} | {(mine & ~theirs).sum()} | {(theirs & ~mine).sum()} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wild", type=Path, default=real_splits.WILD_PHOTOS, help="the wild photos' folder (frames.csv, frames/)")
    parser.add_argument("--no-tracker", action="store_true", help="measure the kit only")
    parser.add_argument("--part", choices=("test", "validation"), default="test", help="the sessions to read (validation: to choose between finders)")
    parser.add_argument("--reader", type=Path, default=resnets_utils.PRETRAINED,
                        help="MODEL.json/.npz to measure, with its MODEL.not-sure.json (a candidate: judge it on --part validation)")
    parser.add_argument("--finder", type=Path, default=resnets_utils.FINDER, help="FINDER.json/.npz to measure")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/records.jsonl")
    args = parser.parse_args()
    changed = [name for name in ("wild", "part", "reader", "finder") if getattr(args, name) != parser.get_default(name)]
    candidate = "reader" in changed or "finder" in changed
    try:
        model = resnets_utils.load_pretrained(args.reader)
        finder = resnets_utils.load_hand_finder(args.finder, reader=model)
        figures = compare(model, finder, resnets_utils.not_sure_below(args.reader), args.wild, tracker=not args.no_tracker, part=args.part)
        figures["seconds_per_phone_photo"] = seconds_per_phone_photo(model, finder)
        if candidate:  # the shipped files read the same photos, to compare photo by photo
            shipped_model = resnets_utils.load_pretrained()
            shipped = compare(shipped_model, resnets_utils.load_hand_finder(reader=shipped_model), resnets_utils.not_sure_below(),
                              args.wild, tracker=False, part=args.part)
    except (resnets_utils.ModelFileError, resnets_utils.PhotoError, real_splits.RealDataError, TrackerError) as error:
        raise SystemExit(f"Error: {error}") from None
    print(table(figures))
    print(f"\nOne 12-megapixel photo: {figures['seconds_per_phone_photo']:.2f} s with predict_photo.")
    if candidate:
        print(f"\nThe shipped reader and finder on the same photos:\n{table(shipped)}\n\n{paired_table(figures, shipped)}")
    if args.record:
        if args.no_tracker or changed:
            print(f"Not recorded: the benchmark is both readers, the shipped model and finder, on the shared test sessions ({', '.join(changed) or 'no tracker'}).")
            return
        keys = {"tight crop": "tight", "half-frame crop": "half", "whole photo": "whole"}
        benchmarks.record("make compare-tracker", {
            **{f"kit_{keys[name]}": round(value, 4) for name, value in figures["kit"].items()},
            **{f"tracker_{keys[name]}": round(value, 4) for name, value in figures["tracker"].items()},
            **{f"reader_on_labelled_box_{keys[name]}": round(value, 4) for name, value in figures["reader_on_labelled_box"].items()},
            **{f"reader_on_tracker_box_{keys[name]}": round(value, 4) for name, value in figures["reader_on_tracker_box"].items()},
            "kit_whole_answered": round(figures["kit_answered"]["whole photo"], 4),
            "kit_whole_right_when_answered": round(figures["kit_right_when_answered"]["whole photo"], 4),
            "seconds_per_phone_photo": round(figures["seconds_per_phone_photo"], 3)})


if __name__ == "__main__":
    main()
