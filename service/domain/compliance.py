"""Marketplace rule checks: each returns a ComplianceCheck with what was measured.

passed=None means "not checked" (we cannot measure it yet, e.g. text and watermarks);
it is reported, never counted as a pass.
"""

from __future__ import annotations

from dataclasses import replace

from service.domain.findings import ComplianceCheck
from service.domain.guidance import COMPLIANCE_CODES
from service.domain.imaging import DecodedImage
from service.domain.layout import detect_border, product_box, product_fill
from service.domain.measures import WHITE_LEVEL, ImageStats, measure
from service.domain.profiles import MarketplaceProfile


def _check(
    code: str,
    rule: str,
    passed: bool | None,
    message: str,
    *,
    required: bool = True,
    measured: float | None = None,
) -> ComplianceCheck:
    return ComplianceCheck(code, rule, passed, message, COMPLIANCE_CODES[code], required, measured)


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


def check_white_background(stats: ImageStats, min_fraction: float) -> ComplianceCheck:
    share = stats.border_white_fraction
    return _check(
        "IMG_NOT_WHITE_BACKGROUND",
        f"pure white background: at least {min_fraction:.0%} of the border pixels RGB >= {WHITE_LEVEL}",
        share >= min_fraction,
        f"{share:.0%} of the border pixels are white (median border colour RGB {stats.border_color})",
        measured=share,
    )


def check_product_fill(image: DecodedImage, stats: ImageStats, minimum: float) -> ComplianceCheck:
    rule = f"product fills at least {minimum:.0%} of the frame"
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


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")
    return f"{n / 1024:.0f} KB"


def check_text_and_watermarks() -> ComplianceCheck:
    return _check(
        "IMG_TEXT_OR_WATERMARK",
        "no text, logos, watermarks or promotional overlays",
        None,
        "Not checked: this version cannot detect text or watermarks yet; review the image yourself",
    )


def run_checks(
    image: DecodedImage, profile: MarketplaceProfile, stats: ImageStats | None = None
) -> tuple[ComplianceCheck, ...]:
    """Run the profile's rules on the decoded image, in a stable order."""
    stats = stats or measure(image.rgb)
    checks: list[ComplianceCheck] = []
    if profile.min_long_side is not None:
        checks.append(check_min_long_side(image, profile.min_long_side))
    if profile.recommended_long_side is not None:
        checks.append(check_recommended_long_side(image, profile.recommended_long_side))
    if profile.white_background:
        checks.append(check_white_background(stats, profile.min_white_border_fraction))
    if profile.min_product_fill is not None:
        checks.append(check_product_fill(image, stats, profile.min_product_fill))
    if profile.min_jpeg_quality is not None:
        checks.append(check_jpeg_quality(image, profile.min_jpeg_quality))
    if profile.no_borders:
        checks.append(check_no_border(image))
    if profile.max_megapixels is not None:
        checks.append(check_max_megapixels(image, profile.max_megapixels))
    if profile.max_file_bytes is not None:
        checks.append(check_max_file_bytes(image, profile.max_file_bytes))
    if profile.no_text_or_watermarks:
        checks.append(check_text_and_watermarks())
    return tuple(checks)
