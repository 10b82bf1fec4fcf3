"""Marketplace rule checks: each returns a ComplianceCheck with what was measured.

passed=None means "not checked" (we cannot measure it here, e.g. text and watermarks when no
text detector is installed); it is reported, never counted as a pass.
"""

from __future__ import annotations

from dataclasses import replace

from service.domain import i18n
from service.domain.findings import ComplianceCheck
from service.domain.guidance import COMPLIANCE_CODES
from service.domain.imaging import DecodedImage
from service.domain.layout import detect_border, product_box, product_fill
from service.domain.measures import WHITE_LEVEL, ImageStats, measure
from service.domain.prediction import Box
from service.domain.profiles import MarketplaceProfile
from service.domain.scene import ProductMask, SceneAnalysis, TextBox


def _check(
    code: str,
    rule: str,
    passed: bool | None,
    message: str,
    *,
    required: bool = True,
    measured: float | None = None,
    boxes: tuple[Box, ...] = (),
) -> ComplianceCheck:
    return ComplianceCheck(code, rule, passed, message, COMPLIANCE_CODES[code], required, measured, boxes)


def check_min_long_side(image: DecodedImage, minimum: int) -> ComplianceCheck:
    side = max(image.width, image.height)
    return _check(
        "IMG_LOW_RESOLUTION",
        f"longest side at least {minimum} px",
        side >= minimum,
        f"The longest side is {side} px",
        measured=float(side),
    )


def check_recommended_long_side(image: DecodedImage, recommended: int) -> ComplianceCheck:
    side = max(image.width, image.height)
    return _check(
        "IMG_BELOW_ZOOM_SIZE",
        f"longest side at least {recommended} px (recommended for zoom)",
        side >= recommended,
        f"The longest side is {side} px",
        required=False,
        measured=float(side),
    )


def check_white_background(
    stats: ImageStats, min_fraction: float, product: ProductMask | None = None
) -> ComplianceCheck:
    """The border band's white share; with a product mask, the band's pixels outside the product
    (a product touching the frame is not background)."""
    share = stats.border_white_fraction
    if product is not None and product.background_white is not None:
        share = product.background_white
    return _check(
        "IMG_NOT_WHITE_BACKGROUND",
        f"pure white background: at least {min_fraction:.0%} of the border pixels RGB >= {WHITE_LEVEL}",
        share >= min_fraction,
        f"{share:.0%} of the border pixels are white (median border colour RGB {stats.border_color})",
        measured=share,
    )


def check_product_fill(
    image: DecodedImage, stats: ImageStats, minimum: float, product: ProductMask | None = None
) -> ComplianceCheck:
    """Amazon's fill: the product box's longer extent over the frame side. `product` is the scene
    analysis's (a salient-object mask, any background); without it, the border-colour heuristic
    (plain backgrounds only)."""
    rule = f"product fills at least {minimum:.0%} of the frame"
    if product is not None:
        return _fill_check(rule, product.box, product.fill, minimum)
    if stats.border_uniformity > 20:
        return _check(
            "IMG_PRODUCT_TOO_SMALL",
            rule,
            None,
            "Not checked: the background is not plain enough to find the product",
        )
    found = product_box(image.rgb, stats.border_color)
    if found is None:
        message = "No product found: the image is a plain background"
        return _check("IMG_PRODUCT_TOO_SMALL", rule, False, message, measured=0.0)
    box = image.to_original_frame(found) if image.reduced else found
    fill = round(product_fill(box, image.width, image.height), 4)
    return _check(
        "IMG_PRODUCT_TOO_SMALL",
        rule,
        fill >= minimum,
        f"The product spans {fill:.0%} of the frame (box {box[0]},{box[1]},{box[2]},{box[3]})",
        measured=fill,
    )


def _fill_check(rule: str, box: Box | None, fill: float, minimum: float) -> ComplianceCheck:
    if box is None:
        message = "No product found: the image is a plain background"
        return _check("IMG_PRODUCT_TOO_SMALL", rule, False, message, measured=0.0)
    return _check(
        "IMG_PRODUCT_TOO_SMALL",
        rule,
        fill >= minimum,
        f"The product spans {fill:.0%} of the frame (box {box[0]},{box[1]},{box[2]},{box[3]})",
        measured=fill,
        boxes=(box,),
    )


def check_jpeg_quality(image: DecodedImage, minimum: int) -> ComplianceCheck:
    rule = f"JPEG quality at least {minimum}"
    if image.source_format != "JPEG":
        return _check(
            "IMG_JPEG_QUALITY_LOW", rule, True, f"Not a JPEG ({image.source_format}): the rule does not apply"
        )
    if image.jpeg_quality is None:
        return _check(
            "IMG_JPEG_QUALITY_LOW", rule, None, "Not checked: the JPEG uses non-standard quantization tables"
        )
    return _check(
        "IMG_JPEG_QUALITY_LOW",
        rule,
        image.jpeg_quality >= minimum,
        f"The JPEG was saved at quality {image.jpeg_quality}",
        measured=float(image.jpeg_quality),
    )


def check_no_border(image: DecodedImage) -> ComplianceCheck:
    border = detect_border(image.rgb)
    if border is None:
        return _check("IMG_HAS_BORDER", "no borders or frames", True, "No border found")
    if image.reduced:  # thickness in the original's pixels
        sy, sx = image.height / image.rgb.shape[0], image.width / image.rgb.shape[1]
        scale = {"top": sy, "bottom": sy, "left": sx, "right": sx}
        border = replace(border, thickness={s: round(t * scale[s]) for s, t in border.thickness.items()})
    sides = ", ".join(f"{s} {border.thickness[s]} px" for s in border.sides)
    return _check(
        "IMG_HAS_BORDER",
        "no borders or frames",
        False,
        f"A uniform RGB {border.color} border runs along the edges ({sides})",
        measured=float(max(border.thickness.values())),
    )


def check_max_megapixels(image: DecodedImage, maximum: float) -> ComplianceCheck:
    mp = image.width * image.height / 1_000_000
    return _check(
        "IMG_TOO_MANY_PIXELS",
        f"at most {maximum:g} megapixels",
        mp <= maximum,
        f"The image has {mp:.1f} megapixels",
        measured=round(mp, 3),
    )


def check_max_file_bytes(image: DecodedImage, maximum: int) -> ComplianceCheck:
    return _check(
        "IMG_FILE_TOO_LARGE",
        f"file size at most {_size(maximum)}",
        image.byte_size <= maximum,
        f"The file is {_size(image.byte_size)}",
        measured=float(image.byte_size),
    )


def check_allowed_format(image: DecodedImage, allowed: frozenset[str]) -> ComplianceCheck:
    names = ", ".join(sorted(f.upper() for f in allowed))
    fmt = image.source_format
    return _check(
        "IMG_FORMAT_NOT_ALLOWED",
        i18n.render("en", "IMG_FORMAT_NOT_ALLOWED.rule", formats=names),
        fmt.lower() in allowed,
        i18n.render("en", "IMG_FORMAT_NOT_ALLOWED.measured", format=fmt),
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")
    return f"{n / 1024:.0f} KB"


def check_text_and_watermarks(text: tuple[TextBox, ...] | None = None) -> ComplianceCheck:
    """Fails when the text detector found overlays (their boxes ride along); not checked without it."""
    code, rule = "IMG_TEXT_OR_WATERMARK", i18n.text("en", "IMG_TEXT_OR_WATERMARK.rule")
    if text is None:
        return _check(code, rule, None, i18n.text("en", f"{code}.not_checked"))
    if not text:
        return _check(code, rule, True, i18n.text("en", f"{code}.none"), measured=0.0)
    boxes = tuple(t.box for t in text)
    where = "; ".join(f"{x1},{y1},{x2},{y2}" for x1, y1, x2, y2 in boxes)
    message = i18n.render("en", f"{code}.measured", count=len(boxes), boxes=where)
    return _check(code, rule, False, message, measured=float(len(boxes)), boxes=boxes)


def run_checks(
    image: DecodedImage,
    profile: MarketplaceProfile,
    stats: ImageStats | None = None,
    scene: SceneAnalysis | None = None,
) -> tuple[ComplianceCheck, ...]:
    """Run the profile's rules on the decoded image, in a stable order. `scene` (the scene
    analysis: product mask, text boxes) makes the fill and text rules measurable."""
    stats = stats or measure(image.rgb)
    scene = scene or SceneAnalysis()
    checks: list[ComplianceCheck] = []
    if profile.min_long_side is not None:
        checks.append(check_min_long_side(image, profile.min_long_side))
    if profile.recommended_long_side is not None:
        checks.append(check_recommended_long_side(image, profile.recommended_long_side))
    if profile.white_background:
        checks.append(check_white_background(stats, profile.min_white_border_fraction, scene.product))
    if profile.min_product_fill is not None:
        checks.append(check_product_fill(image, stats, profile.min_product_fill, scene.product))
    if profile.min_jpeg_quality is not None:
        checks.append(check_jpeg_quality(image, profile.min_jpeg_quality))
    if profile.no_borders:
        checks.append(check_no_border(image))
    if profile.max_megapixels is not None:
        checks.append(check_max_megapixels(image, profile.max_megapixels))
    if profile.max_file_bytes is not None:
        checks.append(check_max_file_bytes(image, profile.max_file_bytes))
    if profile.no_text_or_watermarks:
        checks.append(check_text_and_watermarks(scene.text))
    if profile.allowed_formats is not None:
        checks.append(check_allowed_format(image, profile.allowed_formats))
    return tuple(checks)
