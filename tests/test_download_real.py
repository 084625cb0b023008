"""The real-photo downloader checks every file, resumes, and says clearly when it cannot reach the source."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest

from tools.data.download_real import MANIFEST, DownloadError, download, read_manifest, write_manifest
from tools.data.import_photos import import_photos


@pytest.fixture
def small_mirror(tmp_path: Path) -> tuple[Path, Path]:
    """A mirror with two small files per digit, and its manifest."""
    mirror = tmp_path / "mirror"
    for digit in "012345":
        (mirror / digit).mkdir(parents=True)
        for number in range(2):
            (mirror / digit / f"IMG_{number}.JPG").write_bytes(f"photo {digit}-{number}".encode() * 100)
    manifest = tmp_path / "manifest.sha256"
    write_manifest(mirror, manifest)
    return mirror, manifest


def test_the_manifest_lists_the_photos_of_all_six_digits():
    names = [name for _, name in read_manifest()]
    assert len(names) > 1200 and {name.split("/")[0] for name in names} == set("012345")


def test_it_downloads_the_real_photos_from_a_mirror_and_converts_them(real_photos, tmp_path):
    fetched = download(str(real_photos), tmp_path / "photos", progress=False)
    assert fetched == len(read_manifest(MANIFEST))
    import_photos(tmp_path / "photos", tmp_path / "signs", progress=False)
    with h5py.File(tmp_path / "signs" / "train_signs.h5") as train, h5py.File(tmp_path / "signs" / "test_signs.h5") as test:
        assert len(train["train_set_x"]) + len(test["test_set_x"]) == fetched
        assert train["train_set_x"].shape[1:] == (64, 64, 3)


def test_a_second_run_fetches_only_what_is_missing_or_damaged(small_mirror, tmp_path):
    mirror, manifest = small_mirror
    photos = tmp_path / "photos"
    assert download(str(mirror), photos, manifest, progress=False) == 12
    (photos / "3" / "IMG_0.JPG").unlink()
    (photos / "4" / "IMG_1.JPG").write_bytes(b"damaged")
    (photos / "3" / "IMG_0.JPG.part").write_bytes(b"photo")  # an interrupted download
    assert download(str(mirror), photos, manifest, progress=False) == 2
    assert download(str(mirror), photos, manifest, progress=False) == 0
    assert (photos / "3" / "IMG_0.JPG").read_bytes() == (mirror / "3" / "IMG_0.JPG").read_bytes()


def test_offline_it_fails_clearly_and_keeps_what_it_has(small_mirror, tmp_path):
    _, manifest = small_mirror
    with pytest.raises(DownloadError, match=r"Are you offline\? The 0 photos already in .* are kept"):
        download("http://127.0.0.1:9/Dataset", tmp_path / "photos", manifest, timeout=2, progress=False)


def test_a_file_that_does_not_match_its_checksum_is_refused(small_mirror, tmp_path):
    mirror, manifest = small_mirror
    changed = tmp_path / "changed"
    shutil.copytree(mirror, changed)
    (changed / "2" / "IMG_1.JPG").write_bytes(b"not the original photo")
    with pytest.raises(DownloadError, match=r"2/IMG_1.JPG does not match the kit's checksum"):
        download(str(changed), tmp_path / "photos", manifest, progress=False)
    assert not (tmp_path / "photos" / "2" / "IMG_1.JPG").exists()
