"""The value types a report is made of, each with a lossless JSON form.

Kept apart from report.py so the modules that produce them (guidance, compliance,
description, verdict) and the report builder can all import them without cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.domain.prediction import Box

Verdict = Literal["accept", "warn", "reject"]
VERDICTS: tuple[str, ...] = ("accept", "warn", "reject")


def _box(value: Any) -> Box | None:
    if value is None:
        return None
    x1, y1, x2, y2 = (int(v) for v in value)
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class ReportDistortion:
    """One detected distortion as the merchant sees it."""

    type: str  # exact taxonomy string, e.g. "Motion blur"
    severity: str  # slight | moderate | severe
    box: Box  # pixels of the (EXIF-rotated) original, x1, y1, x2, y2
    confidence: float
    key: bool
    region: str  # "in the lower right corner"
    impact: str  # "the edges of the product look soft"
    expected: bool = (
        False  # what the profile asks for (Amazon's white background): no guidance, no verdict effect
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "severity": self.severity,
            "box": list(self.box),
            "confidence": self.confidence,
            "key": self.key,
            "region": self.region,
            "impact": self.impact,
            "expected": self.expected,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReportDistortion:
        box = _box(d["box"])
        if box is None:
            raise ValueError("a distortion needs a box")
        return cls(
            type=d["type"],
            severity=d["severity"],
            box=box,
            confidence=float(d["confidence"]),
            key=bool(d["key"]),
            region=d["region"],
            impact=d["impact"],
            expected=bool(d.get("expected", False)),
        )


@dataclass(frozen=True)
class Guidance:
    """A stable code, what is wrong (message) and what to do (fix)."""

    code: str  # stable, e.g. IMG_MOTION_BLUR (docs/guidance-codes.md)
    message: str
    fix: str
    distortion: str | None = None  # taxonomy string when the guidance comes from a distortion
    box: Box | None = None
    severity: str = "moderate"  # slight | moderate | severe

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "distortion": self.distortion,
            "box": None if self.box is None else list(self.box),
            "severity": self.severity,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Guidance:
        return cls(
            code=d["code"],
            message=d["message"],
            fix=d["fix"],
            distortion=d.get("distortion"),
            box=_box(d.get("box")),
            severity=d.get("severity", "moderate"),
        )


@dataclass(frozen=True)
class ComplianceCheck:
    """One marketplace rule. passed is None when the rule was not checked (never counted as a pass)."""

    code: str  # same code space as Guidance, e.g. IMG_NOT_WHITE_BACKGROUND
    rule: str  # the rule in words, with its threshold
    passed: bool | None
    message: str  # what was measured
    fix: str
    required: bool = True  # False: a recommendation (failing it warns, it does not reject)
    measured: float | None = None
    boxes: tuple[Box, ...] = ()  # where the rule failed, pixels of the original (e.g. text overlays)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "passed": self.passed,
            "message": self.message,
            "fix": self.fix,
            "required": self.required,
            "measured": self.measured,
            "boxes": [list(b) for b in self.boxes],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ComplianceCheck:
        measured = d.get("measured")
        return cls(
            code=d["code"],
            rule=d["rule"],
            passed=d["passed"],
            message=d["message"],
            fix=d["fix"],
            required=bool(d.get("required", True)),
            measured=None if measured is None else float(measured),
            boxes=tuple(b for b in (_box(v) for v in d.get("boxes", ())) if b is not None),
        )


@dataclass(frozen=True)
class Description:
    """The iDetex four-step description.

    Step 1 `overview`; step 2 `paragraphs` (one per distortion type, one sentence per
    instance); step 3 `key_line` (second-to-last line); step 4 `conclusion`, exactly
    "Thus, the quality of the image is <grade>.". `grounded` holds the same text in the
    ViDA model format (<|object_ref_start|>...<|box_start|>(x1,y1),(x2,y2)<|box_end|>,
    boxes on the 0-1000 scale), so the challenge's description extraction can score it.
    """

    overview: str
    paragraphs: tuple[str, ...]
    key_line: str
    conclusion: str
    grounded: str = ""

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.overview, *self.paragraphs, self.key_line, self.conclusion)

    @property
    def steps(self) -> tuple[str, str, str, str]:
        return (self.overview, "\n".join(self.paragraphs), self.key_line, self.conclusion)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "overview": self.overview,
            "paragraphs": list(self.paragraphs),
            "key_line": self.key_line,
            "conclusion": self.conclusion,
            "text": self.text,
            "grounded": self.grounded,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Description:
        return cls(
            overview=d["overview"],
            paragraphs=tuple(d["paragraphs"]),
            key_line=d["key_line"],
            conclusion=d["conclusion"],
            grounded=d.get("grounded", ""),
        )
