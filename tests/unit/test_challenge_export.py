"""`idetex challenge` export: the three MIPI 2025 submission files, default model and MLLM."""

from __future__ import annotations

import json

import pytest

from service.challenge import export
from service.domain.prompts import ChatPrompt
from service.domain.taxonomy import GRADES
from service.domain.vlm_text import NO_DISTORTION, parse_description, parse_grounding, parse_region_answer
from tests.imagefactory import gradient, jpeg_bytes, png_bytes
from tests.support.api_stack import ContractInference
from tests.unit.test_ask_quality import ScriptedVlm


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg_bytes(gradient(640, 480)))
    (images / "b.png").write_bytes(png_bytes(gradient(300, 500)))
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    mcq = [
        {
            "id": 7,
            "concern": "type",
            "image": "val/images/a.jpg",
            "question": "What type of distortion is present in this image?",
            "candidates": ["Noise", "Underexposure", "Motion blur", "Overexposure"],
        },
        {
            "id": 8,
            "concern": "position",
            "image": "a.jpg",
            "question": "Which part of the image is without any distortion?",
            "candidates": ["The dog", "The ball"],
        },
        {"id": 9, "image": "missing.jpg", "question": "?", "candidates": ["A", "B"]},
    ]
    regions = [
        {
            "id": 3,
            "image": "a.jpg",
            "question": "What distortion affects this region <|box_start|>(0,0),(300,300)<|box_end|>?",
        },
        {
            "id": 4,
            "image": "a.jpg",
            "question": "What distortion affects this region <|box_start|>(600,600),(1000,1000)<|box_end|>?",
        },
    ]
    (tmp_path / "mcq.json").write_text(json.dumps(mcq))
    (tmp_path / "regions.json").write_text(json.dumps(regions))
    return tmp_path


def load(out, name):
    return json.loads((out / name).read_text())


def test_default_model_export_writes_the_three_submission_files(folder, capsys):
    out = folder / "submission"
    summary = export(
        folder / "images",
        out,
        ContractInference(),
        questions=folder / "mcq.json",
        regions=folder / "regions.json",
        version="idetex_lite:test",
    )
    assert (summary.images, summary.described, summary.regions, summary.questions) == (3, 2, 2, 2)
    assert summary.skipped == ("broken.jpg",)
    description = load(out, "description.json")
    assert [d["image"] for d in description] == ["a.jpg", "b.png"]
    assert (description[0]["width"], description[0]["height"]) == (640, 480)
    for item in description:
        parsed = parse_description(item["pred_ans"])
        assert parsed.grade in GRADES
        # the fake model: moderate underexposure over the top-left quarter, and it is key
        assert [(m.distortion, m.severity) for m in parsed.mentions] == [("Underexposure", "moderate")]
        assert [m.distortion for m in parsed.keys] == ["Underexposure"]
    grounding = load(out, "grounding.json")
    detection = [g for g in grounding if g["question_type"] == "distortion-detection"]
    assert len(detection) == 2
    (found,) = parse_grounding(detection[0]["pred_ans"])
    assert detection[0]["pred_ans"].startswith("Underexposure:\n")
    assert found.distortion == "Underexposure" and found.box[0] == 0 and found.box[1] == 0
    region = {g["id"]: g for g in grounding if g["question_type"] == "region-perception"}
    (inside,) = parse_region_answer(region[3]["pred_ans"])
    assert inside.distortion == "Underexposure" and inside.box[2] <= 300 and inside.box[3] <= 300
    assert region[4]["pred_ans"] == NO_DISTORTION
    perception = {p["id"]: p for p in load(out, "perception.json")}
    assert perception[7]["pred_ans"] == "B." and perception[7]["image"] == "a.jpg"
    assert perception[8]["pred_ans"] == ""  # objects: out of scope, no guess
    assert "2/3 images, 2 region questions, 2 perception questions" in capsys.readouterr().err


class PromptEcho(ScriptedVlm):
    def generate(self, image: bytes, prompt: ChatPrompt, max_tokens: int = 2048) -> str:
        self.prompts.append(prompt)
        return f"<{prompt.task}>"


def test_mllm_export_keeps_the_models_raw_answers(folder):
    out = folder / "mllm"
    vlm = PromptEcho()
    export(
        folder / "images", out, None, vlm=vlm, questions=folder / "mcq.json", regions=folder / "regions.json"
    )
    assert {d["pred_ans"] for d in load(out, "description.json")} == {"<description>"}
    assert sorted(g["pred_ans"] for g in load(out, "grounding.json")) == [
        "<detection>",
        "<detection>",
        "<region>",
        "<region>",
    ]
    assert {p["pred_ans"] for p in load(out, "perception.json")} == {"<perception>"}
    region_prompts = [p for p in vlm.prompts if p.task == "region"]
    assert (
        region_prompts[0].user
        == "What distortion affects this region <|box_start|>(0,0),(300,300)<|box_end|>?"
    )
