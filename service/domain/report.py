"""The diagnostic report: the model's findings in words, guidance, marketplace checks and a verdict.

`build_report` is pure: a Prediction (pixel boxes in the decoded image's frame) and the
DecodedImage in, a Report out. `Report.to_json` / `Report.from_json` round-trip exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.domain import i18n
from service.domain.aspects import AspectScores, aspect_scores
from service.domain.compliance import run_checks
from service.domain.description import build_description
from service.domain.findings import (
    VERDICTS,
    ComplianceCheck,
    Description,
    Guidance,
    ReportDistortion,
    Verdict,
)
from service.domain.guidance import advice_for, build_guidance
from service.domain.imaging import DecodedImage
from service.domain.measures import ImageStats, measure, white_share
from service.domain.policy import apply_overrides
from service.domain.prediction import Box, Prediction
from service.domain.profiles import MarketplaceProfile, get_profile
from service.domain.regions import describe_region
from service.domain.scene import NO_SCENE, SceneAnalysis, SceneAnalyzer, needs_for, plain_backdrop_product
from service.domain.taxonomy import SEVERITIES
from service.domain.verdict import decide

__all__ = [
    "ComplianceCheck",
    "Description",
    "Guidance",
    "ImageFacts",
    "ImageMeasures",
    "Report",
    "ReportDistortion",
    "build_report",
    "measure_image",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ImageFacts:
    """What the decoder and the measurements know about the uploaded file."""

    width: int
    height: int
    source_format: str
    byte_size: int
    sha256: str
    jpeg_quality: int | None
    bit_depth: int
    had_alpha: bool
    frame_count: int
    exif_transposed: bool
    icc_converted: bool
    brightness: float
    contrast: float
    colourfulness: float

    @classmethod
    def of(cls, image: DecodedImage, stats: ImageStats) -> ImageFacts:
        return cls(
            width=image.width,
            height=image.height,
            source_format=image.source_format,
            byte_size=image.byte_size,
            sha256=image.sha256,
            jpeg_quality=image.jpeg_quality,
            bit_depth=image.bit_depth,
            had_alpha=image.had_alpha,
            frame_count=image.frame_count,
            exif_transposed=image.exif_transposed,
            icc_converted=image.icc_converted,
            brightness=stats.brightness,
            contrast=stats.contrast,
            colourfulness=stats.colourfulness,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageFacts:
        return cls(**{name: d[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Report:
    profile: str
    model_version: str
    grade: str  # bad | poor | fair | good | excellent
    fine_level: str  # a..j
    score: float  # 1..5 MOS scale
    distortions: tuple[ReportDistortion, ...]
    description: Description
    guidance: tuple[Guidance, ...]
    compliance: tuple[ComplianceCheck, ...]
    verdict: Verdict
    verdict_reasons: tuple[str, ...]
    image: ImageFacts
    grade_probs: tuple[float, ...] = ()
    schema_version: int = SCHEMA_VERSION
    # which model wrote it: "idetex_lite" (default), "idetex_vlm" (MLLM), or
    # "idetex_vlm+idetex_lite" (MLLM description and grade, default model's boxes)
    produced_by: str = "idetex_lite"
    # the merchant's overrides of the profile this report was built under (service/domain/policy.py)
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    # global aspect scores 0..1 (service/domain/aspects.py); None in reports stored before them
    aspects: AspectScores | None = None

    @property
    def key_distortions(self) -> tuple[ReportDistortion, ...]:
        return tuple(d for d in self.distortions if d.key)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "profile": self.profile,
            "model_version": self.model_version,
            "grade": self.grade,
            "fine_level": self.fine_level,
            "score": self.score,
            "grade_probs": list(self.grade_probs),
            "verdict": self.verdict,
            "verdict_reasons": list(self.verdict_reasons),
            "produced_by": self.produced_by,
            "policy_overrides": dict(self.policy_overrides),
            "distortions": [d.to_json() for d in self.distortions],
            "description": self.description.to_json(),
            "guidance": [g.to_json() for g in self.guidance],
            "compliance": [c.to_json() for c in self.compliance],
            "image": self.image.to_json(),
            **({"aspects": self.aspects.to_json()} if self.aspects is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Report:
        verdict = d["verdict"]
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        return cls(
            profile=d["profile"],
            model_version=d["model_version"],
            grade=d["grade"],
            fine_level=d["fine_level"],
            score=float(d["score"]),
            distortions=tuple(ReportDistortion.from_json(x) for x in d["distortions"]),
            description=Description.from_json(d["description"]),
            guidance=tuple(Guidance.from_json(x) for x in d["guidance"]),
            compliance=tuple(ComplianceCheck.from_json(x) for x in d["compliance"]),
            verdict=verdict,
            verdict_reasons=tuple(d.get("verdict_reasons", ())),
            image=ImageFacts.from_json(d["image"]),
            grade_probs=tuple(float(p) for p in d.get("grade_probs", ())),
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
            produced_by=str(d.get("produced_by", "idetex_lite")),
            policy_overrides=dict(d.get("policy_overrides") or {}),
            aspects=AspectScores.from_json(d["aspects"]) if d.get("aspects") else None,
        )


def _fit_box(box: Box, prediction: Prediction, image: DecodedImage) -> Box:
    """Boxes are in the decoded image's frame; rescale if the prediction saw another size; clip."""
    sx = image.width / prediction.width if prediction.width else 1.0
    sy = image.height / prediction.height if prediction.height else 1.0
    x1, y1, x2, y2 = (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))
    x1, x2 = sorted((min(max(x1, 0), image.width), min(max(x2, 0), image.width)))
    y1, y2 = sorted((min(max(y1, 0), image.height), min(max(y2, 0), image.height)))
    return (x1, y1, x2, y2)


EXPECTED_BACKGROUND_IMPACT = i18n.text("en", "distortion.expected.impact")


def _is_expected(distortion: str, box: Box, image: DecodedImage, profile: MarketplaceProfile | None) -> bool:
    """A 'Meaningless solid color' box that is white is the background a white-background profile requires."""
    if profile is None or not profile.white_background or distortion != "Meaningless solid color":
        return False
    return white_share(image.rgb, image.to_rgb_frame(box) if image.reduced else box) >= 0.9


def report_distortions(
    prediction: Prediction, image: DecodedImage, profile: MarketplaceProfile | None = None
) -> tuple[ReportDistortion, ...]:
    """The prediction's distortions in words, key ones first, then by severity and confidence."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    items = []
    for det in prediction.distortions:
        box = _fit_box(det.box, prediction, image)
        expected = _is_expected(det.distortion, box, image, profile)
        items.append(
            ReportDistortion(
                type=det.distortion,
                severity=det.severity,
                box=box,
                confidence=round(float(det.confidence), 4),
                key=det.key,
                region=describe_region(box, image.width, image.height),
                impact=EXPECTED_BACKGROUND_IMPACT if expected else advice_for(det.distortion).impact,
                expected=expected,
            )
        )
    items.sort(key=lambda d: (not d.key, -rank[d.severity], -d.confidence))
    return tuple(items)


@dataclass(frozen=True)
class ImageMeasures:
    """What the report measures on the pixels alone (no prediction needed): it can be computed
    while the model runs, and handed to build_report."""

    profile: MarketplaceProfile
    stats: ImageStats
    checks: tuple[ComplianceCheck, ...]
    scene: SceneAnalysis = NO_SCENE  # product mask, text overlays, faces (what the profile needed)
    aspects: AspectScores | None = None  # global aspect scores (service/domain/aspects.py)


def measure_image(
    image: DecodedImage,
    profile: str,
    overrides: Mapping[str, Any] | None = None,
    analyzer: SceneAnalyzer | None = None,
) -> ImageMeasures:
    """Image statistics and the named profile's marketplace checks for `image`, under the
    merchant's `overrides` of the profile's thresholds when given. With `analyzer`, the scene
    analysis the profile's rules need (service.domain.scene.needs_for) runs first."""
    prof = apply_overrides(get_profile(profile), overrides)
    stats = measure(image.rgb)
    scene = NO_SCENE if analyzer is None else analyzer.analyse(image, needs_for(prof))
    checks = run_checks(image, prof, stats, scene)
    if scene.product is None:  # the description places distortions on the product or the background
        scene = replace(scene, product=plain_backdrop_product(image, stats))
    return ImageMeasures(prof, stats, checks, scene, aspect_scores(image, stats))


def build_report(
    prediction: Prediction,
    image: DecodedImage,
    profile: str,
    model_version: str,
    measured: ImageMeasures | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Report:
    """Turn the model's prediction for `image` into the full report under the named marketplace profile,
    with the merchant's `overrides` of its thresholds and verdict policy (recorded in the report).

    `measured` is measure_image(image, profile, overrides), when it was computed ahead (e.g. during
    inference).
    """
    if measured is None:
        measured = measure_image(image, profile, overrides)
    elif measured.profile != apply_overrides(get_profile(profile), overrides):
        raise ValueError(f"measures for profile {measured.profile.name!r} given for {profile!r}")
    prof, stats, checks, scene = measured.profile, measured.stats, measured.checks, measured.scene
    distortions = report_distortions(prediction, image, prof)
    grade = prediction.grade
    verdict, reasons = decide(prof.policy, grade, distortions, checks)
    description = build_description(
        distortions, grade, image.width, image.height, image.source_format, image.jpeg_quality, stats, scene
    )
    return Report(
        profile=prof.name,
        model_version=model_version,
        grade=grade,
        fine_level=prediction.fine_level,
        score=round(float(prediction.score), 4),
        distortions=distortions,
        description=description,
        guidance=build_guidance(distortions, checks, grade, scene.face_boxes),
        compliance=checks,
        verdict=verdict,
        verdict_reasons=reasons,
        image=ImageFacts.of(image, stats),
        grade_probs=tuple(round(float(p), 4) for p in prediction.grade_probs),
        policy_overrides=dict(overrides or {}),
        aspects=measured.aspects or aspect_scores(image, stats),
    )
