"""Guidance: stable codes, region-aware messages, ordering, and a doc that lists every code."""

from __future__ import annotations

import re
from pathlib import Path

from service.domain.findings import ComplianceCheck, ReportDistortion
from service.domain.guidance import (
    COMPLIANCE_CODES,
    DISTORTION_ADVICE,
    GUIDANCE_CODES,
    OVERALL_QUALITY_CODE,
    build_guidance,
)
from service.domain.taxonomy import DISTORTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "guidance-codes.md"


def dist(
    type_="Low clarity", severity="moderate", key=True, region="in the lower right corner", box=(1, 2, 3, 4)
):
    return ReportDistortion(type_, severity, box, 0.8, key, region, DISTORTION_ADVICE[type_].impact)


def test_every_distortion_type_has_a_distinct_code():
    """Ten taxonomy types, ten distinct IMG_ codes."""
    codes = [DISTORTION_ADVICE[d].code for d in DISTORTIONS]
    assert len(set(codes)) == len(DISTORTIONS)
    assert all(re.fullmatch(r"IMG_[A-Z_]+", c) for c in GUIDANCE_CODES)
    assert len(set(GUIDANCE_CODES)) == len(GUIDANCE_CODES)


def test_doc_lists_every_code_the_code_can_emit():
    """docs/guidance-codes.md has a table row for each code in GUIDANCE_CODES, and no unknown codes."""
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `(IMG_[A-Z_]+)` \|", text, flags=re.M))
    assert documented == set(GUIDANCE_CODES)


def test_message_names_the_region_and_the_fix_says_what_to_do():
    """Blurry edges in the lower right corner: the message says where, the fix says how."""
    (g,) = build_guidance([dist()], [], "good")
    assert g.code == "IMG_BLURRY_EDGES"
    assert "in the lower right corner" in g.message
    assert "edges of the product look soft" in g.message
    assert g.message.startswith("Moderate ")
    assert g.fix and g.distortion == "Low clarity" and g.box == (1, 2, 3, 4) and g.severity == "moderate"


def test_slight_non_key_distortions_give_no_guidance():
    """Only key or at least moderate distortions become instructions."""
    assert build_guidance([dist(severity="slight", key=False)], [], "good") == ()
    assert len(build_guidance([dist(severity="slight", key=True)], [], "good")) == 1


def test_same_problem_in_same_region_is_one_instruction():
    """Two noise boxes in the same corner give one IMG_NOISY entry; another corner gives another."""
    items = [
        dist("Noise", box=(0, 0, 5, 5)),
        dist("Noise", box=(5, 5, 9, 9)),
        dist("Noise", region="in the upper left corner"),
    ]
    assert [g.code for g in build_guidance(items, [], "good")] == ["IMG_NOISY", "IMG_NOISY"]


def test_failed_rules_become_guidance_and_unchecked_ones_do_not():
    """A failed rule gives its code; passed=None and passed=True give nothing."""
    checks = [
        ComplianceCheck(
            "IMG_NOT_WHITE_BACKGROUND",
            "white",
            False,
            "40% white",
            COMPLIANCE_CODES["IMG_NOT_WHITE_BACKGROUND"],
        ),
        ComplianceCheck("IMG_TEXT_OR_WATERMARK", "no text", None, "not checked", "fix"),
        ComplianceCheck("IMG_LOW_RESOLUTION", "500 px", True, "800 px", "fix"),
        ComplianceCheck("IMG_BELOW_ZOOM_SIZE", "1000 px", False, "800 px", "fix", required=False),
    ]
    guidance = build_guidance([], checks, "good")
    assert [(g.code, g.severity) for g in guidance] == [
        ("IMG_NOT_WHITE_BACKGROUND", "severe"),
        ("IMG_BELOW_ZOOM_SIZE", "moderate"),
    ]
    assert "40% white" in guidance[0].message


def test_guidance_is_ordered_worst_first():
    """Severe before moderate; key before non-key at equal severity."""
    items = [
        dist("Noise", "moderate", key=False),
        dist("Motion blur", "moderate", key=True),
        dist("Underexposure", "severe", key=False),
    ]
    assert [g.code for g in build_guidance(items, [], "fair")] == [
        "IMG_TOO_DARK",
        "IMG_MOTION_BLUR",
        "IMG_NOISY",
    ]


def test_poor_grade_without_findings_gets_overall_guidance():
    """A poor image with nothing specific to fix still tells the merchant what to do."""
    (g,) = build_guidance([], [], "poor")
    assert g.code == OVERALL_QUALITY_CODE and "poor" in g.message
    assert build_guidance([], [], "good") == ()
