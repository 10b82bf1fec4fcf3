"""ViDA-UGC annotations and grounded MLLM text read into our label and prediction dicts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from service.iqa.metrics import evaluate
from service.iqa.vida import (
    ViDAFormatError,
    canonical_vida_distortion,
    canonical_vida_severity,
    denormalise_box,
    load_vida_annotations,
    mllm_predictions,
    normalise_box,
    parse_description,
    parse_grounded,
    parse_grounded_normalised,
    vida_item_to_label,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vida"
FULL_CORPUS = Path("/work/shared/fixtures/vida-mipi-baseline")
SAMPLE = json.loads((FIXTURES / "mipi_baseline_sample.json").read_text(encoding="utf-8"))

Key = tuple[str, str, tuple[int, ...]]


def _theirs(entries: list[dict[str, Any]]) -> Counter[Key]:
    """The organisers' extraction in our vocabulary (names and severities canonical, 0-1000 boxes)."""
    return Counter(
        (
            canonical_vida_distortion(e["distortion"]),
            canonical_vida_severity(e["severity"]),
            tuple(e["coordinates"]),
        )
        for e in entries
    )


def _ours(text: str) -> Counter[Key]:
    return Counter((b.distortion, b.severity, b.box) for b in parse_grounded_normalised(text))


def grounding_agreement(items: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """Items where our parse equals the organisers' extraction, and the items where it does not."""
    same, differ = 0, []
    for item in items:
        if _ours(item["pred_ans"]) == _theirs(item["distortions"]):
            same += 1
        else:
            differ.append(item)
    return same, differ


def test_parse_grounded_maps_the_normalised_box_to_pixels() -> None:
    """(185,2),(924,334) on a 720x1280 image is x*0.72, y*1.28, rounded."""
    text = (
        "<|object_ref_start|>moderate motion blur<|object_ref_end|><|box_start|>(185,2),(924,334)<|box_end|>"
    )
    assert parse_grounded(text, 720, 1280) == [
        {
            "distortion": "Motion blur",
            "severity": "moderate",
            "confidence": 1.0,
            "coordinates": [133, 3, 665, 428],
        }
    ]


def test_parse_grounded_gives_every_box_to_the_reference_before_it() -> None:
    """One reference with several boxes yields one entry per box; 'Minor' reads as slight."""
    text = (
        "Low clarity:\n<|object_ref_start|>Severe low clarity<|object_ref_end|>"
        "<|box_start|>(0,0),(500,500)<|box_end|><|box_start|>(500,500),(1000,1000)<|box_end|>\n"
        "Noise: <|object_ref_start|>Minor noise<|object_ref_end|>"
        "<|box_start|>(1,2),(3,4)<|box_end|><|im_end|>"
    )
    got = [(b.distortion, b.severity, b.box) for b in parse_grounded_normalised(text)]
    assert got == [
        ("Low clarity", "severe", (0, 0, 500, 500)),
        ("Low clarity", "severe", (500, 500, 1000, 1000)),
        ("Noise", "slight", (1, 2, 3, 4)),
    ]


def test_parse_grounded_ignores_text_without_statements() -> None:
    """'No distortion', a box in the question and an unknown type give nothing."""
    assert parse_grounded("No distortion affects this region.<|im_end|>", 100, 100) == []
    assert parse_grounded("<|box_start|>(1,1),(9,9)<|box_end|>", 100, 100) == []
    assert (
        parse_grounded(
            "<|object_ref_start|>Severe lens flare<|object_ref_end|><|box_start|>(1,1),(9,9)<|box_end|>",
            10,
            10,
        )
        == []
    )


def test_parser_reproduces_the_organisers_grounding_extraction_on_the_sample() -> None:
    """All sample items agree except the three where the organisers drop a continuation line."""
    items = SAMPLE["grounding"]
    same, differ = grounding_agreement(items)
    assert same == len(items) - 3
    for item in differ:
        # theirs is contained in ours: the extra boxes follow a second reference of the same type block
        assert not (_theirs(item["distortions"]) - _ours(item["pred_ans"]))
        assert item["pred_ans"].count("<|object_ref_start|>") > item["pred_ans"].count(":\n")


@pytest.mark.skipif(not FULL_CORPUS.exists(), reason="full MIPI baseline corpus not present")
def test_parser_agrees_with_the_organisers_on_the_full_grounding_corpus() -> None:
    """1399 of the 1402 grounding items match exactly; the rest only add boxes the organisers drop."""
    items = json.loads((FULL_CORPUS / "grounding.json").read_text(encoding="utf-8"))
    same, differ = grounding_agreement(items)
    assert (same, len(items)) == (1399, 1402)
    assert all(not (_theirs(i["distortions"]) - _ours(i["pred_ans"])) for i in differ)


def _description_agreement(items: list[dict[str, Any]]) -> int:
    ok = 0
    for item in items:
        got = parse_description(item["pred_ans"], 1000, 1000)  # a 1000 px square keeps 0-1000 boxes
        ok += (
            set(_theirs(item["all_distortions"])) == set(_theirs(got["distortions"]))
            and set(_theirs(item["key_distortions"])) == set(_theirs(got["key_distortions"]))
            and item["image_quality"] == got["image_quality"]
        )
    return ok


def test_parse_description_reproduces_distortions_keys_and_grade() -> None:
    """Every sampled four-step description gives the organisers' distortions, key distortions and grade."""
    assert _description_agreement(SAMPLE["description"]) == len(SAMPLE["description"])


@pytest.mark.skipif(not FULL_CORPUS.exists(), reason="full MIPI baseline corpus not present")
def test_parse_description_agrees_on_the_full_corpus() -> None:
    """All 476 descriptions agree with the organisers' extraction."""
    items = json.loads((FULL_CORPUS / "description.json").read_text(encoding="utf-8"))
    assert _description_agreement(items) == len(items) == 476


def test_box_normalisation_round_trips_within_a_pixel() -> None:
    """round(x/W*1000) and back lands within one pixel on a large image."""
    box = (17, 250, 1601, 1199)
    back = denormalise_box(normalise_box(box, 1920, 1200), 1920, 1200)
    assert all(abs(a - b) <= 1 for a, b in zip(box, back, strict=True))


def test_canonical_names_accept_vida_spellings() -> None:
    """Lower case, underscores and the singular form map to the exact taxonomy string."""
    assert canonical_vida_distortion("blocking artifact") == "Blocking artifacts"
    assert canonical_vida_distortion("Out_of_focus_blur") == "Out of focus blur"
    assert canonical_vida_distortion("EDGE RINGING EFFECT") == "Edge ringing effect"
    with pytest.raises(ViDAFormatError):
        canonical_vida_distortion("lens flare")
    with pytest.raises(ViDAFormatError):
        canonical_vida_severity("extreme")


def test_loader_turns_bench_metadata_into_eval_labels() -> None:
    """Pixel boxes, exact names, severities, key by top significance, grade, fine level."""
    labels = load_vida_annotations(FIXTURES / "bench_metadata.json")
    assert [lab["image_quality"] for lab in labels] == ["poor", "good", "excellent", "bad"]
    first = labels[0]
    assert first["distortions"][0] == {
        "distortion": "Motion blur",
        "severity": "severe",
        "coordinates": [189, 2, 946, 257],
        "significance_score": 3.0,
    }
    assert [k["distortion"] for k in first["key_distortions"]] == ["Motion blur"]
    assert first["fine_level"] == "d" and first["mos"] == pytest.approx(2.31)
    second = labels[1]
    # tied significance: both are key; 'Minor' is slight; singular name is canonical
    assert [(k["distortion"], k["severity"]) for k in second["key_distortions"]] == [
        ("Edge aliasing effect", "moderate"),
        ("Blocking artifacts", "slight"),
    ]
    assert labels[2]["distortions"] == [] and labels[2]["key_distortions"] == []
    # 'No distortion' entries are not distortions
    assert [d["distortion"] for d in labels[3]["distortions"]] == [
        "Out of focus blur",
        "Meaningless solid color",
    ]


def test_loaded_labels_feed_evaluate() -> None:
    """Predictions equal to the labels score a perfect distortion mAP, key accuracy and grade accuracy."""
    labels = load_vida_annotations(FIXTURES / "bench_metadata.json")
    preds = [{**lab, "score": lab["mos"]} for lab in labels]
    r = evaluate(preds, labels)
    assert r["distortion_map"] == 1.0
    assert r["key_distortion_accuracy"] == 1.0
    assert r["image_quality_accuracy"] == 1.0
    assert r["srcc"] == pytest.approx(1.0)


def test_loader_reads_sizes_from_images_when_the_item_has_none(tmp_path: Path) -> None:
    """Without width/height the image file gives the size for the pixel boxes."""
    from PIL import Image

    Image.new("RGB", (200, 100)).save(tmp_path / "a.png")
    meta = tmp_path / "meta.json"
    item = {
        "image": "a.png",
        "level": "fair",
        "distortions": [{"distortion": "Noise", "coordinates": [0, 0, 500, 500]}],
    }
    meta.write_text(json.dumps([item]))
    (label,) = load_vida_annotations(meta, image_dir=tmp_path)
    assert label["distortions"][0]["coordinates"] == [0, 0, 100, 50]
    assert label["mos"] is None


def test_loader_accepts_pixel_coordinates_when_told() -> None:
    """coordinate_space='pixels' keeps boxes as they are, clipped to the frame."""
    item = {
        "image": "p.png",
        "width": 50,
        "height": 40,
        "mos": 3.0,
        "distortions": [{"distortion": "Overexposure", "severity": "severe", "coordinates": [5, 5, 60, 30]}],
    }
    label = vida_item_to_label(item, coordinate_space="pixels")
    assert label["distortions"][0]["coordinates"] == [5, 5, 50, 30]
    assert label["image_quality"] == "fair"


def test_loader_rejects_items_it_cannot_place() -> None:
    """No size, no grade, or a broken box is a ViDAFormatError naming the image."""
    with pytest.raises(ViDAFormatError, match="width and height"):
        vida_item_to_label({"image": "x.jpg", "level": "good", "distortions": []})
    with pytest.raises(ViDAFormatError, match="neither"):
        vida_item_to_label({"image": "x.jpg", "width": 5, "height": 5, "distortions": []})
    with pytest.raises(ViDAFormatError, match="4-number box"):
        vida_item_to_label(
            {
                "image": "x.jpg",
                "width": 5,
                "height": 5,
                "level": "good",
                "distortions": [{"distortion": "Noise", "coordinates": [1, 2]}],
            }
        )


def test_mllm_answers_become_predict_items() -> None:
    """Descriptions give keys and grade, the detection answer of the same image gives the boxes."""
    preds = mllm_predictions(SAMPLE["description"], SAMPLE["grounding"])
    assert len(preds) == len(SAMPLE["description"])
    first = preds[0]
    detection = next(
        g
        for g in SAMPLE["grounding"]
        if g["image"] == first["image"] and g["question_type"] == "distortion-detection"
    )
    assert first["distortions"] == parse_grounded(detection["pred_ans"], first["width"], first["height"])
    assert first["image_quality"] == SAMPLE["description"][0]["image_quality"]
    assert first["key_distortions"] and "score" not in first
