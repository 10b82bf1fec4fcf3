"""Multiple-choice quality questions answered from a report (the default model, no MLLM)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from service.domain.findings import ReportDistortion
from service.domain.perception import Finding, answer, concern_of, findings, place_box
from service.domain.prompts import PROMPT_VERSION, description_prompt, perception_prompt, region_prompt

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "vida-mipi-baseline" / "perception.json"
SEVERITY_Q = (
    "You are an expert in image quality assessment. Please assess the severity of the distortion, which "
    "can be one of the following three levels:\nNot visible: ... Severe: ...\nHere is the question: "
    "There is {what} affecting {where}. How severe is it?"
)
SEVERITY_OPTIONS = ["Minor", "Moderate", "Severe", "Not visible"]

FOUND = (
    Finding("Low clarity", "moderate", (0, 0, 1000, 1000), 0.9, False),
    Finding("Underexposure", "severe", (0, 0, 480, 470), 0.8, True),
    Finding("Noise", "slight", (520, 530, 1000, 1000), 0.4, False),
)


def test_type_questions_pick_the_found_type_and_the_absent_one():
    options = ["Motion blur", "Underexposure", "Edge ringing effect", "Overexposure"]
    a = answer("What type of distortion is present in this image?", options, FOUND)
    assert (a.status, a.concern, a.letter) == ("ANSWERED", "type", "B")
    options = ["Low clarity", "Noise", "Motion blur", "Underexposure"]
    a = answer("What type of distortion is not present in this image?", options, FOUND)
    assert (a.status, a.letter) == ("ANSWERED", "C")


def test_significance_is_the_key_distortion():
    options = ["Noise", "Chromatic aberration", "Underexposure", "Low clarity"]
    a = answer("What is the most significant distortion in the image?", options, FOUND)
    assert (a.status, a.concern, a.letter) == ("ANSWERED", "significance", "C")


def test_significance_narrowed_to_an_object_is_answered_for_the_whole_image():
    options = ["Noise", "Vignetting", "Underexposure", "Color banding"]
    a = answer("What is the most significant distortion affecting the stage lights?", options, FOUND)
    assert (a.status, a.letter) == ("BEST_EFFORT", "C")
    assert "does not recognise objects" in a.explanation


@pytest.mark.parametrize(
    "what,where,letter",
    [
        ("an underexposure", "the upper-left corner of the image", "C"),  # severe there
        ("a noise", "the bottom-right corner", "A"),  # slight -> Minor
        ("a motion blur", "the centre", "D"),  # not found -> Not visible
        ("an underexposure", "the lower-right corner", "D"),  # found, but elsewhere
    ],
)
def test_severity_is_read_from_the_instance_at_the_named_place(what, where, letter):
    a = answer(SEVERITY_Q.format(what=what, where=where), SEVERITY_OPTIONS, FOUND)
    assert (a.status, a.concern, a.letter) == ("ANSWERED", "severity", letter)


def test_position_questions_over_parts_of_the_frame_are_answered():
    options = ["The upper-left corner", "The lower-right corner", "The upper-right corner", "The center"]
    a = answer("Which part of the image is affected by underexposure?", options, FOUND)
    assert (a.status, a.concern, a.letter) == ("ANSWERED", "position", "A")
    found = FOUND[1:]  # no global low clarity
    a = answer("Which part of the image does not exhibit any distortion?", options, found)
    assert (a.status, a.letter) == ("ANSWERED", "C")


def test_questions_about_objects_are_out_of_scope_not_guessed():
    options = ["The wooden cutting board", "The gloved hand", "The text overlay", "The background"]
    a = answer("Which part of the image is without any distortion?", options, FOUND)
    assert a.status == "OUT_OF_SCOPE" and a.index is None and a.letter == ""
    assert "does not recognise objects" in a.explanation


def test_other_questions_say_what_the_model_answers():
    a = answer("Is this photo suitable for a magazine cover?", ["Yes", "No"], FOUND)
    assert a.status == "OUT_OF_SCOPE" and a.concern is None
    with pytest.raises(ValueError):
        answer("What type of distortion is present?", ["Noise"], FOUND)


def test_every_real_challenge_question_gets_an_option_or_a_reason():
    """All 2,567 ViDA-Bench questions: an answer inside the options, or OUT_OF_SCOPE with a reason;
    the concern is recognised for every type, significance and severity question."""
    items = json.loads(CORPUS.read_text(encoding="utf-8"))
    statuses: Counter = Counter()
    for item in items:
        a = answer(item["question"], item["candidates"], FOUND)
        statuses[a.status] += 1
        assert a.explanation
        assert (a.index is None) == (a.status == "OUT_OF_SCOPE")
        assert a.index is None or 0 <= a.index < len(item["candidates"])
        if item["concern"] in ("type", "severity"):
            assert concern_of(item["question"]) == item["concern"], item["question"]
    assert statuses["ANSWERED"] > 800 and statuses["OUT_OF_SCOPE"] > 0


def test_findings_come_from_report_distortions_on_the_text_scale():
    d = ReportDistortion("Noise", "slight", (0, 0, 360, 640), 0.5, False, "in the top left", "grain")
    (f,) = findings([d], 720, 1280)
    assert f.box == (0, 0, 500, 500) and f.type == "Noise"
    expected = ReportDistortion("Meaningless solid color", "severe", (0, 0, 1, 1), 1.0, False, "", "", True)
    assert findings([expected], 720, 1280) == ()


def test_place_words_map_to_parts_of_the_frame():
    assert place_box("the top-right corner") == (500, 0, 1000, 500)
    assert place_box("the whole image") == (0, 0, 1000, 1000)
    assert place_box("the cat") is None


def test_prompts_are_the_challenge_templates():
    p = perception_prompt("Which is worse?", ["Noise", "Blur"])
    assert p.user == (
        "Which is worse?\nA. Noise\nB. Blur\n"
        "Answer with a single option's letter (A, B, C, ...) from the given choices directly."
    )
    assert p.system == "You are an expert in image quality assessment." and p.version == PROMPT_VERSION
    assert region_prompt((1, 2, 3, 4)).user == (
        "What distortion affects this region <|box_start|>(1,2),(3,4)<|box_end|>?"
    )
    desc = description_prompt()
    assert desc.user == "Please evaluate the image quality in detail and provide your reasons."
    assert desc.system.endswith("Separate each step with a line break.")
    assert "Thus, the quality of the image is" in desc.system
