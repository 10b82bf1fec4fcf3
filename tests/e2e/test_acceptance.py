"""The merchant-facing acceptance cases, through `idetex check` and gRPC on the stack `make run` starts.

- a dark photo: LOW_BRIGHTNESS guidance (IMG_TOO_DARK) with a box and a fix;
- a product on a grey background under amazon_main: BACKGROUND_NOT_WHITE
  (IMG_NOT_WHITE_BACKGROUND) and a reject verdict;
- a photo with a watermark: TEXT_OR_WATERMARK (IMG_TEXT_OR_WATERMARK) with its box.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from bench.stack import RunningStack
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from tests.support.cli import check_json

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"


def _jpeg(im: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _photo(long_side: int = 1200) -> Image.Image:
    im = Image.open(PHOTOS / "fruits.jpg").convert("RGB")
    scale = long_side / max(im.size)
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)


def dark_photo(path: Path) -> Path:
    rgb = np.asarray(_photo(), dtype=np.float32) / 255.0
    dark = np.clip(rgb**2.2 * 0.10 * 255.0, 0, 255).astype(np.uint8)
    path.write_bytes(_jpeg(Image.fromarray(dark)))
    return path


def product_on_grey() -> bytes:
    """A product photo filling most of a mid-grey 1500x1500 canvas (as a seller shoots on a table)."""
    canvas = Image.new("RGB", (1500, 1500), (128, 128, 128))
    product = _photo(1300)
    canvas.paste(product, ((1500 - product.width) // 2, (1500 - product.height) // 2))
    return _jpeg(canvas)


def watermarked_photo() -> tuple[bytes, tuple[int, int, int, int]]:
    """The photo with a semi-transparent white watermark across its lower right part; its box."""
    base = _photo(1200).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=72)
    text = "SAMPLE shop.example"
    x, y = base.width - 820, base.height - 160
    box = draw.textbbox((x, y), text, font=font)
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 190), stroke_width=2, stroke_fill=(0, 0, 0, 160))
    marked = Image.alpha_composite(base, layer).convert("RGB")
    return _jpeg(marked), (int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def test_idetex_check_on_a_dark_photo_returns_too_dark_with_a_box_and_a_fix(
    stack: RunningStack, tmp_path: Path
):
    """`idetex check dark.jpg --json`: IMG_TOO_DARK guidance that has a box inside the image and a fix."""
    (item,) = check_json(stack, str(dark_photo(tmp_path / "dark.jpg")))
    report = item["report"]
    dark = [g for g in report["guidance"] if g["code"] == "IMG_TOO_DARK"]
    assert dark, [g["code"] for g in report["guidance"]]
    g = dark[0]
    assert "light" in g["fix"].lower(), g
    b = g.get("box") or {}
    x1, y1, x2, y2 = (b.get(k, 0) for k in ("x1", "y1", "x2", "y2"))  # proto JSON leaves out zeros
    assert 0 <= x1 < x2 <= report["width"] and 0 <= y1 < y2 <= report["height"], g


def test_a_product_on_grey_under_amazon_main_is_rejected_for_its_background(stack: RunningStack):
    """Profile amazon_main, grey background: IMG_NOT_WHITE_BACKGROUND guidance and a REJECT verdict."""
    with ValidationClient(stack.addr, stack.api_key) as client:
        resp = client.validate_bytes(
            product_on_grey(), profile="amazon_main", product_id="grey", timeout_s=120
        )
    assert resp.status == pb.JOB_STATUS_DONE, resp
    codes = {g.code for g in resp.report.guidance}
    assert "IMG_NOT_WHITE_BACKGROUND" in codes, codes
    assert resp.report.verdict == pb.VERDICT_REJECT
    check = next(c for c in resp.report.compliance if c.code == "IMG_NOT_WHITE_BACKGROUND")
    assert check.passed == pb.CHECK_RESULT_FAIL and check.required


def test_a_watermarked_photo_returns_text_or_watermark_with_its_box(stack: RunningStack):
    """A semi-transparent watermark: IMG_TEXT_OR_WATERMARK guidance whose box covers the drawn text."""
    data, truth = watermarked_photo()
    with ValidationClient(stack.addr, stack.api_key) as client:
        resp = client.validate_bytes(data, profile="amazon_main", product_id="watermark", timeout_s=120)
    assert resp.status == pb.JOB_STATUS_DONE, resp
    marks = [g for g in resp.report.guidance if g.code == "IMG_TEXT_OR_WATERMARK"]
    assert marks, [g.code for g in resp.report.guidance]
    boxes = [(g.box.x1, g.box.y1, g.box.x2, g.box.y2) for g in marks if g.HasField("box")]
    assert boxes, marks
    assert max(_overlap(b, truth) for b in boxes) >= 0.5, (boxes, truth)
