"""Stable guidance codes (eBay-style) with a merchant-readable message and the fix.

Every code this package can emit is in GUIDANCE_CODES and documented in
docs/guidance-codes.md (a unit test keeps the two in step). Codes never change
meaning; new situations get new codes. The words come from the message catalogue
(service/domain/i18n): reports are built in English, other languages are rendered
from it when an answer is built (service/domain/localize.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from service.domain import i18n
from service.domain.findings import ComplianceCheck, Guidance, ReportDistortion
from service.domain.prediction import Box
from service.domain.scene import BLUR_TYPES, faces_in
from service.domain.taxonomy import DISTORTIONS, SEVERITIES


@dataclass(frozen=True)
class Advice:
    code: str
    impact: str  # what the distortion does to the picture, used in messages and the description
    problem: str  # noun phrase for the message: "{Severity} {problem} {region}: {impact}."
    fix: str


# taxonomy string -> stable code; the words are in the catalogue (service/domain/i18n/en.py)
DISTORTION_CODES: Final[dict[str, str]] = {
    "Low clarity": "IMG_BLURRY_EDGES",
    "Noise": "IMG_NOISY",
    "Underexposure": "IMG_TOO_DARK",
    "Overexposure": "IMG_TOO_BRIGHT",
    "Blocking artifacts": "IMG_COMPRESSION_BLOCKS",
    "Edge aliasing effect": "IMG_JAGGED_EDGES",
    "Edge ringing effect": "IMG_RINGING",
    "Out of focus blur": "IMG_OUT_OF_FOCUS",
    "Motion blur": "IMG_MOTION_BLUR",
    "Meaningless solid color": "IMG_SOLID_COLOR_AREA",
}
assert set(DISTORTION_CODES) == set(DISTORTIONS)


def _advice(code: str, language: str = "en") -> Advice:
    return Advice(
        code,
        i18n.text(language, f"{code}.impact"),
        i18n.text(language, f"{code}.problem"),
        i18n.text(language, f"{code}.fix"),
    )


DISTORTION_ADVICE: Final[dict[str, Advice]] = {t: _advice(c) for t, c in DISTORTION_CODES.items()}

OVERALL_QUALITY_CODE: Final = "IMG_LOW_OVERALL_QUALITY"
# a blur distortion (BLUR_TYPES) whose box covers a detected face: its own code, face wording
FACE_BLURRED_CODE: Final = "IMG_FACE_BLURRED"

# Compliance codes (produced by service.domain.compliance) with the fix shown to merchants.
COMPLIANCE_CODES: Final[dict[str, str]] = {
    code: i18n.text("en", f"{code}.fix")
    for code in (
        "IMG_LOW_RESOLUTION",
        "IMG_BELOW_ZOOM_SIZE",
        "IMG_NOT_WHITE_BACKGROUND",
        "IMG_PRODUCT_TOO_SMALL",
        "IMG_JPEG_QUALITY_LOW",
        "IMG_HAS_BORDER",
        "IMG_TOO_MANY_PIXELS",
        "IMG_FILE_TOO_LARGE",
        "IMG_TEXT_OR_WATERMARK",
        "IMG_FORMAT_NOT_ALLOWED",
    )
}

GUIDANCE_CODES: Final[tuple[str, ...]] = (
    *(a.code for a in DISTORTION_ADVICE.values()),
    OVERALL_QUALITY_CODE,
    FACE_BLURRED_CODE,
    *COMPLIANCE_CODES,
)

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def advice_for(distortion: str) -> Advice:
    return DISTORTION_ADVICE[distortion]


def distortion_guidance(d: ReportDistortion, on_face: bool = False) -> Guidance:
    """`on_face`: a blur on a detected face, reported as IMG_FACE_BLURRED in face wording."""
    advice = _advice(FACE_BLURRED_CODE) if on_face and d.type in BLUR_TYPES else advice_for(d.type)
    message = i18n.render(
        "en",
        "guidance.distortion.message",
        sentence=True,
        severity=d.severity,
        problem=advice.problem,
        region=d.region,
        impact=advice.impact,
    )
    return Guidance(advice.code, message, advice.fix, distortion=d.type, box=d.box, severity=d.severity)


def compliance_guidance(check: ComplianceCheck) -> Guidance:
    """Guidance for a failed rule: severe when the rule is required, moderate when recommended."""
    return Guidance(
        check.code,
        i18n.render("en", "guidance.compliance.message", message=check.message, rule=check.rule),
        check.fix,
        severity="severe" if check.required else "moderate",
        box=check.boxes[0] if check.boxes else None,
    )


def check_guidance(check: ComplianceCheck) -> tuple[Guidance, ...]:
    """A failed rule's guidance, one entry per box it names (each text overlay), else one."""
    first = compliance_guidance(check)
    return (first, *(replace(first, box=box) for box in check.boxes[1:]))


def build_guidance(
    distortions: Iterable[ReportDistortion],
    checks: Iterable[ComplianceCheck],
    grade: str,
    faces: tuple[Box, ...] = (),
) -> tuple[Guidance, ...]:
    """Guidance for key or at least moderate distortions, failed rules, and a bad/poor grade.
    A blur on one of `faces` (scene analysis) is IMG_FACE_BLURRED.

    Distortions marked `expected` (the white background a profile requires) give none.

    Ordered worst first: severity, then key distortions, then compliance. One entry per
    (code, region): two boxes of the same problem in the same region read as one instruction.
    """
    items: list[tuple[tuple[int, int], Guidance]] = []
    seen: set[tuple[str, str]] = set()
    for d in distortions:
        if d.expected or (not d.key and d.severity == "slight"):
            continue
        g = distortion_guidance(d, on_face=bool(faces_in(d.box, faces)))
        if (g.code, d.region) in seen:
            continue
        seen.add((g.code, d.region))
        items.append(((-_SEVERITY_RANK[d.severity], 0 if d.key else 1), g))
    for c in checks:
        if c.passed is False:
            items.extend(((-_SEVERITY_RANK[g.severity], 2), g) for g in check_guidance(c))
    if grade in ("bad", "poor") and not items:
        items.append(((-1, 3), overall_guidance(grade)))
    items.sort(key=lambda item: item[0])
    return tuple(g for _, g in items)


def overall_guidance(grade: str) -> Guidance:
    return Guidance(
        OVERALL_QUALITY_CODE,
        i18n.render("en", f"{OVERALL_QUALITY_CODE}.message", grade=grade),
        i18n.text("en", f"{OVERALL_QUALITY_CODE}.fix"),
        severity="severe" if grade == "bad" else "moderate",
    )
