"""Read and write the grounded text of iDetex-class MLLMs (Qwen2-VL-ViDA, InternVL fine-tunes).

Pure functions, no I/O. What a model emits and what we accept:

- Qwen2-VL grounding: ``<|object_ref_start|>moderate motion blur<|object_ref_end|>`` followed by
  one or more ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``; InternVL: ``<ref>...</ref>`` and
  ``<box>[[x1,y1,x2,y2]]</box>`` (several ``[...]`` in one box tag allowed). Coordinates are
  integers on a 0-1000 scale of the image, x first.
- Detection answers in per-type blocks (``"Low clarity:\\n<ref>...<box>...``), region answers
  (``"Noise: <ref>...<box>..."`` or ``"No distortion affects this region."``) and the four-step
  description (paragraphs; key distortions in the first sentence of the second-to-last line;
  last line ``Thus, the quality of the image is <grade>.``).

Robust to what models really emit: missing end tokens, swapped corners, coordinates out of
range (clipped), severity words in other forms (minor, mild, slightly, heavy ...), distortion
names in other case, singular or plural, common synonyms and near misses (mapped to the
taxonomy, the raw label kept; an unknown name gives ``distortion=None``), and a missing grade
line (``grade=None``). ``render_*`` write the same formats, so text -> parse -> render is stable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.domain.prediction import Box
from service.domain.taxonomy import DISTORTIONS, GRADES, SEVERITIES

SCALE = 1000
REF_START, REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
BOX_START, BOX_END = "<|box_start|>", "<|box_end|>"
NO_DISTORTION = "No distortion affects this region."
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end|>")

SEVERITY_WORDS: dict[str, str] = {
    "slight": "slight",
    "slightly": "slight",
    "minor": "slight",
    "mild": "slight",
    "mildly": "slight",
    "light": "slight",
    "low": "slight",
    "small": "slight",
    "moderate": "moderate",
    "moderately": "moderate",
    "medium": "moderate",
    "noticeable": "moderate",
    "severe": "severe",
    "severely": "severe",
    "serious": "severe",
    "heavy": "severe",
    "strong": "severe",
    "significant": "severe",
    "extreme": "severe",
    "high": "severe",
}

# other names models use for the taxonomy's types (compared after _simplify)
SYNONYMS: dict[str, str] = {
    "blur": "Out of focus blur",
    "defocus": "Out of focus blur",
    "defocus blur": "Out of focus blur",
    "focus blur": "Out of focus blur",
    "out of focus": "Out of focus blur",
    "gaussian blur": "Out of focus blur",
    "motion": "Motion blur",
    "camera shake": "Motion blur",
    "blurriness": "Low clarity",
    "low resolution": "Low clarity",
    "lack of clarity": "Low clarity",
    "unclear": "Low clarity",
    "noisy": "Noise",
    "grain": "Noise",
    "graininess": "Noise",
    "jpeg artifact": "Blocking artifacts",
    "compression artifact": "Blocking artifacts",
    "blockiness": "Blocking artifacts",
    "block artifact": "Blocking artifacts",
    "blocking": "Blocking artifacts",
    "aliasing": "Edge aliasing effect",
    "edge aliasing": "Edge aliasing effect",
    "jaggies": "Edge aliasing effect",
    "ringing": "Edge ringing effect",
    "edge ringing": "Edge ringing effect",
    "underexposed": "Underexposure",
    "under exposure": "Underexposure",
    "overexposed": "Overexposure",
    "over exposure": "Overexposure",
    "solid color": "Meaningless solid color",
    "meaningless solid colour": "Meaningless solid color",
}


@dataclass(frozen=True)
class Mention:
    """One grounded distortion in model text; box on the 0-1000 scale (x1 <= x2, y1 <= y2)."""

    distortion: str | None  # exact taxonomy name, None when the label names no known type
    severity: str | None  # slight | moderate | severe, None when the text gives none
    box: Box
    label: str = ""  # the raw label as the model wrote it


@dataclass(frozen=True)
class ParsedDescription:
    """A four-step description read back: all distortions, the key ones, the grade."""

    mentions: tuple[Mention, ...]
    keys: tuple[Mention, ...]
    grade: str | None
    lines: tuple[str, ...]


# ---------------------------------------------------------------- names and severities


def _simplify(text: str) -> str:
    text = text.lower().replace("colour", "color").replace("-", " ").replace("_", " ")
    text = re.sub(r"[^a-z ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _key(text: str) -> str:
    return " ".join(_singular(w) for w in _simplify(text).split())


_CANON: dict[str, str] = {_key(name): name for name in DISTORTIONS}
_CANON.update({_key(alias): name for alias, name in SYNONYMS.items()})


def canonical_name(label: str) -> str | None:
    """Taxonomy name for a label's type words (case, plural, synonyms, near misses), or None."""
    key = _key(label)
    if not key:
        return None
    if key in _CANON:
        return _CANON[key]
    for suffix in (" distortion", " effect", " artifact", " issue", " problem"):
        if key.endswith(suffix) and key[: -len(suffix)] in _CANON:
            return _CANON[key[: -len(suffix)]]
    close = difflib.get_close_matches(key, list(_CANON), n=1, cutoff=0.82)
    return _CANON[close[0]] if close else None


def split_label(label: str) -> tuple[str | None, str | None]:
    """``"Moderate low clarity"`` -> ("Low clarity", "moderate"); either part may be None."""
    words = _simplify(label).split()
    severity = None
    rest: list[str] = []
    for i, word in enumerate(words):
        if severity is None and word in SEVERITY_WORDS and i < 2:
            severity = SEVERITY_WORDS[word]
            continue
        rest.append(word)
    if severity is None:  # "motion blur (severe)"
        for word in words[::-1]:
            if word in SEVERITY_WORDS and SEVERITY_WORDS[word] in SEVERITIES:
                severity = SEVERITY_WORDS[word]
                rest = [w for w in rest if w != word]
                break
    return canonical_name(" ".join(rest)), severity


# ---------------------------------------------------------------- boxes

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_QWEN_BOX = re.compile(
    r"<\|box_start\|>\s*\("
    + _NUM
    + ","
    + _NUM
    + r"\)\s*,?\s*\("
    + _NUM
    + ","
    + _NUM
    + r"\)\s*(?:<\|box_end\|>)?"
)
_INTERN_BOX = re.compile(r"<box>\s*(\[[^<]*\])\s*(?:</box>)?")
_QUAD = re.compile(r"\[" + _NUM + "," + _NUM + "," + _NUM + "," + _NUM + r"\]")


def make_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    """Ordered corners, rounded and clipped to 0..1000."""

    def clip(v: float) -> int:
        return int(min(max(round(v), 0), SCALE))

    a, b, c, d = clip(x1), clip(y1), clip(x2), clip(y2)
    return (min(a, c), min(b, d), max(a, c), max(b, d))


def to_pixels(box: Box, width: int, height: int) -> Box:
    """0-1000 box -> pixels of a width x height image."""
    x1, y1, x2, y2 = box
    return (
        round(x1 * width / SCALE),
        round(y1 * height / SCALE),
        round(x2 * width / SCALE),
        round(y2 * height / SCALE),
    )


def from_pixels(box: Box, width: int, height: int) -> Box:
    """Pixel box -> the 0-1000 scale of the text format."""
    x1, y1, x2, y2 = box
    return make_box(x1 / width * SCALE, y1 / height * SCALE, x2 / width * SCALE, y2 / height * SCALE)


def box_tokens(box: Box) -> str:
    x1, y1, x2, y2 = box
    return f"{BOX_START}({x1},{y1}),({x2},{y2}){BOX_END}"


# ---------------------------------------------------------------- tokens

# one scanner for every grounding element, in text order
_TOKEN = re.compile(
    r"(?P<qref><\|object_ref_start\|>(?P<qlabel>.*?)(?:<\|object_ref_end\|>|(?=<\|box_start\|>)|$))"
    r"|(?P<iref><ref>(?P<ilabel>.*?)(?:</ref>|(?=<box>)|$))"
    r"|(?P<qbox>" + _QWEN_BOX.pattern + ")"
    r"|(?P<ibox>" + _INTERN_BOX.pattern + ")"
    r"|(?P<head>^[ \t]*(?P<hname>[A-Za-z][A-Za-z -]{1,40}?)[ \t]*:)",
    re.MULTILINE | re.DOTALL,
)


def clean(text: str) -> str:
    """Drop end-of-turn tokens and normalise line ends and outer blank space."""
    for token in END_TOKENS:
        text = text.replace(token, "")
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _boxes(match: re.Match[str]) -> list[Box]:
    if match.group("qbox"):
        inner = _QWEN_BOX.match(match.group("qbox"))
        assert inner is not None
        return [make_box(*(float(v) for v in inner.groups()))]
    quads = _QUAD.findall(match.group("ibox"))
    return [make_box(*(float(v) for v in q)) for q in quads]


def plain_text(text: str) -> str:
    """Text without grounding tokens: labels stay, boxes go ("moderate noise affects ...")."""
    text = _QWEN_BOX.sub("", clean(text))
    text = _INTERN_BOX.sub("", text)
    for token in (REF_START, REF_END, "<ref>", "</ref>", BOX_START, BOX_END):
        text = text.replace(token, "")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def parse_grounding(text: str) -> tuple[Mention, ...]:
    """Every grounded distortion in text order. A box belongs to the label before it; the type
    comes from the label, else from the block heading above it (``"Motion blur:"``)."""
    mentions: list[Mention] = []
    heading: str | None = None
    label = ""
    distortion: str | None = None
    severity: str | None = None
    for m in _TOKEN.finditer(clean(text)):
        if m.group("head"):
            name = canonical_name(m.group("hname"))
            if name is not None:
                heading, label, distortion, severity = name, m.group("hname").strip(), name, None
        elif m.group("qref") is not None or m.group("iref") is not None:
            label = (m.group("qlabel") if m.group("qref") is not None else m.group("ilabel")).strip()
            named, severity = split_label(label)
            distortion = named or heading
        else:
            for box in _boxes(m):
                mentions.append(Mention(distortion, severity, box, label))
    return tuple(mentions)


def parse_region_answer(text: str) -> tuple[Mention, ...]:
    """The distortions a region answer names; () for "No distortion affects this region."."""
    body = clean(text)
    if re.match(r"\s*no distortions?\b", body, re.IGNORECASE):
        return ()
    return parse_grounding(body)


def _dedupe(mentions: Iterable[Mention]) -> tuple[Mention, ...]:
    seen: set[tuple[str | None, str | None, Box]] = set()
    out = []
    for m in mentions:
        key = (m.distortion, m.severity, m.box)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return tuple(out)


_GRADE = re.compile(r"quality of (?:the|this) image is\s*(?:\*\*)?\s*([A-Za-z]+)", re.IGNORECASE)


def _first_sentence(line: str) -> str:
    """Up to the first full stop outside a grounding element."""
    depth = 0
    for i, ch in enumerate(line):
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth = max(depth - 1, 0)
        elif ch == "." and depth == 0:
            return line[:i]
    return line


def parse_description(text: str) -> ParsedDescription:
    """All distortions (deduplicated), the key ones and the grade of a four-step description."""
    lines = tuple(line.strip() for line in clean(text).split("\n") if line.strip())
    grade = None
    key_line = ""
    if lines:
        found = _GRADE.search(lines[-1])
        if found and found.group(1).lower() in GRADES:
            grade = found.group(1).lower()
            key_line = lines[-2] if len(lines) >= 2 else ""
        else:  # no grade line: the description ends with the key line
            key_line = lines[-1]
    keys = parse_grounding(_first_sentence(key_line)) or parse_grounding(key_line)
    return ParsedDescription(_dedupe(parse_grounding("\n".join(lines))), _dedupe(keys), grade, lines)


_CHOICE = re.compile(r"(?:^|answer(?: is)?\s*:?\s*|option\s*)\(?([A-Za-z])\)?(?:[.):\s]|$)", re.IGNORECASE)


def parse_choice(text: str, options: int) -> int | None:
    """The option index an answer picks (``"C."`` -> 2), or None when it names none of them."""
    body = clean(text).strip()
    for m in _CHOICE.finditer(body):
        index = ord(m.group(1).upper()) - ord("A")
        if 0 <= index < options:
            return index
    return None


# ---------------------------------------------------------------- rendering


def mention_tokens(m: Mention) -> str:
    if m.distortion is None:
        raise ValueError("cannot render a mention without a taxonomy name")
    words = f"{m.severity} {m.distortion.lower()}" if m.severity else m.distortion.lower()
    return f"{REF_START}{words}{REF_END}{box_tokens(m.box)}"


def render_grounding(mentions: Sequence[Mention]) -> str:
    """A detection answer: one block per type, in taxonomy order, one label per severity."""
    blocks = []
    for name in DISTORTIONS:
        of_type = [m for m in mentions if m.distortion == name]
        if not of_type:
            continue
        parts = []
        for severity in (*SEVERITIES, None):
            boxes = [m.box for m in of_type if m.severity == severity]
            if boxes:
                words = f"{severity.capitalize()} {name.lower()}" if severity else name
                parts.append(f"{REF_START}{words}{REF_END}" + "".join(box_tokens(b) for b in boxes))
        blocks.append(f"{name}:\n" + "".join(parts))
    return "\n".join(blocks) + "." if blocks else "No distortion."


def render_region_answer(mentions: Sequence[Mention]) -> str:
    if not mentions:
        return NO_DISTORTION
    return "\n".join(f"{m.distortion}: {mention_tokens(m)}" for m in mentions)


def render_description(
    overview: str, mentions: Sequence[Mention], keys: Sequence[Mention], grade: str
) -> str:
    """A four-step description: overview, one paragraph per mention, key line, grade line."""
    if grade not in GRADES:
        raise ValueError(f"unknown grade {grade!r}")
    lines = [overview.strip() or "The image is shown."]
    lines += [f"There is one {mention_tokens(m)} in the image." for m in mentions]
    if keys:
        refs = [mention_tokens(k) for k in keys]
        joined = refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]
        lines.append(f"The key distortions are {joined}; they decide the overall impression.")
    else:
        lines.append(
            "No single distortion stands out; the overall impression comes from the image as a whole."
        )
    lines.append(f"Thus, the quality of the image is {grade}.")
    return "\n".join(lines)
