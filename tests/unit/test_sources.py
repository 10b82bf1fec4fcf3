"""Photo sources: reserved packages stay out of training, carving and filtering behave."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from training import sources


def _jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_reserved_packages_are_never_in_the_train_split() -> None:
    """Every reserved package maps to eval; every training package maps to train; none is both."""
    assert all(sources.split_for(p) == "eval" for p in sources.RESERVED_PACKAGES)
    assert all(sources.split_for(p) == "train" for p in sources.TRAIN_PACKAGES)
    assert not set(sources.RESERVED_PACKAGES) & set(sources.TRAIN_PACKAGES)


def test_manifest_round_trip_keeps_reserved_images_in_eval(tmp_path: Path) -> None:
    """A manifest written and read back keeps each image's package and split."""
    entries = [
        sources.SourceImage(f"/x/{p}.jpg", p, "GPL-2+", sources.split_for(p), "photo", 640, 480, p)
        for p in sources.ALL_PACKAGES
    ]
    path = tmp_path / "manifest.json"
    sources.write_manifest(entries, path)
    loaded = sources.load_manifest(path)
    assert loaded == entries
    assert {e.package for e in loaded if e.split == "train"}.isdisjoint(sources.RESERVED_PACKAGES)


def test_carving_finds_jpegs_embedded_in_a_binary_container() -> None:
    """JPEG streams between arbitrary bytes are found whole and decode at their true size."""
    blob = b"EET\x00" + b"\x01" * 100 + _jpeg(64, 48) + b"\x00\xff\xd8" * 5 + _jpeg(320, 256) + b"tail"
    sizes = [Image.open(io.BytesIO(c)).size for c in sources.carve_jpegs(blob)]
    assert sizes == [(64, 48), (320, 256)]


def test_licence_is_read_from_the_debian_copyright_file(tmp_path: Path) -> None:
    """The distinct `License:` names of the copyright file are joined in order."""
    doc = tmp_path / "usr/share/doc/pkg"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Files: *\nLicense: GPL-2+\n\nFiles: a\nLicense: CC0\n\nLicense: GPL-2+\n text\n"
    )
    assert sources.package_licence(tmp_path, "pkg") == "GPL-2+ / CC0"
    assert sources.package_licence(tmp_path, "missing") == "unknown"


def test_opencv_blur_report_images_are_excluded(tmp_path: Path) -> None:
    """text_defocus.jpg and text_motion.jpg (real-blur report) and synthetic charts are never candidates."""
    data = tmp_path / "usr/share/doc/opencv-doc/examples/data"
    data.mkdir(parents=True)
    for name in ("text_defocus.jpg", "text_motion.jpg", "fruits.jpg", "chessboard.png", "opencv-logo.png"):
        (data / name).write_bytes(b"x")
    names = {p.name for p, _ in sources.candidate_files("opencv-doc", tmp_path)}
    assert names == {"fruits.jpg"}
