"""Answer challenge-style multiple-choice quality questions from a structured report.

The default model has no language model and recognises no objects: it knows which
distortion types it found, where (boxes), how severe, and which are key. So it answers the
four challenge concerns where the question and options can be read in those terms:

- type: "What type of distortion is (not) present in this image?";
- significance: "What is the most significant distortion ...?" (the key distortion);
- severity: "There is a <type> affecting <place>. How severe is it?" (Minor/Moderate/Severe/
  Not visible; a place named by position words picks the instance there);
- position: "Which part of the image is affected by <type> / has no distortion?" when the
  options name parts of the frame (corners, sides, centre, whole image).

A question that names objects ("the cat's fur", "the wooden cutting board") is outside what
it can answer: the result says so (OUT_OF_SCOPE) instead of guessing. When a question narrows
to an object but the options are plain distortion types, the answer is given for the whole
image and marked BEST_EFFORT.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from service.domain.findings import ReportDistortion
from service.domain.prediction import Box
from service.domain.taxonomy import DISTORTIONS
from service.domain.vlm_text import canonical_name, from_pixels

Status = Literal["ANSWERED", "BEST_EFFORT", "OUT_OF_SCOPE"]
CONCERNS = ("type", "significance", "severity", "position")


@dataclass(frozen=True)
class PerceptionAnswer:
    status: Status
    concern: str | None  # type | significance | severity | position | None when unrecognised
    index: int | None  # chosen option, None when OUT_OF_SCOPE
    explanation: str

    @property
    def letter(self) -> str:
        return "" if self.index is None else chr(ord("A") + self.index)


@dataclass(frozen=True)
class Finding:
    """What the answerer needs of one reported distortion: type, severity, 0-1000 box, key flag."""

    type: str
    severity: str
    box: Box  # 0-1000 scale
    confidence: float
    key: bool


def findings(distortions: Sequence[ReportDistortion], width: int, height: int) -> tuple[Finding, ...]:
    return tuple(
        Finding(d.type, d.severity, from_pixels(d.box, width, height), d.confidence, d.key)
        for d in distortions
        if not d.expected
    )


# ---------------------------------------------------------------- places in the frame

_PLACES: tuple[tuple[str, Box], ...] = (
    (r"(upper|top)[- ]left", (0, 0, 500, 500)),
    (r"(upper|top)[- ]right", (500, 0, 1000, 500)),
    (r"(lower|bottom)[- ]left", (0, 500, 500, 1000)),
    (r"(lower|bottom)[- ]right", (500, 500, 1000, 1000)),
    (r"\b(entire|whole|overall|all over|throughout|full)\b", (0, 0, 1000, 1000)),
    (r"\b(upper|top)\b", (0, 0, 1000, 500)),
    (r"\b(lower|bottom)\b", (0, 500, 1000, 1000)),
    (r"\bleft\b", (0, 0, 500, 1000)),
    (r"\bright\b", (500, 0, 1000, 1000)),
    (r"\b(cent(er|re|ral)|middle)\b", (250, 250, 750, 750)),
)
# words that name parts of the frame (an option made only of these names a place, not an object)
_FRAME_WORDS = frozenset(
    {
        *("the", "a", "an", "of", "in", "at", "on", "and", "image", "picture", "photo", "frame"),
        *("part", "parts", "area", "areas", "region", "regions", "side", "sides", "corner", "corners"),
        *("upper", "lower", "top", "bottom", "left", "right", "center", "centre", "central", "middle"),
        *("entire", "whole", "overall", "edge", "edges", "border", "borders", "half", "quarter"),
        *("section", "portion"),
    }
)


def place_box(text: str) -> Box | None:
    """The part of the frame a phrase names ("the upper-left corner" -> (0, 0, 500, 500))."""
    low = text.lower()
    for pattern, box in _PLACES:
        if re.search(pattern, low):
            return box
    return None


def names_only_places(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower().replace("-", " "))
    return bool(words) and all(w in _FRAME_WORDS for w in words) and place_box(text) is not None


def _overlap(a: Box, b: Box) -> float:
    """Fraction of box a inside box b."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max((a[2] - a[0]) * (a[3] - a[1]), 1)
    return ix * iy / area


# ---------------------------------------------------------------- the concerns

_SEVERITY_OPTION = {
    "minor": "slight",
    "slight": "slight",
    "moderate": "moderate",
    "severe": "severe",
    "not visible": None,
    "none": None,
}


def _option_types(options: Sequence[str]) -> list[str | None]:
    out: list[str | None] = []
    for text in options:
        low = text.lower()
        if re.search(r"\bno (visible )?distortion", low):
            out.append("none")
            continue
        name = canonical_name(text)
        if name is None:  # "Blocking artifacts are present in the background"
            name = next((t for t in _TYPE_WORDS if t[0] in low), ("", None))[1]
        out.append(name)
    return out


_TYPE_WORDS: tuple[tuple[str, str], ...] = tuple(
    (n.lower(), n)
    for n in sorted(DISTORTIONS, key=len, reverse=True)  # longest first
)


def _type_in_question(question: str) -> str | None:
    low = question.lower()
    for words, name in _TYPE_WORDS:
        if words in low or words.rstrip("s") in low:
            return name
    for alias in ("blocking artifact", "aliasing", "ringing", "out-of-focus", "blur", "noisy"):
        if alias in low:
            return canonical_name(alias)
    return None


def _narrows_to_object(question: str) -> bool:
    """ "... affecting the stage and lighting effects" rather than "... in the image"."""
    low = question.lower().rstrip("?. ")
    cuts = list(re.finditer(r"\b(affects?|affecting|in|on|within|around|near|above|below)\s+", low))
    if not cuts:
        return False
    tail = low[cuts[-1].end() :]
    return not re.fullmatch(r"(the |this )?(entire |whole |overall )?(image|picture|photo)", tail)


def _answer_type(question: str, options: Sequence[str], found: Sequence[Finding]) -> PerceptionAnswer:
    types = _option_types(options)
    present = {f.type: f for f in found}
    negative = bool(re.search(r"\bnot present\b|\bnot (be )?(seen|visible)\b|\babsent\b", question.lower()))
    if negative:
        absent = [i for i, t in enumerate(types) if t not in present and t not in (None, "none")]
        if len(absent) == 1:
            return PerceptionAnswer("ANSWERED", "type", absent[0], f"{options[absent[0]]} was not found")
        if absent:
            return PerceptionAnswer(
                "BEST_EFFORT",
                "type",
                absent[0],
                f"several options were not found; {options[absent[0]]} first",
            )

        def conf(i: int) -> float:
            t = types[i]
            return present[t].confidence if t is not None and t in present else 0.0

        least = min(range(len(types)), key=conf)
        return PerceptionAnswer(
            "BEST_EFFORT", "type", least, "every option was found; the least confident one"
        )
    hits = [i for i, t in enumerate(types) if t in present]
    if not hits:
        none = [i for i, t in enumerate(types) if t == "none"]
        if none and not found:
            return PerceptionAnswer("ANSWERED", "type", none[0], "no distortion was found")
        return PerceptionAnswer(
            "OUT_OF_SCOPE", "type", None, "none of the options is a distortion the model found"
        )
    best = max(hits, key=lambda i: present[str(types[i])].confidence)
    best_type = str(types[best])
    status: Status = "BEST_EFFORT" if _narrows_to_object(question) else "ANSWERED"
    return PerceptionAnswer(
        status,
        "type",
        best,
        f"{best_type} was found (confidence {present[best_type].confidence:.2f})",
    )


def _answer_significance(question: str, options: Sequence[str], found: Sequence[Finding]) -> PerceptionAnswer:
    types = _option_types(options)
    ranked = sorted(found, key=lambda f: (not f.key, -f.confidence))
    for f in ranked:
        if f.type in types:
            i = types.index(f.type)
            status: Status = "BEST_EFFORT" if _narrows_to_object(question) else "ANSWERED"
            why = "the key distortion" if f.key else "the most confident distortion"
            note = (
                " (answered for the whole image: the model does not recognise objects)"
                if status == "BEST_EFFORT"
                else ""
            )
            return PerceptionAnswer(status, "significance", i, f"{f.type} is {why}{note}")
    return PerceptionAnswer(
        "OUT_OF_SCOPE", "significance", None, "none of the options is a distortion the model found"
    )


def _answer_severity(question: str, options: Sequence[str], found: Sequence[Finding]) -> PerceptionAnswer:
    levels = [_SEVERITY_OPTION.get(o.strip().lower().rstrip("."), "?") for o in options]
    if "?" in levels:
        return PerceptionAnswer("OUT_OF_SCOPE", "severity", None, "the options are not severity levels")
    wanted = _type_in_question(question)
    if wanted is None:
        return PerceptionAnswer(
            "OUT_OF_SCOPE", "severity", None, "the question names no known distortion type"
        )
    of_type = [f for f in found if f.type == wanted]
    place = place_box(question)
    if of_type and place is not None:
        of_type.sort(key=lambda f: -_overlap(f.box, place))
        if _overlap(of_type[0].box, place) == 0 and _overlap(place, of_type[0].box) == 0:
            of_type = []
    elif of_type:
        of_type.sort(key=lambda f: -f.confidence)
    severity = of_type[0].severity if of_type else None
    if severity not in levels:
        return PerceptionAnswer(
            "OUT_OF_SCOPE", "severity", None, f"no option matches {severity or 'not visible'}"
        )
    status: Status = "ANSWERED" if place is not None or not _narrows_to_object(question) else "BEST_EFFORT"
    where = "there" if place is not None else "in the image"
    what = f"{wanted} {where} is {severity}" if severity else f"no {wanted.lower()} was found {where}"
    return PerceptionAnswer(status, "severity", levels.index(severity), what)


def _answer_position(question: str, options: Sequence[str], found: Sequence[Finding]) -> PerceptionAnswer:
    if not all(names_only_places(o) for o in options):
        return PerceptionAnswer(
            "OUT_OF_SCOPE",
            "position",
            None,
            "the options name objects; the default model locates distortions with boxes but does not "
            "recognise objects (deploy the MLLM for such questions)",
        )
    places = [place_box(o) for o in options]
    low = question.lower()
    clean = bool(
        re.search(r"\b(without|not|no)\b.*\bdistortion|\bnot exhibit\b|\bunaffected\b|\bclean\b", low)
    )
    wanted = None if clean else _type_in_question(question)
    relevant = [f for f in found if wanted is None or f.type == wanted]

    def coverage(i: int) -> float:
        box = places[i]
        assert box is not None
        return max((_overlap(box, f.box) for f in relevant), default=0.0)

    scores = [coverage(i) for i in range(len(options))]
    pick = (
        min(range(len(options)), key=lambda i: scores[i])
        if clean
        else max(range(len(options)), key=lambda i: scores[i])
    )
    if not clean and scores[pick] == 0:
        return PerceptionAnswer(
            "OUT_OF_SCOPE", "position", None, f"no {wanted or 'distortion'} was found in any option's part"
        )
    what = "has the least distortion" if clean else f"overlaps the {wanted or 'distortion'} most"
    return PerceptionAnswer("ANSWERED", "position", pick, f"{options[pick]} {what} ({scores[pick]:.0%})")


def concern_of(question: str) -> str | None:
    low = question.lower()
    if re.search(r"how severe|severity", low):
        return "severity"
    if re.search(r"most (significant|severe|important|noticeable)|key distortion|greatest impact", low):
        return "significance"
    if re.search(r"which (part|region|area)|where (is|are)|located|condition of", low):
        return "position"
    if re.search(r"what (type|kind) of distortion|which (type of )?distortion", low):
        return "type"
    return None


def answer(question: str, options: Sequence[str], found: Sequence[Finding]) -> PerceptionAnswer:
    """Pick an option from the report's findings, or say why the question is out of scope."""
    if not 2 <= len(options) <= 26:
        raise ValueError(f"a multiple-choice question needs 2 to 26 options, got {len(options)}")
    concern = concern_of(question)
    if concern == "type":
        return _answer_type(question, options, found)
    if concern == "significance":
        return _answer_significance(question, options, found)
    if concern == "severity":
        return _answer_severity(question, options, found)
    if concern == "position":
        return _answer_position(question, options, found)
    return PerceptionAnswer(
        "OUT_OF_SCOPE",
        None,
        None,
        "the default model answers questions on distortion type, significance, severity and position only",
    )
