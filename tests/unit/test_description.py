"""The four-step description: measured overview, paragraphs per distortion, key line, exact last line."""

from __future__ import annotations

import pytest

from service.domain.description import build_description, colour_name, overview
from service.domain.findings import ReportDistortion
from service.domain.guidance import DISTORTION_ADVICE
from service.domain.measures import measure
from service.iqa.vida import parse_description
from tests import imagefactory as f

W, H = 1000, 800


def dist(type_, severity, box, key=False, region="in the lower right corner"):
    return ReportDistortion(type_, severity, box, 0.9, key, region, DISTORTION_ADVICE[type_].impact)


ITEMS = [
    dist("Motion blur", "moderate", (600, 500, 990, 790), key=True),
    dist("Noise", "slight", (0, 0, 300, 200), region="in the upper left corner"),
    dist("Noise", "severe", (0, 0, 1000, 800), key=True, region="across the whole image"),
]


def describe(items, grade="fair", rgb=None):
    rgb = f.product_on_white(W, H, 0.8) if rgb is None else rgb
    return build_description(items, grade, W, H, "JPEG", 92, measure(rgb))


@pytest.mark.parametrize("grade", ["bad", "poor", "fair", "good", "excellent"])
def test_last_line_is_exactly_the_grade_sentence(grade):
    """Step 4 is exactly 'Thus, the quality of the image is <grade>.'."""
    d = describe(ITEMS, grade)
    assert d.lines[-1] == f"Thus, the quality of the image is {grade}."
    assert d.text.split("\n")[-1] == d.conclusion


def test_key_line_is_second_to_last_and_names_the_key_distortions():
    """Step 3 (second-to-last) names every key distortion and no other."""
    d = describe(ITEMS)
    assert d.text.split("\n")[-2] == d.key_line
    assert "moderate motion blur" in d.key_line and "severe noise" in d.key_line
    assert "slight noise" not in d.key_line


def test_one_paragraph_per_distortion_type_with_box_region_and_impact():
    """Step 2: noise (two instances) and motion blur, each sentence with region, pixel box and impact."""
    d = describe(ITEMS)
    assert len(d.paragraphs) == 2
    noise, blur = d.paragraphs  # taxonomy order: Noise before Motion blur
    assert noise.startswith("There are two instances of noise.")
    assert "in the upper left corner (box 0,0,300,200)" in noise
    assert DISTORTION_ADVICE["Noise"].impact in noise
    assert "moderate motion blur in the lower right corner (box 600,500,990,790)" in blur
    assert DISTORTION_ADVICE["Motion blur"].impact in blur


def test_no_distortions_still_gives_four_steps():
    """A clean image: overview, 'no visible distortions', no key distortion, the grade."""
    d = describe([], "excellent")
    assert len(d.lines) == 4
    assert d.paragraphs == ("There are no visible distortions in the image.",)
    assert "No single distortion stands out" in d.key_line


def test_overview_is_built_from_measurements():
    """Step 1 states size, shape, format, JPEG quality, brightness, contrast, colour and background."""
    text = overview(1000, 800, "JPEG", 92, measure(f.product_on_white(1000, 800, 0.8)))
    assert text.startswith("The image is a 1000x800 landscape JPEG picture (JPEG quality 92) with")
    assert text.endswith("on a plain white background.")
    dark = overview(500, 500, "PNG", None, measure(f.solid(500, 500, (15, 15, 15))))
    assert "square PNG picture with dark, low contrast and almost no colour" in dark
    assert "plain black background" in dark
    busy = overview(400, 600, "PNG", None, measure(f.gradient(400, 600)))
    assert "portrait" in busy and "detailed background" in busy


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 255, 255), "white"),
        ((5, 5, 5), "black"),
        ((128, 128, 128), "grey"),
        ((220, 20, 20), "red"),
        ((20, 200, 20), "green"),
        ((20, 40, 220), "blue"),
        ((250, 220, 30), "yellow"),
    ],
)
def test_colour_names(rgb, name):
    """Background colours get plain names."""
    assert colour_name(rgb) == name


def test_grounded_text_is_scored_like_the_challenge_extraction():
    """The ViDA-format text parses back (organisers' rules) to our distortions, key ones and grade."""
    d = describe(ITEMS, "poor")
    parsed = parse_description(d.grounded, W, H)
    assert parsed["image_quality"] == "poor"
    found = {(x["distortion"], x["severity"], tuple(x["coordinates"])) for x in parsed["distortions"]}
    assert found == {(i.type, i.severity, i.box) for i in ITEMS}
    keys = {(x["distortion"], x["severity"]) for x in parsed["key_distortions"]}
    assert keys == {("Motion blur", "moderate"), ("Noise", "severe")}
    assert "<|box_start|>(600,625),(990,988)<|box_end|>" in d.grounded
