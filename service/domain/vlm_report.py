"""An MLLM's four-step description turned into the service's report types (pure).

`prediction_from_text` gives the same Prediction the default model's post-processing gives
(pixel boxes, severities, key flags, grade), so the report builder, guidance, compliance and
verdict run unchanged; `description_from_text` keeps the model's own words as the report's
description. For "both", `merge` keeps the default model's boxes and takes the MLLM's grade
and description.
"""

from __future__ import annotations

from dataclasses import replace

from service.domain.findings import Description
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.taxonomy import GRADES
from service.domain.vlm_text import ParsedDescription, plain_text, to_pixels

MLLM = "idetex_vlm"
DEFAULT = "idetex_lite"
BOTH = f"{MLLM}+{DEFAULT}"
# the MLLM gives no confidence and no fine level: a stated distortion counts as certain,
# a grade as the upper fine level of its pair, the score as that level's MOS midpoint
MLLM_CONFIDENCE = 1.0
UNSTATED_SEVERITY = "moderate"


def fine_index_of(grade: str) -> int:
    return GRADES.index(grade) * 2 + 1


def score_of(fine_index: int) -> float:
    return 1.0 + 0.4 * fine_index + 0.2


def usable(parsed: ParsedDescription | None) -> bool:
    """A description the service can report: a grade line, and no unknown distortion names only."""
    return parsed is not None and parsed.grade is not None


def prediction_from_text(parsed: ParsedDescription, width: int, height: int) -> Prediction:
    if parsed.grade is None:
        raise ValueError("the description states no grade")
    keys = {(k.distortion, k.box) for k in parsed.keys}
    distortions = tuple(
        DetectedDistortion(
            distortion=m.distortion,
            severity=m.severity or UNSTATED_SEVERITY,
            confidence=MLLM_CONFIDENCE,
            box=to_pixels(m.box, width, height),
            key=(m.distortion, m.box) in keys,
        )
        for m in parsed.mentions
        if m.distortion is not None
    )
    fine = fine_index_of(parsed.grade)
    return Prediction(width, height, distortions, fine, score_of(fine))


def merge(default: Prediction, parsed: ParsedDescription) -> Prediction:
    """The default model's boxes with the MLLM's grade."""
    if parsed.grade is None:
        raise ValueError("the description states no grade")
    fine = fine_index_of(parsed.grade)
    return replace(default, fine_index=fine, score=score_of(fine), grade_probs=())


def description_from_text(parsed: ParsedDescription) -> Description:
    """The MLLM's lines as the four steps (box tokens removed); `grounded` keeps them."""
    lines = [plain_text(line) for line in parsed.lines]
    conclusion = f"Thus, the quality of the image is {parsed.grade}." if parsed.grade else ""
    if parsed.grade is not None and lines:
        lines = lines[:-1]  # the grade line becomes the conclusion
    overview = lines[0] if lines else ""
    key_line = lines[-1] if len(lines) >= 2 else ""
    paragraphs = tuple(lines[1:-1]) if len(lines) >= 3 else ()
    return Description(overview, paragraphs, key_line, conclusion, grounded="\n".join(parsed.lines))
