"""Download the real hand photos and convert them to SIGNS files: `python -m tools.data.download_real`.

The photos are classes 0-5 of the Sign Language Digits Dataset (Mavi 2020, Apache-2.0),
github.com/ardamavi/Sign-Language-Digits-Dataset, folder Dataset/<digit>/. The kit lists
every file with its SHA-256 in `datasets/sign_language_digits.sha256`; each download is
checked against it. A run that stops (offline, interrupted) keeps what it has: run it
again and it resumes. `--mirror` reads from another copy (a folder or URL with the same
`<digit>/<file>` layout), which is how the tests use the copy in ../shared.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from resnets_utils import KIT_DIR
from tools.data.import_photos import import_photos

UPSTREAM = "https://raw.githubusercontent.com/ardamavi/Sign-Language-Digits-Dataset/master/Dataset"
MANIFEST = KIT_DIR / "datasets" / "sign_language_digits.sha256"
DEFAULT_PHOTOS = KIT_DIR / "build" / "sign-language-digits"
DEFAULT_SIGNS = KIT_DIR / "build" / "real-signs"


class DownloadError(RuntimeError):
    """The photos cannot be fetched or do not match the kit's checksums."""


def read_manifest(path: Path = MANIFEST) -> list[tuple[str, str]]:
    """(sha256, 'digit/file') for every photo, in the order of the manifest."""
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries.append((digest, name.strip()))
    return entries


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_url(mirror: str, name: str) -> str:
    """The URL of `name` (digit/file) at `mirror`: an http(s) or file URL, or a plain folder."""
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
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = offset and getattr(response, "status", 200) == 206
        with open(part, "ab" if resumed else "wb") as file:
            while chunk := response.read(1 << 16):
                file.write(chunk)
    part.replace(target)


def download(mirror: str, folder: Path, manifest: Path = MANIFEST, timeout: float = 30, progress: bool = True) -> int:
    """Fetch every photo of the manifest missing or damaged in `folder`; return how many were fetched."""
    entries = read_manifest(manifest)
    todo = [(digest, name) for digest, name in entries if not ((folder / name).is_file() and sha256(folder / name) == digest)]
    for digest, name in tqdm(todo, desc="Downloading photos", unit="photo", disable=not progress or not todo):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        url = source_url(mirror, name)
        try:
            fetch(url, target, timeout)
        except (urllib.error.URLError, OSError) as error:
            have = len(entries) - len(todo) + todo.index((digest, name))
            reason = getattr(error, "reason", error)
            raise DownloadError(
                f"Cannot fetch {url} ({reason}). Are you offline? The {have} photos already in {folder} are kept; "
                "run the command again to resume."
            ) from None
        if sha256(target) != digest:
            target.unlink()
            raise DownloadError(f"{url} does not match the kit's checksum in {manifest.name}; it was not kept. "
                                "The upstream file may have changed: try again later or use --mirror.")
    return len(todo)


def write_manifest(folder: Path, manifest: Path = MANIFEST) -> int:
    """List every photo of `folder`/<0-5>/ with its SHA-256 (how the kit's manifest was made)."""
    photos = sorted(path for digit in "012345" for path in (folder / digit).iterdir() if path.is_file())
    manifest.write_text("".join(f"{sha256(path)}  {path.parent.name}/{path.name}\n" for path in photos))
    return len(photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", default=UPSTREAM, help="where to read the photos (URL or folder of <digit>/<file>)")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="where to keep the photos")
    parser.add_argument("--out", type=Path, default=DEFAULT_SIGNS, help="where to write the SIGNS files")
    parser.add_argument("--write-manifest", type=Path, metavar="DIR", help="(maintainers) list DIR's photos as the manifest")
    args = parser.parse_args()
    if args.write_manifest:
        count = write_manifest(args.write_manifest)
        return print(f"Wrote {MANIFEST} ({count} photos).")
    try:
        fetched = download(args.mirror, args.photos)
    except DownloadError as error:
        sys.exit(f"Error: {error}")
    print(f"{len(read_manifest())} photos in {args.photos}, all checked ({fetched} downloaded now).")
    skipped = import_photos(args.photos, args.out)
    print(f"Wrote SIGNS files from real photos to {args.out} ({len(skipped)} skipped).")
    print(f"Use them in the notebooks with: RESNETS_DATASETS={args.out} make lab")


if __name__ == "__main__":
    main()
