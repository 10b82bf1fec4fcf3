"""Real photographs for serving tests and benchmarks, as model input tensors.

Photos come from `var/sources/manifest.json` (Debian wallpaper/sample packages fetched by
`python -m training.sources`); on a clean clone the committed real photos in
`tests/fixtures/photos/` come first, and only beyond those do synthetic gradients stand in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from service.iqa.preprocess import to_model_input
from tests import imagefactory

MANIFEST = Path(__file__).resolve().parents[2] / "var" / "sources" / "manifest.json"
FIXTURE_PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def photo_paths(count: int, min_side: int = 256, max_side: int = 2048) -> list[Path]:
    """Up to `count` real photo paths: the sources manifest if fetched, else the committed fixtures."""
    if not MANIFEST.is_file():
        return sorted(FIXTURE_PHOTOS.glob("*.jpg"))[:count]
    entries = [e for e in json.loads(MANIFEST.read_text()) if e.get("kind") == "photo"]
    fitting = [
        e
        for e in entries
        if min_side <= min(e["width"], e["height"]) and max(e["width"], e["height"]) <= max_side
    ]
    root = MANIFEST.parents[2]
    paths = [root / e["path"] for e in sorted(fitting, key=lambda e: e["path"])]
    return [p for p in paths if p.is_file()][:count]


def load_rgb(path: Path, long_side: int | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8, optionally resized so its long side is `long_side`."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    if long_side is not None:
        scale = long_side / max(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BOX)
    return np.asarray(rgb)


def photo_batch(count: int) -> np.ndarray:
    """UINT8 [count, 3, 320, 320] model input: real photos where available, synthetic gradients otherwise."""
    images = [load_rgb(p) for p in photo_paths(count)]
    while len(images) < count:
        k = len(images)
        images.append(imagefactory.gradient(400 + 37 * k, 300 + 23 * k))
    return np.stack([to_model_input(rgb) for rgb in images])
