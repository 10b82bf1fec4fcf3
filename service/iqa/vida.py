"""ViDA-UGC / MIPI 2025 formats: annotation loader and grounded-text parser.

Two jobs, one vocabulary:

* ``vida_item_to_label`` / ``load_vida_annotations`` turn ``bench_metadata``-style
  annotations (the official scorer reads ``image``, ``mos``, ``level`` and
  ``distortions[] = {distortion, severity, coordinates, significance_score}``; the
  data set README says every box is normalised to 0-1000) into the label dicts of our
  own evaluation set (``var/data/eval/labels.json``): exact taxonomy names, lower-case
  severities, pixel boxes, ``key_distortions`` and ``image_quality``. So ``idetex
  eval`` and fine-tuning accept real ViDA-UGC data unchanged.
* ``parse_grounded`` / ``parse_description`` read the text a ViDA-trained MLLM emits,
  ``<|object_ref_start|>moderate motion blur<|object_ref_end|><|box_start|>(185,2),(924,334)<|box_end|>``,
  into the dicts ``idetex predict`` writes. Every box belongs to the nearest reference
  before it, so one reference may carry several boxes.

Key distortions, when an item does not list them, follow the official scorer: those
with the highest ``significance_score`` (all of them on a tie; all distortions when no
item carries a score). "Minor" is the ViDA text's word for our "slight".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from service.domain.taxonomy import (
    DISTORTIONS,
    GRADES,
    SEVERITIES,
    fine_index_to_level,
    mos_to_fine_index,
    mos_to_grade,
)

NORM = 1000  # Qwen2-VL box space
CoordinateSpace = Literal["normalised", "pixels"]

_TOKEN = re.compile(
    r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>"
    r"|<\|box_start\|>\s*\((?P<x1>\d+),\s*(?P<y1>\d+)\),\s*\((?P<x2>\d+),\s*(?P<y2>\d+)\)\s*<\|box_end\|>",
    re.DOTALL,
)
_QUALITY = re.compile(r"the quality of the image is (\w+)", re.IGNORECASE)
_SEVERITY_WORDS = {
    "minor": "slight",
    "mild": "slight",
    "slight": "slight",
    "moderate": "moderate",
    "severe": "severe",
}
_NAMES = {d.lower(): d for d in DISTORTIONS}
_NAMES.update(
    {
        "blocking artifact": "Blocking artifacts",
        "blocking": "Blocking artifacts",
        "edge aliasing": "Edge aliasing effect",
        "edge ringing": "Edge ringing effect",
        "out-of-focus blur": "Out of focus blur",
        "meaningless solid colour": "Meaningless solid color",
    }
)
NO_DISTORTION = "no distortion"


class ViDAFormatError(ValueError):
    """An annotation or model text that does not fit the ViDA-UGC format."""


@dataclass(frozen=True)
class GroundedBox:
    """One grounded statement: exact type, severity, box in the 0-1000 space."""

    distortion: str
    severity: str
    box: tuple[int, int, int, int]


def canonical_vida_distortion(name: str) -> str:
    """Exact taxonomy name for a ViDA spelling (any case, ``_`` for space, singular 'artifact')."""
    key = " ".join(name.replace("_", " ").lower().split())
    found = _NAMES.get(key) or _NAMES.get(key + "s") or _NAMES.get(key.removesuffix("s"))
    if found is None:
        raise ViDAFormatError(f"unknown distortion type: {name!r}")
    return found


def canonical_vida_severity(name: str) -> str:
    """Our severity word for a ViDA one ('Minor' -> 'slight')."""
    sev = _SEVERITY_WORDS.get(name.strip().lower())
    if sev is None or sev not in SEVERITIES:
        raise ViDAFormatError(f"unknown severity: {name!r}")
    return sev


def normalise_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box -> 0-1000 integers, ``round(x / W * 1000)`` as the challenge does."""
    return (
        round(box[0] / width * NORM),
        round(box[1] / height * NORM),
        round(box[2] / width * NORM),
        round(box[3] / height * NORM),
    )


def denormalise_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """0-1000 box -> pixel box of a ``width`` x ``height`` image, clipped to the frame."""

    def scale(v: float, size: int) -> int:
        return min(max(round(v * size / NORM), 0), size)

    return (scale(box[0], width), scale(box[1], height), scale(box[2], width), scale(box[3], height))


# ---------------------------------------------------------------- grounded text


def _split_reference(ref: str) -> tuple[str, str] | None:
    """'Moderate low clarity' -> ('Low clarity', 'moderate'); None for a reference outside the taxonomy."""
    words = ref.strip().split(maxsplit=1)
    if len(words) != 2:
        return None
    try:
        return canonical_vida_distortion(words[1]), canonical_vida_severity(words[0])
    except ViDAFormatError:
        return None


def parse_grounded_normalised(text: str) -> list[GroundedBox]:
    """Every (reference, box) statement in ``text``, boxes still in the 0-1000 space.

    A box belongs to the closest reference before it; boxes before any reference, or
    after a reference that names no known type with a severity, are dropped.
    """
    out: list[GroundedBox] = []
    current: tuple[str, str] | None = None
    for m in _TOKEN.finditer(text):
        if m.group("ref") is not None:
            current = _split_reference(m.group("ref"))
        elif current is not None:
            box = (int(m["x1"]), int(m["y1"]), int(m["x2"]), int(m["y2"]))
            out.append(GroundedBox(current[0], current[1], box))
    return out


def _to_dicts(boxes: Sequence[GroundedBox], width: int, height: int) -> list[dict[str, Any]]:
    return [
        {
            "distortion": b.distortion,
            "severity": b.severity,
            "confidence": 1.0,
            "coordinates": list(denormalise_box(b.box, width, height)),
        }
        for b in boxes
    ]


def parse_grounded(text: str, width: int, height: int) -> list[dict[str, Any]]:
    """Grounded model text -> ``idetex predict`` distortion dicts with pixel boxes (confidence 1.0)."""
    return _to_dicts(parse_grounded_normalised(text), width, height)


def _unique(boxes: Sequence[GroundedBox]) -> list[GroundedBox]:
    seen: dict[GroundedBox, None] = {}
    for b in boxes:
        seen.setdefault(b, None)
    return list(seen)


def parse_description(text: str, width: int, height: int) -> dict[str, Any]:
    """Four-step description -> ``{distortions, key_distortions, image_quality}`` as predict writes them.

    As the organisers' extraction: distortions are every grounded statement (repeats
    dropped), key distortions those in the first sentence of the second-to-last line,
    the grade the word after 'the quality of the image is' on the last line ('' if none).
    """
    body = text.replace("<|im_end|>", "").rstrip()
    lines = body.split("\n")
    keys = parse_grounded_normalised(lines[-2].split(".")[0]) if len(lines) >= 2 else []
    m = _QUALITY.search(lines[-1])
    grade = m.group(1).lower() if m else ""
    return {
        "distortions": _to_dicts(_unique(parse_grounded_normalised(body)), width, height),
        "key_distortions": _to_dicts(_unique(keys), width, height),
        "image_quality": grade if grade in GRADES else "",
    }


# ---------------------------------------------------------------- annotations


def _entry(d: Mapping[str, Any], space: CoordinateSpace, width: int, height: int) -> dict[str, Any]:
    coords = d.get("coordinates") or d.get("coords") or d.get("bbox")
    if not isinstance(coords, Sequence) or len(coords) != 4:
        raise ViDAFormatError(f"distortion without a 4-number box: {dict(d)}")
    box = (
        denormalise_box(coords, width, height)
        if space == "normalised"
        else tuple(min(max(round(float(v)), 0), s) for v, s in zip(coords, (width, height) * 2, strict=True))
    )
    entry: dict[str, Any] = {
        "distortion": canonical_vida_distortion(str(d["distortion"])),
        "severity": canonical_vida_severity(str(d.get("severity", "moderate"))),
        "coordinates": list(box),
    }
    if "significance_score" in d:
        entry["significance_score"] = float(d["significance_score"])
    return entry


def _is_key(d: Mapping[str, Any]) -> bool:
    return bool(d.get("key") or d.get("is_key") or d.get("key_distortion"))


def vida_item_to_label(
    item: Mapping[str, Any],
    coordinate_space: CoordinateSpace = "normalised",
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One bench_metadata-style item -> one eval label dict (pixel boxes, exact names).

    ``size`` (width, height) overrides or supplies the item's own ``width``/``height``.
    Key distortions: the item's ``key_distortions`` list, else entries flagged ``key``,
    else the highest ``significance_score`` (the official scorer's rule).
    """
    width, height = size or (item.get("width"), item.get("height"))
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        raise ViDAFormatError(f"{item.get('image')!r}: width and height are needed to place the boxes")
    raw = [
        d
        for d in item.get("distortions", [])
        if str(d.get("distortion", "")).strip().lower() != NO_DISTORTION
    ]
    distortions = [_entry(d, coordinate_space, width, height) for d in raw]
    if "key_distortions" in item:
        keys = [_entry(d, coordinate_space, width, height) for d in item["key_distortions"]]
    elif any(_is_key(d) for d in raw):
        keys = [e for d, e in zip(raw, distortions, strict=True) if _is_key(d)]
    elif distortions:
        top = max(float(d.get("significance_score", 0)) for d in raw)
        keys = [
            e for d, e in zip(raw, distortions, strict=True) if float(d.get("significance_score", 0)) == top
        ]
    else:
        keys = []

    mos = float(item["mos"]) if item.get("mos") is not None else None
    level = item.get("level", item.get("image_quality", item.get("quality")))
    if level is not None:
        grade = str(level).strip().lower()
    elif mos is not None:
        grade = mos_to_grade(mos)
    else:
        raise ViDAFormatError(f"{item.get('image')!r}: neither a quality level nor a MOS")
    if grade not in GRADES:
        raise ViDAFormatError(f"{item.get('image')!r}: unknown quality level {level!r}")
    return {
        "image": str(item["image"]),
        "width": width,
        "height": height,
        "distortions": distortions,
        "key_distortions": keys,
        "image_quality": grade,
        "mos": mos,
        "fine_level": fine_index_to_level(mos_to_fine_index(mos)) if mos is not None else None,
    }


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def load_vida_annotations(
    path: str | Path,
    image_dir: str | Path | None = None,
    coordinate_space: CoordinateSpace = "normalised",
) -> list[dict[str, Any]]:
    """Read a bench_metadata-style JSON list (or JSON lines) and return eval label dicts.

    Items without ``width``/``height`` take the size of ``image_dir / image``.
    """
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    items = json.loads(text) if stripped.startswith("[") else [json.loads(x) for x in text.splitlines() if x]
    labels = []
    for item in items:
        size = None
        if ("width" not in item or "height" not in item) and image_dir is not None:
            size = _image_size(Path(image_dir) / item["image"])
        labels.append(vida_item_to_label(item, coordinate_space, size))
    return labels


# ---------------------------------------------------------------- MLLM outputs as predictions


def mllm_predictions(
    descriptions: Sequence[Mapping[str, Any]], grounding: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """MIPI-style MLLM answers (``{image, width, height, pred_ans}``) -> ``idetex predict`` items.

    Distortions come from the image's distortion-detection answer when ``grounding`` has
    one, else from its description; key distortions and grade always from the description.
    The score is unknown to the text and left out (SRCC then skips these items).
    """
    detection = {
        str(g["image"]): g
        for g in grounding
        if g.get("question_type", "distortion-detection") == "distortion-detection"
    }
    out = []
    for item in descriptions:
        width, height = int(item["width"]), int(item["height"])
        parsed = parse_description(str(item["pred_ans"]), width, height)
        found = detection.get(str(item["image"]))
        if found is not None:
            parsed["distortions"] = parse_grounded(str(found["pred_ans"]), width, height)
        out.append({"image": str(item["image"]), "width": width, "height": height, **parsed})
    return out
