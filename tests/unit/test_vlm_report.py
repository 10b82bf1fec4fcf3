"""MLLM descriptions into reports: pure conversion, and the worker choosing the model per merchant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import handlers
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.vlm_report import BOTH, MLLM, description_from_text, merge, prediction_from_text
from service.domain.vlm_text import parse_description
from service.settings import Settings, SettingsError
from tests.unit.test_ask_quality import ScriptedVlm
from tests.unit.test_handlers import run_queued, submit

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "vida-mipi-baseline" / "description.json"
EXPLOSION = next(d for d in json.loads(CORPUS.read_text(encoding="utf-8")) if d["id"] == 3)


def test_a_real_description_becomes_a_prediction_in_pixels():
    parsed = parse_description(EXPLOSION["pred_ans"])
    w, h = 1000, 500
    p = prediction_from_text(parsed, w, h)
    assert [(d.distortion, d.severity, d.box, d.key) for d in p.distortions] == [
        ("Overexposure", "severe", (430, 196, 545, 248), True),
        ("Low clarity", "moderate", (312, 131, 705, 326), False),
    ]
    assert p.grade == "poor" and p.fine_level == "d" and 1.8 <= p.score < 2.6
    assert all(d.confidence == 1.0 for d in p.distortions)


def test_the_description_keeps_the_models_words_without_box_tokens():
    parsed = parse_description(EXPLOSION["pred_ans"])
    d = description_from_text(parsed)
    assert d.overview.startswith("The image depicts a bright, fiery explosion")
    assert (
        len(d.paragraphs) == 2 and "severe overexposure affecting the central white light" in d.paragraphs[0]
    )
    assert d.key_line.startswith("The severe overexposure in the central white light")
    assert d.conclusion == "Thus, the quality of the image is poor."
    assert "<|box_start|>" not in d.text and "<|box_start|>(430,391),(545,495)<|box_end|>" in d.grounded


def test_both_keeps_the_default_boxes_and_takes_the_mllm_grade():
    default = Prediction(100, 100, (DetectedDistortion("Noise", "slight", 0.7, (0, 0, 50, 50)),), 8, 4.5)
    merged = merge(default, parse_description(EXPLOSION["pred_ans"]))
    assert merged.distortions == default.distortions and merged.grade == "poor"
    with pytest.raises(ValueError):
        prediction_from_text(parse_description("No grade here."), 10, 10)


def _job_report(deps, publisher, merchant_id):
    job_id = submit(deps, merchant_id).job_id
    assert run_queued(deps, publisher) == ["DONE"]
    return handlers.get_job(deps, merchant_id, job_id).report


def test_a_merchant_on_the_mllm_gets_its_description_boxes_and_grade(env, merchant):
    deps, publisher, inference, _ = env
    handlers.set_model_choice(deps, merchant, "mllm")
    deps.vlm = ScriptedVlm(EXPLOSION["pred_ans"])
    report = _job_report(deps, publisher, merchant)
    assert report.produced_by == MLLM and inference.calls == 0
    assert [d.type for d in report.distortions] == ["Overexposure", "Low clarity"]
    assert report.grade == "poor" and report.description.overview.startswith("The image depicts")
    assert deps.vlm.prompts[0].task == "description"


def test_both_merges_the_mllm_description_with_the_default_models_boxes(env, merchant):
    deps, publisher, inference, _ = env
    deps.model_choice, deps.vlm = "both", ScriptedVlm(EXPLOSION["pred_ans"])
    report = _job_report(deps, publisher, merchant)
    assert report.produced_by == BOTH and inference.calls == 1
    assert [d.type for d in report.distortions] == ["Underexposure"]  # the fake default model's finding
    assert report.grade == "poor" and report.description.key_line.startswith("The severe overexposure")


@pytest.mark.parametrize("reply", [None, "I am not sure what this image shows."])
def test_the_default_model_reports_when_the_mllm_cannot(env, merchant, reply):
    deps, publisher, inference, _ = env
    deps.profile_model_choice, deps.vlm = {"default": "mllm"}, ScriptedVlm(reply)
    report = _job_report(deps, publisher, merchant)
    assert report.produced_by == "idetex_lite" and inference.calls == 1
    assert [d.type for d in report.distortions] == ["Underexposure"]


def test_a_merchant_choice_wins_over_its_profile_and_the_global_one(env, merchant):
    deps, *_ = env
    deps.model_choice, deps.profile_model_choice = "mllm", {"ebay": "both"}
    assert deps.choose_model(None, "generic") == "mllm"
    assert deps.choose_model(None, "ebay") == "both"
    assert deps.choose_model("default", "ebay") == "default"
    with pytest.raises(Exception, match="model choice"):
        handlers.set_model_choice(deps, merchant, "gpt")


def test_profile_model_choices_are_parsed_and_checked():
    assert Settings.from_env(
        {"IDETEX_PROFILE_MODEL_CHOICE": "amazon_main=mllm, ebay=both"}
    ).profile_choices() == {
        "amazon_main": "mllm",
        "ebay": "both",
    }
    with pytest.raises(SettingsError, match="IDETEX_PROFILE_MODEL_CHOICE"):
        Settings.from_env({"IDETEX_PROFILE_MODEL_CHOICE": "ebay:mllm"})
