"""Scene analysis, pure parts: product fill from a mask, white backdrop, overlays, face wording,
and how the report uses them (text boxes in the text rule and its guidance, blur on a face)."""

from __future__ import annotations

import numpy as np

from service.domain.compliance import check_text_and_watermarks, check_white_background, run_checks
from service.domain.description import build_description, scene_facts
from service.domain.findings import ReportDistortion
from service.domain.guidance import DISTORTION_ADVICE, FACE_BLURRED_CODE, build_guidance
from service.domain.imaging import decode_image
from service.domain.measures import measure
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.profiles import PROFILES
from service.domain.scene import (
    ProductMask,
    SceneAnalysis,
    SceneNeeds,
    TextBox,
    backdrop_colour,
    background_white_share,
    cut_overlays,
    faces_in,
    mask_box,
    needs_for,
    on_face_region,
    product_from_mask,
    product_place,
    wants_faces,
)
from tests import imagefactory as f


def test_profiles_ask_only_for_the_models_their_rules_need():
    """amazon_main needs the product mask and the text detector; default needs neither; faces are
    never asked before inference."""
    assert needs_for(PROFILES["amazon_main"]) == SceneNeeds(product=True, text=True, faces=False)
    assert needs_for(PROFILES["default"]) == SceneNeeds(product=False, text=False, faces=False)
    assert needs_for(PROFILES["ebay"]).text and not needs_for(PROFILES["ebay"]).product


def test_faces_are_searched_only_when_the_model_found_blur():
    """A prediction with a blur type wants faces (face-blur guidance); one with only darkness does not."""
    blur = DetectedDistortion("Out of focus blur", "moderate", 0.8, (0, 0, 10, 10))
    dark = DetectedDistortion("Underexposure", "severe", 0.9, (0, 0, 10, 10))
    assert wants_faces(Prediction(100, 100, (dark, blur), 3, 2.5))
    assert not wants_faces(Prediction(100, 100, (dark,), 3, 2.5))
    assert not wants_faces(Prediction(100, 100, (), 8, 4.5))


def test_mask_box_ignores_specks():
    """A speck far from the product does not stretch its box."""
    mask = np.zeros((320, 320), dtype=bool)
    mask[100:200, 60:260] = True
    mask[5, 5] = True
    assert mask_box(mask) == (60, 100, 260, 200)
    assert mask_box(np.zeros((10, 10), dtype=bool)) is None


def test_fill_is_the_longer_extent_of_the_product_box_over_the_frame():
    """A 320x320 mask covering 200 of 320 columns and 100 rows of a 640x800 frame: fill 0.625."""
    mask = np.zeros((320, 320), dtype=bool)
    mask[100:200, 60:260] = True
    product = product_from_mask(mask, 640, 800, "u2netp")
    assert product.box == (120, 250, 520, 500)
    assert product.fill == 0.625  # 400 of 640 columns; 250 of 800 rows is the shorter extent
    assert product.area == round(100 * 200 / 320 / 320, 4)


def test_white_share_leaves_out_a_product_touching_the_frame():
    """A dark product touching the bottom edge of a white frame: the border band outside it is all white."""
    rgb = np.full((320, 320, 3), 255, dtype=np.uint8)
    rgb[200:320, 100:220] = 30
    mask = np.zeros((320, 320), dtype=bool)
    mask[200:320, 100:220] = True
    assert background_white_share(rgb, mask) == 1.0
    grey = rgb.copy()
    grey[mask == 0] = 240
    assert background_white_share(grey, mask) == 0.0


def test_backdrop_colour_is_found_on_a_plain_background_and_not_on_a_photo():
    """A product on grey 200 has a grey backdrop; random texture has none."""
    shot = f.product_on_white(600, 600, 0.7, background=(200, 200, 200))
    assert backdrop_colour(shot) == (200, 200, 200)
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    assert backdrop_colour(noise) is None


def test_overlays_are_cut_from_the_mask_but_text_on_the_product_stays():
    """A logo in a corner leaves the product mask; a label covering half the product stays in it."""
    mask = np.zeros((100, 100), dtype=bool)
    mask[40:90, 30:80] = True
    mask[2:8, 2:20] = True  # a logo badge the mask picked up
    cut = cut_overlays(mask, ((20, 30, 200, 70),), (1000, 1000))
    assert not cut[2:8, 2:20].any() and cut[40:90, 30:80].all()
    kept = cut_overlays(mask, ((300, 400, 800, 700),), (1000, 1000))
    assert kept[40:70, 30:80].all()


def test_a_distortion_on_a_face_is_worded_as_on_a_face():
    """A box covering a face: 'on a face in the center'; two faces: 'on two faces'; none: unchanged."""
    faces = ((40, 40, 60, 60), (70, 40, 90, 60))
    assert faces_in((30, 30, 65, 65), faces) == ((40, 40, 60, 60),)
    assert faces_in((0, 0, 20, 20), faces) == ()
    assert on_face_region("in the center", 1) == "on a face in the center"
    assert on_face_region("across the top", 2) == "on two faces across the top"
    assert on_face_region("in the center", 0) == "in the center"


def _blur(box=(100, 100, 300, 300), type_="Out of focus blur", region="in the upper left corner"):
    return ReportDistortion(type_, "moderate", box, 0.8, True, region, DISTORTION_ADVICE[type_].impact)


def test_blur_on_a_face_gives_the_face_blur_code():
    """Focus blur covering a detected face is IMG_FACE_BLURRED with face wording; elsewhere its own code."""
    (on_face,) = build_guidance([_blur()], [], "good", faces=((150, 150, 250, 250),))
    assert on_face.code == FACE_BLURRED_CODE
    assert on_face.message == (
        "Moderate blur on a face in the upper left corner: the face looks soft and its features are smeared."
    )
    assert on_face.box == (100, 100, 300, 300)
    (elsewhere,) = build_guidance([_blur()], [], "good", faces=((600, 600, 700, 700),))
    assert elsewhere.code == "IMG_OUT_OF_FOCUS"
    (noise,) = build_guidance([_blur(type_="Noise")], [], "good", faces=((150, 150, 250, 250),))
    assert noise.code == "IMG_NOISY"


def test_text_rule_fails_with_its_boxes_and_gives_one_guidance_entry_per_box():
    """Two overlays: the rule fails, names both boxes, and guidance carries one box each."""
    text = (TextBox((10, 10, 200, 60), 0.9, "SALE"), TextBox((700, 900, 990, 980), 0.8, "shop.com"))
    check = check_text_and_watermarks(text)
    assert check.passed is False and check.boxes == ((10, 10, 200, 60), (700, 900, 990, 980))
    assert "2 place(s)" in check.message and "10,10,200,60" in check.message
    guidance = build_guidance([], [check], "good")
    assert [g.code for g in guidance] == ["IMG_TEXT_OR_WATERMARK"] * 2
    assert [g.box for g in guidance] == [(10, 10, 200, 60), (700, 900, 990, 980)]


def test_text_rule_passes_without_overlays_and_is_not_checked_without_a_detector():
    """No boxes found: passed; no detector ran (None): passed is None and no guidance."""
    assert check_text_and_watermarks(()).passed is True
    unchecked = check_text_and_watermarks(None)
    assert unchecked.passed is None and build_guidance([], [unchecked], "good") == ()


def test_run_checks_uses_the_scene_for_fill_text_and_white_background():
    """With a scene, amazon_main's fill comes from the mask, the text rule fails on its box, and a
    product touching the frame does not make the white background fail."""
    image = decode_image(f.encode(f.product_on_white(800, 800, 0.5)))
    scene = SceneAnalysis(
        product=ProductMask((0, 100, 720, 700), 0.9, 0.5, "u2netp", background_white=1.0),
        text=(TextBox((20, 20, 300, 80), 0.9),),
        faces=(),
    )
    checks = {c.code: c for c in run_checks(image, PROFILES["amazon_main"], scene=scene)}
    assert checks["IMG_PRODUCT_TOO_SMALL"].passed is True and checks["IMG_PRODUCT_TOO_SMALL"].measured == 0.9
    assert checks["IMG_PRODUCT_TOO_SMALL"].boxes == ((0, 100, 720, 700),)
    assert checks["IMG_TEXT_OR_WATERMARK"].passed is False
    assert checks["IMG_NOT_WHITE_BACKGROUND"].passed is True
    stats = measure(image.rgb)
    touching = ProductMask((0, 0, 10, 10), 0.1, 0.01, "u2netp", background_white=0.5)
    assert check_white_background(stats, 0.95, touching).passed is False


def test_description_names_faces_text_and_a_distortion_on_a_face():
    """Step 1 says how many faces and where text is overlaid; step 2 puts the blur on the face."""
    scene = SceneAnalysis(
        product=ProductMask((0, 0, 500, 500), 0.5, 0.25, "u2netp"),
        text=(TextBox((800, 900, 990, 990), 0.9),),
        faces=((150, 150, 250, 250),),
    )
    assert scene_facts(scene, 1000, 1000) == (
        "The product spans 50% of the frame, one face is visible and text or a logo is overlaid "
        "in the lower right corner."
    )
    stats = measure(np.full((100, 100, 3), 128, dtype=np.uint8))
    d = build_description([_blur()], "fair", 1000, 1000, "JPEG", 92, stats, scene)
    assert "one face is visible" in d.overview
    assert "on a face in the upper left corner" in d.paragraphs[0]
    nothing = SceneAnalysis(text=(), faces=())
    assert scene_facts(nothing, 10, 10) == "No face is visible and no text is overlaid."
    assert scene_facts(SceneAnalysis(), 10, 10) == ""


def test_face_blur_guidance_is_rendered_in_german():
    """The German report words IMG_FACE_BLURRED with its own catalogue entries, region included."""
    from service.domain.localize import localize_guidance

    (g,) = build_guidance([_blur()], [], "good", faces=((150, 150, 250, 250),))
    de = localize_guidance(g, "de", {})
    assert de.message.startswith("Unschärfe auf einem Gesicht (mittel) in der oberen linken Ecke:")
    assert "das Gesicht wirkt weich" in de.message and de.fix.startswith("Stellen Sie auf das Gesicht")


def test_a_distortion_is_placed_on_the_product_or_in_the_background():
    """Inside the product's box: on the product; outside: in the background; straddling: its edge."""
    product = (200, 200, 800, 800)
    assert product_place((300, 300, 500, 500), product) == "on the product"
    assert product_place((0, 0, 150, 150), product) == "in the background"
    assert product_place((100, 100, 400, 400), product) == "over the product's edge"
    assert product_place((0, 0, 10, 10), None) == ""


def test_the_description_says_a_distortion_is_on_the_product_on_a_plain_backdrop():
    """A product shot on white (border-colour product found without any model): a noise box on the
    product is described as on the product, one in an empty corner as in the background."""
    from service.domain.report import build_report

    image = decode_image(f.png_bytes(f.product_on_white(1000, 1000, 0.6)))
    on = DetectedDistortion("Noise", "moderate", 0.8, (420, 420, 580, 580))
    off = DetectedDistortion("Noise", "slight", 0.7, (0, 0, 120, 120))
    report = build_report(Prediction(1000, 1000, (on, off), 5, 3.0), image, "default", "m")
    text = " ".join(report.description.paragraphs)
    assert "noise on the product, in the center" in text, text
    assert "noise in the background, in the upper left corner" in text, text
