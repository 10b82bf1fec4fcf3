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
