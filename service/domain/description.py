"""The iDetex four-step description, written from measurements and the model's findings.

1. a brief description of the image from measurable facts (size, brightness, contrast,
   colourfulness, background) and the scene analysis (faces, text overlays, the product's
   share of the frame) - there is no captioner;
2. one paragraph per distortion type, one sentence per instance with its region, box and impact;
3. the key distortions (second-to-last line);
4. exactly "Thus, the quality of the image is <grade>."
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from service.domain.findings import Description, ReportDistortion
from service.domain.measures import ImageStats
from service.domain.regions import describe_region
from service.domain.scene import NO_SCENE, SceneAnalysis, faces_in, on_face_region, product_place
from service.domain.taxonomy import DISTORTIONS

REF_START, REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
BOX_START, BOX_END = "<|box_start|>", "<|box_end|>"
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


_HUES: tuple[tuple[float, str], ...] = (
    (0.04, "red"),
    (0.11, "orange"),
    (0.19, "yellow"),
    (0.45, "green"),
    (0.54, "cyan"),
    (0.72, "blue"),
    (0.85, "purple"),
    (0.95, "pink"),
    (1.01, "red"),
)


def colour_name(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    if max(rgb) - min(rgb) < 24:
        mean = (r + g + b) / 3
        if mean >= 235:
            return "white"
        if mean < 40:
            return "black"
        return "light grey" if mean >= 170 else "dark grey" if mean < 90 else "grey"
    hue, _, _ = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    return next(name for limit, name in _HUES if hue < limit)


def _brightness(v: float) -> str:
    if v < 60:
        return "dark"
    if v < 100:
        return "dim"
    if v < 170:
        return "balanced brightness"
    return "bright" if v < 210 else "very bright"


def _contrast(v: float) -> str:
    return "low contrast" if v < 25 else "moderate contrast" if v < 60 else "high contrast"


def _colours(v: float) -> str:
    if v < 10:
        return "almost no colour"
    if v < 25:
        return "muted colours"
    if v < 50:
        return "moderate colours"
    return "rich colours" if v < 80 else "vivid colours"


def overview(width: int, height: int, source_format: str, jpeg_quality: int | None, stats: ImageStats) -> str:
    """Step 1: what can be measured about the picture as a whole."""
    shape = (
        "square"
        if abs(width - height) <= 0.05 * max(width, height)
        else ("landscape" if width > height else "portrait")
    )
    quality = f" (JPEG quality {jpeg_quality})" if jpeg_quality is not None else ""
    if stats.border_uniformity < 8:
        background = f"on a plain {colour_name(stats.border_color)} background"
    else:
        background = "with a detailed background"
    return (
        f"The image is a {width}x{height} {shape} {source_format} picture{quality} with "
        f"{_brightness(stats.brightness)}, {_contrast(stats.contrast)} and {_colours(stats.colourfulness)}, "
        f"{background}."
    )


def scene_facts(scene: SceneAnalysis, width: int, height: int) -> str:
    """Step 1's second sentence: faces, text overlays and the product's extent, when analysed."""
    parts: list[str] = []
    if scene.product is not None and scene.product.box is not None:
        parts.append(f"the product spans {scene.product.fill:.0%} of the frame")
    if scene.faces:
        n = len(scene.faces)
        parts.append("one face is visible" if n == 1 else f"{_count(n)} faces are visible")
    elif scene.faces is not None:
        parts.append("no face is visible")
    if scene.text:
        where = sorted({describe_region(t.box, width, height) for t in scene.text})
        parts.append(f"text or a logo is overlaid {_join(where)}")
    elif scene.text is not None:
        parts.append("no text is overlaid")
    if not parts:
        return ""
    sentence = _join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def _count(n: int) -> str:
    return _NUMBERS[n] if n < len(_NUMBERS) else str(n)


def norm_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box -> the 0-1000 integer scale of the ViDA/Qwen2-VL text format."""
    x1, y1, x2, y2 = box
    return (
        round(x1 / width * 1000),
        round(y1 / height * 1000),
        round(x2 / width * 1000),
        round(y2 / height * 1000),
    )


def _grounded_ref(d: ReportDistortion, width: int, height: int) -> str:
    x1, y1, x2, y2 = norm_box(d.box, width, height)
    return f"{REF_START}{d.severity} {d.type.lower()}{REF_END}{BOX_START}({x1},{y1}),({x2},{y2}){BOX_END}"


def _plain_ref(
    d: ReportDistortion,
    faces: tuple[tuple[int, int, int, int], ...] = (),
    product: tuple[int, int, int, int] | None = None,
) -> str:
    """'moderate noise on the product, in the lower right corner (box ...)': on a face when it
    covers one, else placed against the product when the product's box is known."""
    x1, y1, x2, y2 = d.box
    on_faces = len(faces_in(d.box, faces))
    region = on_face_region(d.region, on_faces)
    place = "" if on_faces or d.region == "across the whole image" else product_place(d.box, product)
    where = f"{place}, {region}" if place else region
    return f"{d.severity} {d.type.lower()} {where} (box {x1},{y1},{x2},{y2})"


def _paragraph(items: Sequence[ReportDistortion], ref: dict[int, str]) -> str:
    name = items[0].type.lower()
    if len(items) == 1:
        d = items[0]
        return f"There is one {ref[id(d)]}: {d.impact}."
    count = _NUMBERS[len(items)] if len(items) < len(_NUMBERS) else str(len(items))
    sentences = [f"There are {count} instances of {name}."]
    sentences += [f"{ref[id(d)][0].upper()}{ref[id(d)][1:]}: {d.impact}." for d in items]
    return " ".join(sentences)


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _key_line(keys: Sequence[ReportDistortion], ref: dict[int, str]) -> str:
    if not keys:
        return "No single distortion stands out; the overall impression comes from the image as a whole."
    if len(keys) == 1:
        return f"The key distortion is the {ref[id(keys[0])]}, which decides the overall impression."
    return f"The key distortions are the {_join([ref[id(d)] for d in keys])}, which decide the impression."


def build_description(
    distortions: Sequence[ReportDistortion],
    grade: str,
    width: int,
    height: int,
    source_format: str,
    jpeg_quality: int | None,
    stats: ImageStats,
    scene: SceneAnalysis = NO_SCENE,
) -> Description:
    """Write the four steps, plus the same text in the grounded ViDA format. With a `scene`
    analysis, step 1 names faces and text overlays and a distortion on a face says so."""
    first = overview(width, height, source_format, jpeg_quality, stats)
    facts = scene_facts(scene, width, height)
    first = f"{first} {facts}" if facts else first
    order = {name: i for i, name in enumerate(DISTORTIONS)}
    groups: dict[str, list[ReportDistortion]] = {}
    for d in sorted(distortions, key=lambda d: order.get(d.type, len(order))):
        groups.setdefault(d.type, []).append(d)
    keys = [d for d in distortions if d.key]
    conclusion = f"Thus, the quality of the image is {grade}."

    def render(ref: dict[int, str]) -> tuple[tuple[str, ...], str]:
        paragraphs = tuple(_paragraph(items, ref) for items in groups.values())
        return paragraphs or ("There are no visible distortions in the image.",), _key_line(keys, ref)

    product = scene.product.box if scene.product is not None else None
    plain_paragraphs, plain_key = render(
        {id(d): _plain_ref(d, scene.face_boxes, product) for d in distortions}
    )
    grounded_paragraphs, grounded_key = render({id(d): _grounded_ref(d, width, height) for d in distortions})
    grounded = "\n".join((first, *grounded_paragraphs, grounded_key, conclusion))
    return Description(first, plain_paragraphs, plain_key, conclusion, grounded)
