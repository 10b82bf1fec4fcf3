"""Stable guidance codes (eBay-style) with a merchant-readable message and the fix.

Every code this package can emit is in GUIDANCE_CODES and documented in
docs/guidance-codes.md (a unit test keeps the two in step). Codes never change
meaning; new situations get new codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from service.domain.findings import ComplianceCheck, Guidance, ReportDistortion
from service.domain.taxonomy import DISTORTIONS, SEVERITIES


@dataclass(frozen=True)
class Advice:
    code: str
    impact: str  # what the distortion does to the picture, used in messages and the description
    problem: str  # noun phrase for the message: "{Severity} {problem} {region}: {impact}."
    fix: str


DISTORTION_ADVICE: Final[dict[str, Advice]] = {
    "Low clarity": Advice(
        "IMG_BLURRY_EDGES",
        "the edges of the product look soft and fine detail is lost",
        "loss of clarity",
        "Reshoot in good light with the camera steady and focused on the product, "
        "and upload the original file rather than an enlarged or re-saved copy.",
    ),
    "Noise": Advice(
        "IMG_NOISY",
        "grainy speckles cover surfaces that should look smooth",
        "noise",
        "Add light (daylight or a lamp) so the camera can use a low ISO; avoid digital zoom and night mode.",
    ),
    "Underexposure": Advice(
        "IMG_TOO_DARK",
        "this part of the picture is too dark to show colour and detail",
        "underexposure",
        "Add light or raise the exposure; light the product evenly from the front and sides.",
    ),
    "Overexposure": Advice(
        "IMG_TOO_BRIGHT",
        "highlights are burnt out to flat white and their detail is gone",
        "overexposure",
        "Lower the exposure or move the light further away; avoid direct flash and bright reflections.",
    ),
    "Blocking artifacts": Advice(
        "IMG_COMPRESSION_BLOCKS",
        "square blocks from heavy JPEG compression break up smooth areas",
        "compression blocking",
        "Upload the original photo or export JPEG at quality 90 or higher; do not re-save a compressed copy.",
    ),
    "Edge aliasing effect": Advice(
        "IMG_JAGGED_EDGES",
        "edges look stair-stepped and jagged instead of smooth",
        "edge aliasing",
        "Upload the image at its original resolution; when resizing, use a high-quality filter "
        "(bicubic or Lanczos) and never enlarge a small image.",
    ),
    "Edge ringing effect": Advice(
        "IMG_RINGING",
        "halos and ripples appear next to sharp edges",
        "edge ringing",
        "Turn down sharpening in the camera or editor and save with a higher JPEG quality.",
    ),
    "Out of focus blur": Advice(
        "IMG_OUT_OF_FOCUS",
        "the product is out of focus and its details are smeared",
        "focus blur",
        "Tap to focus on the product before shooting and keep at least the lens's minimum distance from it.",
    ),
    "Motion blur": Advice(
        "IMG_MOTION_BLUR",
        "camera or subject movement streaks the details",
        "motion blur",
        "Hold the camera still or use a tripod, add light for a faster shutter, and keep the product still.",
    ),
    "Meaningless solid color": Advice(
        "IMG_SOLID_COLOR_AREA",
        "a flat area of solid colour carries no information about the product",
        "empty solid-colour area",
        "Crop the empty area so the product fills the frame, or remove the placeholder or overlay.",
    ),
}
assert set(DISTORTION_ADVICE) == set(DISTORTIONS)

OVERALL_QUALITY_CODE: Final = "IMG_LOW_OVERALL_QUALITY"

# Compliance codes (produced by service.domain.compliance) with the fix shown to merchants.
COMPLIANCE_CODES: Final[dict[str, str]] = {
    "IMG_LOW_RESOLUTION": "Upload a larger original: at least the minimum size on the longest side.",
    "IMG_BELOW_ZOOM_SIZE": "Upload at least 1000 px on the longest side so shoppers can zoom.",
    "IMG_NOT_WHITE_BACKGROUND": "Shoot on, or cut the product out onto, a pure white (RGB 255) background.",
    "IMG_PRODUCT_TOO_SMALL": "Crop tighter or move closer so the product fills at least 85% of the frame.",
    "IMG_JPEG_QUALITY_LOW": "Export the JPEG at quality 90 or higher, or upload the camera original.",
    "IMG_HAS_BORDER": "Remove the frame or bars around the photo; crop to the picture itself.",
    "IMG_TOO_MANY_PIXELS": "Resize the image to at most 64 megapixels.",
    "IMG_FILE_TOO_LARGE": "Save the image at a smaller file size (at most 16 MB), e.g. JPEG quality 90.",
    "IMG_TEXT_OR_WATERMARK": "Remove text, logos, watermarks and promotional overlays from the photo.",
}

GUIDANCE_CODES: Final[tuple[str, ...]] = (
    *(a.code for a in DISTORTION_ADVICE.values()),
    OVERALL_QUALITY_CODE,
    *COMPLIANCE_CODES,
)

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def advice_for(distortion: str) -> Advice:
    return DISTORTION_ADVICE[distortion]


def distortion_guidance(d: ReportDistortion) -> Guidance:
    advice = advice_for(d.type)
    message = f"{d.severity.capitalize()} {advice.problem} {d.region}: {advice.impact}."
    return Guidance(advice.code, message, advice.fix, distortion=d.type, box=d.box, severity=d.severity)


def compliance_guidance(check: ComplianceCheck) -> Guidance:
    """Guidance for a failed rule: severe when the rule is required, moderate when recommended."""
    return Guidance(
        check.code,
        f"{check.message} ({check.rule})",
        check.fix,
        severity="severe" if check.required else "moderate",
    )


def build_guidance(
    distortions: Iterable[ReportDistortion], checks: Iterable[ComplianceCheck], grade: str
) -> tuple[Guidance, ...]:
    """Guidance for key or at least moderate distortions, failed rules, and a bad/poor grade.

    Distortions marked `expected` (the white background a profile requires) give none.

    Ordered worst first: severity, then key distortions, then compliance. One entry per
    (code, region): two boxes of the same problem in the same region read as one instruction.
    """
    items: list[tuple[tuple[int, int], Guidance]] = []
    seen: set[tuple[str, str]] = set()
    for d in distortions:
        if d.expected or (not d.key and d.severity == "slight"):
            continue
        if (advice_for(d.type).code, d.region) in seen:
            continue
        seen.add((advice_for(d.type).code, d.region))
        items.append(((-_SEVERITY_RANK[d.severity], 0 if d.key else 1), distortion_guidance(d)))
    for c in checks:
        if c.passed is False:
            g = compliance_guidance(c)
            items.append(((-_SEVERITY_RANK[g.severity], 2), g))
    if grade in ("bad", "poor") and not items:
        items.append(((-1, 3), overall_guidance(grade)))
    items.sort(key=lambda item: item[0])
    return tuple(g for _, g in items)


def overall_guidance(grade: str) -> Guidance:
    return Guidance(
        OVERALL_QUALITY_CODE,
        f"The overall picture quality is {grade}, although no single defect stands out.",
        "Reshoot the product in good, even light with a steady, focused camera and upload the original file.",
        severity="severe" if grade == "bad" else "moderate",
    )
