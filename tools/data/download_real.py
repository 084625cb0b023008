"""Download the real hand photos the kit can train on: `python -m tools.data.download_real`.

Two sources, both Apache-2.0, each listed file by file with its SHA-256:
- the Sign Language Digits Dataset (Mavi 2020), classes 0-5 of
  github.com/ardamavi/Sign-Language-Digits-Dataset, folder Dataset/<digit>/
  (`datasets/sign_language_digits.sha256`), converted to SIGNS files;
- HandsDataset (Soubhi Hadri), github.com/SubhiH/HandsDataset at commit 73228cb, the photos and
  box files of images/train/ and images/test/ (the list `source.sha256` that comes with
  ../shared/data/hands-in-the-wild/, or --wild-checksums FILE: the kit keeps no file from there), cropped
  around each hand by `tools.data.crop_hands` as in ../shared/data/hands-in-the-wild/.
Each file is checked against its checksum as it arrives. A run that stops (offline,
interrupted) keeps what it has: run it again and it resumes, a half-fetched file from where it
stopped when the server allows it. `--mirror` and `--wild-mirror` read from other copies (a
folder or URL with the same layout), which is how the tests use generated ones.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from resnets_utils import KIT_DIR, PhotoError
from tools.data.crop_hands import CropError, crop_hands
from tools.data.import_photos import import_photos
from tools.data.real_splits import WILD_SIGNS, RealDataError, write_wild_signs

UPSTREAM = "https://raw.githubusercontent.com/ardamavi/Sign-Language-Digits-Dataset/master/Dataset"
MANIFEST = KIT_DIR / "datasets" / "sign_language_digits.sha256"
DEFAULT_PHOTOS = KIT_DIR / "build" / "sign-language-digits"
DEFAULT_SIGNS = KIT_DIR / "build" / "real-signs"

WILD_UPSTREAM = "https://raw.githubusercontent.com/SubhiH/HandsDataset/73228cb"
WILD_MANIFEST = KIT_DIR.parent / "shared" / "data" / "hands-in-the-wild" / "source.sha256"
DEFAULT_WILD_SOURCE = KIT_DIR / "build" / "hands-dataset"
DEFAULT_WILD_CROPS = KIT_DIR / "build" / "hands-in-the-wild"

# Not pooch, though it fetches and checks hashes well: it fetches each file into a temporary
# file that it deletes when the transfer fails, so an interrupted file starts again from zero,
# and it reads only http(s), ftp, sftp and doi URLs, not the folders that ../shared and the
# tests' generated mirrors are (checked in pooch 1.9.0's core.stream_download and choose_downloader).


class DownloadError(RuntimeError):
    """The files cannot be fetched or do not match the kit's checksums."""


def read_manifest(path: Path = MANIFEST) -> list[tuple[str, str]]:
    """(sha256, relative path) for every file, in the order of the manifest."""
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries.append((digest, name.strip()))
    return entries


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_intact(path: Path, digest: str) -> bool:
    return path.is_file() and sha256(path) == digest


def source_url(mirror: str, name: str) -> str:
    """The URL of `name` (a relative path) at `mirror`: an http(s) or file URL, or a plain folder."""
    if "://" in mirror:
        return f"{mirror.rstrip('/')}/{urllib.request.pathname2url(name)}"
    return Path(mirror, name).resolve().as_uri()


def fetch(url: str, target: Path, timeout: float) -> None:
    """Download `url` to `target` through `target.part`, continuing a partial file where the server allows it."""
    part = target.with_name(target.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "resnets-kit"})
    offset = part.stat().st_size if part.exists() else 0
    if offset and url.startswith("http"):
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416:  # 416: the partial file is not shorter than the file, so it is not a start of it
            raise
        part.unlink()
        return fetch(url, target, timeout)
    with response:
        resumed = offset and getattr(response, "status", 200) == 206
        with open(part, "ab" if resumed else "wb") as file:
            while chunk := response.read(1 << 16):
                file.write(chunk)
            if getattr(response, "length", None):  # http.client ends a cut-off body quietly; the bytes still owed tell
                raise ConnectionError(f"the connection broke after {file.tell()} bytes")
    part.replace(target)


def fetch_checked(url: str, target: Path, digest: str, manifest: Path, timeout: float) -> None:
    """Fetch one file and keep it only if it matches its checksum; raise DownloadError saying why not."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fetch(url, target, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise DownloadError(f"{url} is not at the source (HTTP 404): the mirror lacks it, or the commit is gone.") \
                from None
        raise DownloadError(f"Cannot fetch {url} (HTTP {error.code} {error.reason}).") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            raise DownloadError(f"{url} is not at the source: the mirror lacks this file.") from None
        raise DownloadError(f"Cannot fetch {url} ({error.reason}). Are you offline?") from None
    except OSError as error:  # a connection reset or timeout in the middle of the file
        raise DownloadError(f"Cannot fetch {url} ({error}). Are you offline?") from None
    if sha256(target) != digest:
        target.unlink()
        raise DownloadError(f"{url} does not match the kit's checksum in {manifest.name}; it was not kept. "
                            "The upstream file may have changed: try again later or use a mirror.")


def download(
    mirror: str, folder: Path, manifest: Path = MANIFEST, timeout: float = 30, progress: bool = True, workers: int = 8
) -> int:
    """Fetch every file of the manifest missing or damaged in `folder`, `workers` at once; return how many were fetched.

    Raises DownloadError naming the file that could not be fetched or did not match its
    checksum, and saying how many files are kept for the next run to resume from.
    """
    entries = read_manifest(manifest)
    todo = [(digest, name) for digest, name in entries if not is_intact(folder / name, digest)]
    bar = tqdm(total=len(todo), desc=f"Downloading {manifest.stem}", unit="file", disable=not progress or not todo)
    # Several at once: the files are small (an 800x600 photo, a box file under 1 kB), so one download at a time
    # would spend most of its time waiting for the server to answer.
    with bar, ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fetch_checked, source_url(mirror, name), folder / name, digest, manifest, timeout)
                   for digest, name in todo]
        for future in as_completed(futures):
            if future.exception() is not None:
                pool.shutdown(cancel_futures=True)
                fetched = sum(1 for job in futures if not job.cancelled() and job.exception() is None)
                have = len(entries) - len(todo) + fetched
                raise DownloadError(f"{future.exception()} {have} of the {len(entries)} files are checked and kept in "
                                    f"{folder}; run the command again to resume.")
            bar.update()
    return len(todo)


def write_manifest(folder: Path, manifest: Path = MANIFEST, pattern: str = "[0-5]/*") -> int:
    """List every file of `folder` matching `pattern` with its SHA-256 (how the kit's manifests are made)."""
    files = sorted(path for path in folder.glob(pattern) if path.is_file())
    manifest.write_text("".join(f"{sha256(path)}  {path.relative_to(folder).as_posix()}\n" for path in files))
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", default=UPSTREAM,
                        help="where to read the Sign Language Digits photos (URL or folder of <digit>/<file>)")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="where to keep those photos")
    parser.add_argument("--out", type=Path, default=DEFAULT_SIGNS, help="where to write their SIGNS files")
    parser.add_argument("--wild-mirror", default=WILD_UPSTREAM,
                        help="where to read HandsDataset (URL or folder of images/<train|test>/<file>)")
    parser.add_argument("--wild-source", type=Path, default=DEFAULT_WILD_SOURCE,
                        help="where to keep its photos and box files")
    parser.add_argument("--wild-out", type=Path, default=DEFAULT_WILD_CROPS,
                        help="where to write its hand crops and index.csv")
    parser.add_argument("--wild-signs", type=Path, default=WILD_SIGNS,
                        help="where to write the SIGNS files of its crops, split by session")
    parser.add_argument("--wild-checksums", type=Path, default=WILD_MANIFEST,
                        help="HandsDataset's list of SHA-256 sums (default: the one beside ../shared's crops)")
    parser.add_argument("--write-manifest", type=Path, metavar="DIR",
                        help="(maintainers) list DIR's Sign Language Digits photos as the manifest")
    args = parser.parse_args()
    if args.write_manifest:
        count = write_manifest(args.write_manifest)
        return print(f"Wrote {MANIFEST} ({count} photos).")
    try:
        fetched = download(args.mirror, args.photos)
        print(f"{len(read_manifest())} photos in {args.photos}, all checked ({fetched} downloaded now).")
        skipped = import_photos(args.photos, args.out)
        print(f"Wrote SIGNS files from real photos to {args.out} ({len(skipped)} skipped).")
        print(f"Use them in the notebooks with: RESNETS_DATASETS={args.out.resolve()} make lab")
        if not args.wild_checksums.is_file():
            raise DownloadError(f"HandsDataset's checksum list {args.wild_checksums} not found: it comes with "
                                "../shared/data/hands-in-the-wild/ (source.sha256); give its path with --wild-checksums FILE")
        fetched = download(args.wild_mirror, args.wild_source, args.wild_checksums)
        print(f"{len(read_manifest(args.wild_checksums))} photos and box files in {args.wild_source}, all checked "
              f"({fetched} downloaded now).")
        count, skipped = crop_hands(args.wild_source, args.wild_out)
    except (DownloadError, CropError) as error:
        sys.exit(f"Error: {error}")
    for path, reason in skipped:
        print(f"skipped {path}: {reason}")
    print(f"Wrote {count} hands in everyday rooms to {args.wild_out}, listed with their sessions in "
          f"{args.wild_out / 'index.csv'} ({len(skipped)} skipped).")
    try:
        counts = write_wild_signs(args.wild_out, args.wild_signs)
    except (RealDataError, PhotoError) as error:
        sys.exit(f"Error: {error}")
    print(f"Wrote their SIGNS files, split by session ({counts['train']} training and {counts['test']} test photos), "
          f"to {args.wild_signs}: RESNETS_DATASETS={args.wild_signs.resolve()} make lab")


if __name__ == "__main__":
    main()
