"""Scene analysis: where the product is, which text overlays and faces the picture holds.

The port (`SceneAnalyzer`) and its result (`SceneAnalysis`, plain data) live here so the
report builder and the marketplace checks stay pure: an adapter (service.adapters.vision)
runs the models, the domain only reads boxes and numbers.

Product fill follows Amazon's "the product fills 85% of the frame": the longer extent of
the product's bounding box relative to the same side of the frame (layout.product_fill).
The mask's own area share is reported beside it (`product_area`) but decides nothing.

A field left None was not analysed (the profile has no rule that needs it); an empty
tuple means "analysed, nothing found".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np

from service.domain.imaging import DecodedImage
from service.domain.layout import product_box, product_fill
from service.domain.measures import ImageStats, border_band, sample, white_fraction
from service.domain.prediction import Box, Prediction
from service.domain.profiles import MarketplaceProfile

MIN_COMPONENT_SHARE = 0.002  # mask components smaller than this share of the mask are specks
BACKDROP_SPREAD = 8  # a plain backdrop's border pixels stay this close to its colour (JPEG noise)
BACKDROP_SHARE = 0.8  # ... on at least this share of the border band (photos: < 0.65, backdrops: > 0.86)
FACE_OVERLAP = 0.3  # a distortion is "on a face" when this share of the face lies inside its box
BLUR_TYPES = frozenset({"Low clarity", "Out of focus blur", "Motion blur"})


@dataclass(frozen=True)
class SceneNeeds:
    """Which analyses a profile's rules need; the costly models run only when asked."""

    product: bool = False  # salient-object mask: product fill, white background around it
    text: bool = False  # text / watermark / logo overlay detector
    faces: bool = False  # frontal faces: face-blur guidance and wording (see with_faces)


def needs_for(profile: MarketplaceProfile) -> SceneNeeds:
    """The analyses `profile` needs before the model has answered: the product mask for fill or
    white-background rules, text for the no-text rule. Faces are not among them: see wants_faces."""
    return SceneNeeds(
        product=profile.min_product_fill is not None or profile.white_background,
        text=profile.no_text_or_watermarks,
    )


def wants_faces(prediction: Prediction) -> bool:
    """Faces matter only where the model found blur (IMG_FACE_BLURRED, "on a face" wording), so
    they are searched after inference and only then: the LBP cascade costs about 5 ms of CPU per
    photo on this project's 2-core machines (the Haar cascade took 150 ms), on the sync path."""
    return any(d.distortion in BLUR_TYPES for d in prediction.distortions)


def with_faces(scene: SceneAnalysis, faces: tuple[Box, ...] | None) -> SceneAnalysis:
    return replace(scene, faces=faces)


@dataclass(frozen=True)
class TextBox:
    box: Box  # pixels of the original frame
    score: float  # mean detector probability inside the box, 0..1
    text: str = ""  # what the recogniser read there (verification only; not shown to merchants)


@dataclass(frozen=True)
class ProductMask:
    """Where the product is, in the original frame, and how it was found."""

    box: Box | None  # bounding box of the product, None when no product stands out
    fill: float  # longer extent of `box` over the frame side (Amazon's rule), 0 without a box
    area: float  # share of the frame the mask itself covers
    method: str  # "u2netp" (salient-object mask) or "border-colour" (local heuristic)
    background_white: float | None = None  # share of background pixels (outside the mask) that are white


@dataclass(frozen=True)
class SceneAnalysis:
    product: ProductMask | None = None  # None: not analysed
    text: tuple[TextBox, ...] | None = None  # None: not analysed
    faces: tuple[Box, ...] | None = None  # None: not analysed
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def face_boxes(self) -> tuple[Box, ...]:
        return self.faces or ()


NO_SCENE = SceneAnalysis()


class SceneAnalyzer(Protocol):
    """Contract: analyse `image` (boxes in the original frame, i.e. image.width x image.height),
    running only what `needs` asks for; never raises for image content (an unreadable result
    is reported as not analysed, None). Models load lazily on first use in the calling process."""

    def analyse(self, image: DecodedImage, needs: SceneNeeds) -> SceneAnalysis: ...


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box (in mask pixels) of a boolean mask's components, specks ignored; None if empty."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return None
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_area = max(1, MIN_COMPONENT_SHARE * m.size)
    keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not keep:
        return None
    x1 = min(int(stats[i, cv2.CC_STAT_LEFT]) for i in keep)
    y1 = min(int(stats[i, cv2.CC_STAT_TOP]) for i in keep)
    x2 = max(int(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]) for i in keep)
    y2 = max(int(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT]) for i in keep)
    return (x1, y1, x2, y2)


def backdrop_colour(rgb: np.ndarray) -> tuple[int, int, int] | None:
    """The colour of a plain backdrop: the border band's median colour when at least
    BACKDROP_SHARE of the band lies within BACKDROP_SPREAD of it on every channel; else None
    (a photo or gradient). A product touching the frame covers part of the band, never most."""
    small, _ = sample(rgb)
    band = border_band(small).astype(np.int16)
    median = np.median(band, axis=0)
    if (np.abs(band - median).max(axis=1) <= BACKDROP_SPREAD).mean() < BACKDROP_SHARE:
        return None
    r, g, b = (int(v) for v in median)
    return (r, g, b)


def colour_mask(rgb: np.ndarray, background: tuple[int, int, int], tolerance: int = 30) -> np.ndarray:
    """Pixels with some channel more than `tolerance` away from the background colour (layout's
    border-colour rule, as a mask)."""
    colour = np.array(background, dtype=np.int16)
    lo = np.clip(colour - tolerance, 0, 255).astype(np.uint8)
    hi = np.clip(colour + tolerance, 0, 255).astype(np.uint8)
    return cv2.inRange(np.ascontiguousarray(rgb), lo, hi) == 0


def cut_overlays(mask: np.ndarray, overlays: tuple[Box, ...], frame: tuple[int, int]) -> np.ndarray:
    """`mask` without the text overlays (boxes in a (w, h) `frame`, grown by half their height for
    a badge or banner behind the text), except an overlay holding a quarter or more of the mask:
    that is text on the product itself, which stays."""
    out = mask.copy()
    mh, mw = mask.shape[:2]
    total = max(1, int(mask.sum()))
    for box in overlays:
        pad = (box[3] - box[1]) // 2
        grown = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
        x1, y1, x2, y2 = scale_box(grown, frame, (mw, mh))
        if mask[y1:y2, x1:x2].sum() < 0.25 * total:
            out[y1:y2, x1:x2] = False
    return out


def scale_box(box: Box, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """A box in a (w, h) frame -> the same box in another (w, h) frame, clipped to it."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x1, y1, x2, y2 = box
    return (
        max(0, round(x1 * sx)),
        max(0, round(y1 * sy)),
        min(to_size[0], round(x2 * sx)),
        min(to_size[1], round(y2 * sy)),
    )


def product_from_mask(
    mask: np.ndarray,
    width: int,
    height: int,
    method: str,
    rgb: np.ndarray | None = None,
    white_mask: np.ndarray | None = None,
) -> ProductMask:
    """Product box, fill and area from a boolean mask of any size covering the whole frame.

    `rgb` (the decoded pixels, any size) adds the share of white border pixels outside the mask
    (outside `white_mask` when given: the product with its overlays).
    """
    mh, mw = mask.shape[:2]
    area = round(float(mask.mean()), 4)
    found = mask_box(mask)
    white = None if rgb is None else background_white_share(rgb, mask if white_mask is None else white_mask)
    if found is None:
        return ProductMask(None, 0.0, area, method, white)
    box = scale_box(found, (mw, mh), (width, height))
    return ProductMask(box, round(product_fill(box, width, height), 4), area, method, white)


def background_white_share(rgb: np.ndarray, mask: np.ndarray, level: int = 250) -> float | None:
    """Share of the border band's pixels (2% of the shorter side along every edge, as
    measures.border_band) that are white on all channels, leaving out the product mask grown by
    a margin for its soft edge: a product touching the frame does not count as background.
    None when the product covers nearly all of the band."""
    h, w = mask.shape[:2]
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    margin = max(1, round(0.02 * max(h, w)))
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    band = np.zeros((h, w), dtype=bool)
    t = max(1, round(0.02 * min(h, w)))
    band[:t], band[-t:], band[:, :t], band[:, -t:] = True, True, True, True
    background = band & ~grown
    if background.sum() < 0.1 * band.sum():
        return None
    return round(white_fraction(small[background], level), 4)


def _overlap_share(face: Box, box: Box) -> float:
    fx1, fy1, fx2, fy2 = face
    ix = max(0, min(fx2, box[2]) - max(fx1, box[0]))
    iy = max(0, min(fy2, box[3]) - max(fy1, box[1]))
    area = max(1, (fx2 - fx1) * (fy2 - fy1))
    return ix * iy / area


def faces_in(box: Box, faces: tuple[Box, ...]) -> tuple[Box, ...]:
    """The faces that `box` covers (at least FACE_OVERLAP of the face's area)."""
    return tuple(f for f in faces if _overlap_share(f, box) >= FACE_OVERLAP)


PLAIN_BORDER = 20.0  # border uniformity (measures.ImageStats) under which the background is plain


def plain_backdrop_product(image: DecodedImage, stats: ImageStats) -> ProductMask | None:
    """The product by its difference from a plain backdrop's colour (service.domain.layout: a few
    ms on a sample); None when the background is not plain enough to tell."""
    if stats.border_uniformity > PLAIN_BORDER:
        return None
    found = product_box(image.rgb, stats.border_color)
    if found is None:
        return ProductMask(None, 0.0, 0.0, "border-colour")
    box = image.to_original_frame(found) if image.reduced else found
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1) / (image.width * image.height)
    return ProductMask(
        box, round(product_fill(box, image.width, image.height), 4), round(area, 4), "border-colour"
    )


ON_PRODUCT = 0.7  # share of a distortion's box inside the product's box to call it "on the product"
IN_BACKGROUND = 0.15  # ... at most this share inside: "in the background"


def product_place(box: Box, product: Box | None) -> str:
    """Where `box` lies relative to the product: "on the product", "in the background", "over the
    product's edge" (it straddles the outline), or "" when the product is not known."""
    if product is None:
        return ""
    inside = _overlap_share(box, product)  # share of the distortion's box inside the product's
    if inside >= ON_PRODUCT:
        return "on the product"
    if inside <= IN_BACKGROUND:
        return "in the background"
    return "over the product's edge"


def on_face_region(region: str, face_count: int) -> str:
    """'in the upper left corner' -> 'on a face in the upper left corner' (or 'on two faces ...')."""
    if face_count <= 0:
        return region
    what = "a face" if face_count == 1 else f"{face_count} faces" if face_count > 2 else "two faces"
    return f"on {what} {region}"
