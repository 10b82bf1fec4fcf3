"""What the model says about one image, in the original image's pixel frame.

This is the join point of post-processing (service.iqa.postprocess), the report
builder, `idetex predict` and `idetex eval`. JSON shape matches the predict output:
{image, width, height, distortions: [...], key_distortions: [...], image_quality, score}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.domain.taxonomy import fine_index_to_grade, fine_index_to_level

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x first


@dataclass(frozen=True)
class DetectedDistortion:
    distortion: str  # exact taxonomy string
    severity: str  # slight | moderate | severe
    confidence: float  # 0..1
    box: Box
    key: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "distortion": self.distortion,
            "severity": self.severity,
            "confidence": round(float(self.confidence), 4),
            "coordinates": [int(v) for v in self.box],
        }


@dataclass(frozen=True)
class Prediction:
    width: int
    height: int
    distortions: tuple[DetectedDistortion, ...]
    fine_index: int  # 0..9, a..j
    score: float  # 1..5 MOS scale, higher is better
    grade_probs: tuple[float, ...] = field(default=())

    @property
    def grade(self) -> str:
        return fine_index_to_grade(self.fine_index)

    @property
    def fine_level(self) -> str:
        return fine_index_to_level(self.fine_index)

    @property
    def key_distortions(self) -> tuple[DetectedDistortion, ...]:
        return tuple(d for d in self.distortions if d.key)

    def to_json(self, image: str = "") -> dict[str, Any]:
        return {
            "image": image,
            "width": self.width,
            "height": self.height,
            "distortions": [d.to_json() for d in self.distortions],
            "key_distortions": [d.to_json() for d in self.key_distortions],
            "image_quality": self.grade,
            "fine_level": self.fine_level,
            "score": round(float(self.score), 4),
        }
