"""Marketplace profiles: which image rules apply and how strict the verdict is.

Numbers follow the marketplaces' published image requirements (MISSION.md,
"Marketplace profiles"). A rule is `required` (failing it rejects the image) or
`recommended` (failing it warns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from service.domain.errors import InvalidRequest


@dataclass(frozen=True)
class VerdictPolicy:
    """How grade, distortions and compliance turn into accept / warn / reject."""

    reject_grades: frozenset[str] = frozenset({"bad", "poor"})
    warn_grades: frozenset[str] = frozenset({"fair"})
    reject_key_severities: frozenset[str] = frozenset({"severe"})
    warn_key_severities: frozenset[str] = frozenset({"moderate"})
    reject_any_severe: bool = False  # also reject on a severe distortion that is not a key one
    reject_on_required_failure: bool = True
    warn_on_recommended_failure: bool = True


@dataclass(frozen=True)
class MarketplaceProfile:
    name: str
    title: str
    policy: VerdictPolicy = field(default_factory=VerdictPolicy)
    min_long_side: int | None = None  # required
    recommended_long_side: int | None = None  # recommended (zoom)
    white_background: bool = False  # required: border pixels RGB >= 250
    min_white_border_fraction: float = 0.95
    min_product_fill: float | None = None  # required: product's larger extent / frame side
    min_jpeg_quality: int | None = None  # required when the source is JPEG
    no_borders: bool = False  # required: no uniform frame lines
    max_megapixels: float | None = None  # required
    max_file_bytes: int | None = None  # required
    no_text_or_watermarks: bool = False  # required: no text, logo or watermark overlays (PP-OCR detector)
    allowed_formats: frozenset[str] | None = None  # required: the upload's format, lowercase (FORMATS)


# format names as the decoder reports them (DecodedImage.source_format), lowercased
FORMATS: Final[tuple[str, ...]] = ("jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "mpo", "heic")
AMAZON_FORMATS: Final = frozenset({"jpeg", "tiff", "png", "gif"})


PROFILES: Final[dict[str, MarketplaceProfile]] = {
    "default": MarketplaceProfile(name="default", title="Image quality only"),
    "amazon_main": MarketplaceProfile(
        name="amazon_main",
        title="Amazon main product image",
        policy=VerdictPolicy(reject_any_severe=True),
        min_long_side=500,
        recommended_long_side=1000,
        white_background=True,
        min_product_fill=0.85,
        no_text_or_watermarks=True,
        allowed_formats=AMAZON_FORMATS,
    ),
    "amazon_additional": MarketplaceProfile(
        name="amazon_additional",
        title="Amazon additional product image",
        min_long_side=500,
        recommended_long_side=1000,
        allowed_formats=AMAZON_FORMATS,  # other views, details, in use; text and graphics allowed
    ),
    "ebay": MarketplaceProfile(
        name="ebay",
        title="eBay listing photo",
        min_long_side=500,
        recommended_long_side=1000,
        min_jpeg_quality=90,
        no_borders=True,
        no_text_or_watermarks=True,
        allowed_formats=frozenset({"jpeg", "png", "tiff", "bmp", "gif", "heic", "webp"}),
    ),
    "google_merchant": MarketplaceProfile(
        name="google_merchant",
        title="Google Merchant Center product image",
        max_megapixels=64.0,
        max_file_bytes=16 * 1024 * 1024,
        no_borders=True,
        no_text_or_watermarks=True,
        allowed_formats=frozenset({"jpeg", "webp", "png", "gif", "bmp", "tiff"}),
    ),
    "generic": MarketplaceProfile(
        name="generic",
        title="Any marketplace: size and web formats",
        min_long_side=500,
        recommended_long_side=1000,
        allowed_formats=frozenset({"jpeg", "png", "webp"}),
    ),
}


def get_profile(name: str) -> MarketplaceProfile:
    """Return the named profile; an empty name means "default". Unknown names raise InvalidRequest."""
    key = (name or "default").strip().lower()
    try:
        return PROFILES[key]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InvalidRequest(
            "profile", "UNKNOWN_PROFILE", f"unknown profile {name!r}; known: {known}"
        ) from None
