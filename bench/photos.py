"""The benchmarks' photos: the fixtures at a 1024 px long side, sent as JPEGs with distinct bytes."""

from __future__ import annotations

import io
import time
from pathlib import Path

from PIL import Image

PHOTOS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos"


def base_images(long_side: int = 1024) -> list[Image.Image]:
    images = []
    for path in sorted(PHOTOS.glob("*.jpg")):
        im = Image.open(path).convert("RGB")
        scale = long_side / max(im.size)
        size = (round(im.width * scale), round(im.height * scale))
        images.append(im.resize(size, Image.Resampling.LANCZOS))
    return images


def jpeg_variant(image: Image.Image, n: int) -> bytes:
    """Same pixels, distinct bytes: the comment makes each upload a new job."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92, comment=f"bench-{n}-{time.time_ns()}".encode())
    return buf.getvalue()


def variants(images: list[Image.Image], n: int, start: int = 0) -> list[bytes]:
    """`n` uploads cycling through `images`, numbered from `start` (each a new job)."""
    return [jpeg_variant(images[i % len(images)], start + i) for i in range(n)]
