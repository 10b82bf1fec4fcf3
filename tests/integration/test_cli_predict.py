"""`idetex predict` against the session's real Triton: the JSON list the eval reads."""

from __future__ import annotations

import json

import pytest

from service import cli
from service.domain.taxonomy import DISTORTIONS, GRADES
from tests.imagefactory import exif_rotated_jpeg, gradient, jpeg_bytes, png_bytes

pytestmark = pytest.mark.integration


def test_predict_writes_a_prediction_per_image_in_the_original_frame(triton_grpc_url, tmp_path, capsys):
    """Every image gets a Prediction.to_json item; boxes lie in the (EXIF-rotated) original frame."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg_bytes(gradient(640, 480)))
    (images / "b.png").write_bytes(png_bytes(gradient(300, 500)))
    (images / "rotated.jpg").write_bytes(exif_rotated_jpeg(orientation=6, width=120, height=60))
    out = tmp_path / "preds.json"
    status = cli.main(
        ["predict", "--images", str(images), "--out", str(out), "--triton-url", triton_grpc_url]
    )
    assert status == 0
    items = {item["image"]: item for item in json.loads(out.read_text())}
    assert set(items) == {"a.jpg", "b.png", "rotated.jpg"}
    assert (items["rotated.jpg"]["width"], items["rotated.jpg"]["height"]) == (60, 120)
    for item in items.values():
        assert item["image_quality"] in GRADES
        for d in item["distortions"]:
            x1, y1, x2, y2 = d["coordinates"]
            assert d["distortion"] in DISTORTIONS
            assert 0 <= x1 <= x2 <= item["width"] and 0 <= y1 <= y2 <= item["height"]
    assert "3/3 images predicted" in capsys.readouterr().err


def test_challenge_writes_submission_files_from_the_real_model(triton_grpc_url, tmp_path, capsys):
    """`idetex challenge` on the real Triton: one description and one detection answer per image,
    each readable by the MLLM-text parser (the format the official scorer extracts)."""
    from service.domain.vlm_text import parse_description, parse_grounding

    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg_bytes(gradient(640, 480)))
    (images / "b.png").write_bytes(png_bytes(gradient(300, 500)))
    out = tmp_path / "submission"
    status = cli.main(
        ["challenge", "--images", str(images), "--out", str(out), "--triton-url", triton_grpc_url]
    )
    assert status == 0
    description = json.loads((out / "description.json").read_text())
    grounding = json.loads((out / "grounding.json").read_text())
    assert [d["image"] for d in description] == ["a.jpg", "b.png"]
    assert [g["question_type"] for g in grounding] == ["distortion-detection"] * 2
    assert json.loads((out / "perception.json").read_text()) == []
    for d, g in zip(description, grounding, strict=True):
        parsed = parse_description(d["pred_ans"])
        assert parsed.grade in GRADES
        found = parse_grounding(g["pred_ans"])
        assert {(m.distortion, m.box) for m in found} == {(m.distortion, m.box) for m in parsed.mentions}
    assert "2/2 images" in capsys.readouterr().err
