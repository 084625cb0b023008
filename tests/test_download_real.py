"""The real-photo downloader checks every file, resumes, says clearly what went wrong, and crops the wild photos."""

from __future__ import annotations

import csv
import functools
import http.server
import shutil
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tools.data.crop_hands import INDEX_COLUMNS, CropError, crop_box, crop_hands, session_of
from tools.data.download_real import MANIFEST, WILD_MANIFEST, DownloadError, download, read_manifest, write_manifest
from tools.data.import_photos import import_photos

SHARED_WILD = Path(__file__).resolve().parents[2] / "shared" / "data" / "hands-in-the-wild"

# The generated mirror's pictures: (split, stem, size, [(label, box), ...]); each hand is painted in its own colour.
PICTURES = [
    ("train", "16_pic00001", (200, 150), [(0, (20, 30, 60, 80)), (3, (150, 90, 190, 148))]),  # the second at an edge
    ("train", "16_pic00002", (200, 150), [(5, (70, 20, 130, 100))]),
    ("test", "pic00047", (160, 120), [(2, (10, 10, 150, 118))]),  # taller than the photo allows: capped
]
COLOURS = [(230, 40, 40), (40, 200, 40), (40, 40, 230), (230, 200, 40)]


def box_xml(stem: str, size: tuple[int, int], hands: list[tuple[int | str, tuple]]) -> str:
    """A Pascal VOC box file like HandsDataset's; labels and corners are written as given."""
    objects = "".join(
        f"<object><name>{label}-hand</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for label, (x0, y0, x1, y1) in hands
    )
    return (f"<annotation><folder>data</folder><filename>{stem}.jpg</filename>"
            f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>{objects}</annotation>")


@pytest.fixture
def small_mirror(tmp_path: Path) -> tuple[Path, Path]:
    """A Sign Language Digits mirror with two small files per digit, and its manifest."""
    mirror = tmp_path / "mirror"
    for digit in "012345":
        (mirror / digit).mkdir(parents=True)
        for number in range(2):
            (mirror / digit / f"IMG_{number}.JPG").write_bytes(f"photo {digit}-{number}".encode() * 100)
    manifest = tmp_path / "manifest.sha256"
    write_manifest(mirror, manifest)
    return mirror, manifest


@pytest.fixture
def wild_mirror(tmp_path: Path) -> tuple[Path, Path]:
    """A HandsDataset mirror in the source's layout (generated photos, box files), and its own manifest."""
    mirror = tmp_path / "wild-mirror"
    colours = iter(COLOURS)
    for split, stem, size, hands in PICTURES:
        (mirror / "images" / split).mkdir(parents=True, exist_ok=True)
        photo = Image.new("RGB", size, (128, 128, 128))
        for _, box in hands:
            photo.paste(next(colours), box)
        photo.save(mirror / "images" / split / f"{stem}.jpg", quality=95)
        (mirror / "images" / split / f"{stem}.xml").write_text(box_xml(stem, size, hands))
    manifest = tmp_path / "wild.sha256"
    write_manifest(mirror, manifest, "images/*/*")
    return mirror, manifest


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a mirror like GitHub's raw file server: honours `Range: bytes=N-` (416 past the end).

    Logs (path, first byte asked) in `server.asked`; cuts the first answer for a path in
    `server.cut_after` after that many bytes, as a dropped connection does.
    """

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        start = int(self.headers.get("Range", "bytes=0-").removeprefix("bytes=").rstrip("-"))
        self.server.asked.append((self.path, start))
        if start and start >= len(data):
            return self.send_error(416)
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = self.server.cut_after.pop(self.path, None)
        self.wfile.write(data[start:cut])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a local HTTP server for a folder; return its URL. The server is `serve.server`."""
    servers = []

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=folder))
        server.asked, server.cut_after = [], {}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        start.server = server
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_manifest_lists_the_photos_of_all_six_digits():
    names = [name for _, name in read_manifest()]
    assert len(names) > 1200 and {name.split("/")[0] for name in names} == set("012345")


def test_the_wild_manifest_lists_a_photo_and_its_box_file_for_every_picture():
    if not WILD_MANIFEST.is_file():
        pytest.skip(f"HandsDataset's checksum list not present at {WILD_MANIFEST} (../shared is outside the repo)")
    names = [name for _, name in read_manifest(WILD_MANIFEST)]
    photos = {name.removesuffix(".jpg") for name in names if name.endswith(".jpg")}
    boxes = {name.removesuffix(".xml") for name in names if name.endswith(".xml")}
    assert len(names) == len(set(names)) == 2 * len(photos) and photos == boxes
    assert {name.rsplit("/", 1)[0] for name in names} == {"images/train", "images/test"}


def test_crops_and_sessions_are_those_of_the_shared_index():
    if not SHARED_WILD.is_dir():
        pytest.skip(f"wild photos not present at {SHARED_WILD} (../shared is outside the repo)")
    with open(SHARED_WILD / "index.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == INDEX_COLUMNS
    for row in rows:  # every photo in it is 800x600
        box = tuple(int(row[key]) for key in ("xmin", "ymin", "xmax", "ymax"))
        assert crop_box(box, 800, 600) == tuple(int(row[key]) for key in ("crop_x0", "crop_y0", "crop_x1", "crop_y1"))
        assert session_of(Path(row["source_image"]).stem) == row["session"]


def test_a_crop_is_moved_inside_the_photo_and_no_larger_than_its_shorter_side():
    assert crop_box((557, 396, 714, 594), 800, 600) == (522, 372, 749, 600)  # train/16_pic00006.jpg, hand 1
    assert crop_box((163, 1, 569, 563), 800, 600) == (66, 0, 666, 600)  # train/pic00088.jpg


@pytest.mark.parametrize("stem, session", [
    ("16_pic00003", "16"), ("2_pic00474", "2"), ("3_1528499009.07_pic00009", "3_1528499009.07"),
    ("1528664299.56_pic00034", "1528664299.56"), ("pic00047", "pic"), ("Hand_0000026", "Hand"),
])
def test_the_session_is_the_name_before_the_picture_number(stem, session):
    assert session_of(stem) == session


def test_it_downloads_the_real_photos_from_a_mirror_and_converts_them(real_photos, tmp_path):
    fetched = download(str(real_photos), tmp_path / "photos", progress=False)
    assert fetched == len(read_manifest(MANIFEST))
    import_photos(tmp_path / "photos", tmp_path / "signs", progress=False)
    with h5py.File(tmp_path / "signs" / "train_signs.h5") as train, h5py.File(tmp_path / "signs" / "test_signs.h5") as test:
        assert len(train["train_set_x"]) + len(test["test_set_x"]) == fetched
        assert train["train_set_x"].shape[1:] == (64, 64, 3)


def test_it_fetches_a_wild_mirror_and_crops_every_hand_as_the_shared_folder_does(wild_mirror, tmp_path):
    mirror, manifest = wild_mirror
    assert download(str(mirror), tmp_path / "source", manifest, progress=False) == 6
    count, skipped = crop_hands(tmp_path / "source", tmp_path / "crops", progress=False)
    assert (count, skipped) == (4, [])
    with open(tmp_path / "crops" / "index.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == INDEX_COLUMNS
    assert [(row["file"], row["session"], row["hands_in_image"]) for row in rows] == [
        ("0/train_16_pic00001_0.jpg", "16", "2"), ("3/train_16_pic00001_1.jpg", "16", "2"),
        ("5/train_16_pic00002_0.jpg", "16", "1"), ("2/test_pic00047_0.jpg", "pic", "1"),
    ]
    assert rows[3]["crop_y0"] == "0" and rows[3]["crop_y1"] == "120"  # capped at the photo's height
    for row, colour in zip(rows, COLOURS):
        crop = np.asarray(Image.open(tmp_path / "crops" / row["file"]))
        assert crop.shape == (128, 128, 3)
        assert np.abs(crop[64, 64].astype(int) - colour).max() < 30, f"{row['file']} is not centred on its hand"


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


def test_an_interrupted_download_resumes_where_it_stopped(wild_mirror, serve, tmp_path):
    mirror, manifest = wild_mirror
    url = serve(mirror)
    photo = "/images/train/16_pic00002.jpg"
    half = (mirror / photo.lstrip("/")).stat().st_size // 2
    serve.server.cut_after[photo] = half
    with pytest.raises(DownloadError, match=r"Cannot fetch .*16_pic00002\.jpg \(the connection broke after \d+ bytes"):
        download(url, tmp_path / "source", manifest, progress=False)
    assert (tmp_path / "source" / "images" / "train" / "16_pic00002.jpg.part").stat().st_size == half
    serve.server.asked.clear()
    download(url, tmp_path / "source", manifest, progress=False)
    assert (photo, half) in serve.server.asked  # only the missing bytes were asked for
    assert (tmp_path / "source" / photo.lstrip("/")).read_bytes() == (mirror / photo.lstrip("/")).read_bytes()
    assert download(url, tmp_path / "source", manifest, progress=False) == 0


def test_a_partial_file_as_long_as_the_file_is_fetched_again_whole(wild_mirror, serve, tmp_path):
    mirror, manifest = wild_mirror
    url = serve(mirror)
    target = tmp_path / "source" / "images" / "test" / "pic00047.xml"
    target.parent.mkdir(parents=True)
    target.with_name("pic00047.xml.part").write_bytes(b"x" * 10_000)  # the server answers 416 to its Range
    assert download(url, tmp_path / "source", manifest, progress=False) == 6
    assert target.read_bytes() == (mirror / "images" / "test" / "pic00047.xml").read_bytes()


def test_offline_it_fails_clearly_and_keeps_what_it_has(small_mirror, tmp_path):
    _, manifest = small_mirror
    with pytest.raises(DownloadError, match=r"Are you offline\? 0 of the 12 files are checked and kept in .*; run"):
        download("http://127.0.0.1:9/Dataset", tmp_path / "photos", manifest, timeout=2, progress=False)


def test_a_file_that_does_not_match_its_checksum_is_refused(small_mirror, tmp_path):
    mirror, manifest = small_mirror
    changed = tmp_path / "changed"
    shutil.copytree(mirror, changed)
    (changed / "2" / "IMG_1.JPG").write_bytes(b"not the original photo")
    with pytest.raises(DownloadError, match=r"2/IMG_1.JPG does not match the kit's checksum"):
        download(str(changed), tmp_path / "photos", manifest, progress=False)
    assert not (tmp_path / "photos" / "2" / "IMG_1.JPG").exists()


def test_a_corrupted_box_file_is_refused_and_named(wild_mirror, serve, tmp_path):
    mirror, manifest = wild_mirror
    xml = mirror / "images" / "train" / "16_pic00001.xml"
    xml.write_text(xml.read_text().replace("<name>0-hand", "<name>5-hand"))
    with pytest.raises(DownloadError, match=r"images/train/16_pic00001\.xml does not match the kit's checksum"):
        download(serve(mirror), tmp_path / "source", manifest, progress=False)
    assert not (tmp_path / "source" / "images" / "train" / "16_pic00001.xml").exists()


@pytest.mark.parametrize("over_http", [False, True], ids=["folder", "http"])
def test_a_file_missing_from_the_mirror_is_named(wild_mirror, serve, tmp_path, over_http):
    mirror, manifest = wild_mirror
    (mirror / "images" / "test" / "pic00047.jpg").unlink()
    with pytest.raises(DownloadError, match=r"images/test/pic00047\.jpg is not at the source.* of the 6 files are"):
        download(serve(mirror) if over_http else str(mirror), tmp_path / "source", manifest, progress=False)


def test_a_box_file_that_is_not_xml_is_named(wild_mirror, tmp_path):
    mirror, _ = wild_mirror
    (mirror / "images" / "train" / "16_pic00002.xml").write_text("<annotation><object>")
    with pytest.raises(CropError, match=r"16_pic00002\.xml is not a readable box file"):
        crop_hands(mirror, tmp_path / "crops", progress=False)


def test_a_box_file_without_its_photo_is_named(wild_mirror, tmp_path):
    mirror, _ = wild_mirror
    (mirror / "images" / "test" / "pic00047.jpg").unlink()
    with pytest.raises(CropError, match=r"pic00047\.jpg is missing"):
        crop_hands(mirror, tmp_path / "crops", progress=False)


def test_hands_with_an_unusable_label_or_box_are_skipped_with_the_reason(wild_mirror, tmp_path):
    mirror, _ = wild_mirror
    xml = mirror / "images" / "train" / "16_pic00002.xml"
    hands = [("7", (70, 20, 130, 100)), (4, (90, 20, 90, 100)), (4, (70, 20, "130.5", 100)), (4, (70, 20, 130, 100))]
    xml.write_text(box_xml("16_pic00002", (200, 150), hands))
    count, skipped = crop_hands(mirror, tmp_path / "crops", progress=False)
    assert count == 4
    assert skipped == [(xml, "hand 0: label '7-hand' is not one of 0-hand ... 5-hand"),
                       (xml, "hand 1: empty box (90, 20, 90, 100)"),
                       (xml, "hand 2: its box has no whole-number xmin, ymin, xmax, ymax")]
    assert (tmp_path / "crops" / "4" / "train_16_pic00002_3.jpg").is_file()
