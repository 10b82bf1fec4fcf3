"""service.iqa.postprocess: model tensors become boxes, severities, key flags and a grade."""

import json

import numpy as np
import pytest

from service.domain.taxonomy import DISTORTION_INDEX
from service.iqa.postprocess import (
    DEFAULT,
    PostprocessError,
    PostprocessParams,
    load_params,
    postprocess,
    postprocess_batch,
    save_params,
)

NOISE = DISTORTION_INDEX["Noise"]
UNDER = DISTORTION_INDEX["Underexposure"]
MOTION = DISTORTION_INDEX["Motion blur"]


def empty_outputs(fine: int = 7, score: float = 4.0) -> dict[str, np.ndarray]:
    probs = np.full(10, 0.01, np.float32)
    probs[fine] = 0.91
    return {
        "DIST_MAPS": np.zeros((10, 20, 20), np.float32),
        "SEVERITY_MAPS": np.zeros((10, 20, 20), np.float32),
        "PRESENCE": np.zeros(10, np.float32),
        "KEY": np.zeros(10, np.float32),
        "GRADE_PROBS": probs,
        "SCORE": np.array([score], np.float32),
    }


def with_blob(out, t, rows, cols, value=0.9, severity=1.0, presence=0.9, key=0.9):
    out["DIST_MAPS"][t, rows[0] : rows[1], cols[0] : cols[1]] = value
    out["SEVERITY_MAPS"][t, rows[0] : rows[1], cols[0] : cols[1]] = severity
    out["PRESENCE"][t] = presence
    out["KEY"][t] = key
    return out


def test_empty_maps_give_no_distortions_and_the_grade_from_the_fine_level():
    """No presence -> no boxes; argmax level h (index 7) is 'good'; SCORE passes through."""
    pred = postprocess(empty_outputs(fine=7, score=3.7), 800, 600)
    assert pred.distortions == ()
    assert pred.fine_level == "h" and pred.grade == "good"
    assert pred.score == pytest.approx(3.7)
    assert (pred.width, pred.height) == (800, 600)


@pytest.mark.parametrize(
    ("fine", "grade"), [(0, "bad"), (1, "bad"), (2, "poor"), (5, "fair"), (9, "excellent")]
)
def test_fine_levels_map_two_per_grade(fine, grade):
    """Levels a,b -> bad ... i,j -> excellent."""
    assert postprocess(empty_outputs(fine=fine), 100, 100).grade == grade


def test_a_blob_becomes_a_box_in_original_pixels_of_a_non_square_image():
    """Cells x 5..9, y 10..14 of the 20-grid on a 640x320 image -> about (160,160)-(320,240)."""
    out = with_blob(empty_outputs(), NOISE, rows=(10, 15), cols=(5, 10))
    exact = postprocess(out, 640, 320, PostprocessParams(upsample=1))
    (d,) = exact.distortions
    assert d.distortion == "Noise"
    assert d.box == (160, 160, 320, 240)
    (smooth,) = postprocess(out, 640, 320).distortions
    assert np.allclose(smooth.box, (160, 160, 320, 240), atol=8)


def test_severity_is_the_mean_of_the_severity_map_over_the_region():
    """Severity values 0.2 / 1.0 / 1.8 name slight / moderate / severe."""
    for value, name in ((0.2, "slight"), (1.0, "moderate"), (1.8, "severe")):
        out = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), severity=value)
        (d,) = postprocess(out, 200, 200).distortions
        assert d.severity == name


def test_confidence_grows_with_peak_and_presence():
    """Confidence is sqrt(peak * presence): 0.9 x 0.9 -> 0.9, 0.9 x 0.4 -> 0.6."""
    strong = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), value=0.9, presence=0.9)
    weaker = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), value=0.9, presence=0.4)
    params = PostprocessParams(presence_threshold=(0.3,) * 10)
    assert postprocess(strong, 100, 100, params).distortions[0].confidence == pytest.approx(0.9, abs=1e-3)
    assert postprocess(weaker, 100, 100, params).distortions[0].confidence == pytest.approx(0.6, abs=1e-3)


def test_low_presence_suppresses_a_type_even_with_a_strong_map():
    """The image-level presence gates reporting."""
    out = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), presence=0.2)
    assert postprocess(out, 100, 100).distortions == ()


def test_present_type_without_a_region_gets_a_whole_image_box():
    """High presence but a flat low map (a global distortion) -> one box over the whole image."""
    out = empty_outputs()
    out["PRESENCE"][UNDER] = 0.95
    out["DIST_MAPS"][UNDER] = 0.3
    out["SEVERITY_MAPS"][UNDER] = 1.9
    (d,) = postprocess(out, 1024, 768).distortions
    assert d.distortion == "Underexposure" and d.box == (0, 0, 1024, 768) and d.severity == "severe"


def test_components_under_the_minimum_area_are_dropped():
    """A single-cell speck is ignored when min_area is above one cell; separate blobs give separate boxes."""
    out = with_blob(empty_outputs(), NOISE, rows=(0, 1), cols=(0, 1))
    with_blob(out, NOISE, rows=(10, 16), cols=(10, 16))
    with_blob(out, NOISE, rows=(2, 6), cols=(14, 19))
    params = PostprocessParams(upsample=1, min_area=2 / 400)
    boxes = sorted(d.box for d in postprocess(out, 400, 400, params).distortions)
    assert boxes == [(200, 200, 320, 320), (280, 40, 380, 120)]


def test_key_flag_follows_the_key_threshold():
    """Types with KEY >= threshold are key; others are not."""
    out = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), key=0.8)
    with_blob(out, MOTION, rows=(10, 14), cols=(10, 14), key=0.3)
    pred = postprocess(out, 100, 100)
    assert [d.distortion for d in pred.key_distortions] == ["Noise"]


def test_most_key_like_type_is_key_when_none_reaches_the_threshold():
    """With ensure_key, reported distortions always include one key distortion."""
    out = with_blob(empty_outputs(), NOISE, rows=(2, 6), cols=(2, 6), key=0.2)
    with_blob(out, MOTION, rows=(10, 14), cols=(10, 14), key=0.4)
    assert [d.distortion for d in postprocess(out, 100, 100).key_distortions] == ["Motion blur"]
    strict = PostprocessParams(ensure_key=False)
    assert postprocess(out, 100, 100, strict).key_distortions == ()


def test_batch_postprocessing_uses_each_items_own_size():
    """postprocess_batch gives one Prediction per item in its own frame."""
    a = with_blob(empty_outputs(), NOISE, rows=(0, 10), cols=(0, 10))
    b = empty_outputs(fine=1)
    batch = {k: np.stack([a[k], b[k]]) for k in a}
    first, second = postprocess_batch(batch, [(1000, 500), (64, 64)], PostprocessParams(upsample=1))
    assert first.distortions[0].box == (0, 0, 500, 250)
    assert second.distortions == () and second.grade == "bad"
    with pytest.raises(PostprocessError):
        postprocess_batch(batch, [(10, 10)])


def test_wrong_shapes_are_rejected():
    """A missing output or a wrong shape raises PostprocessError."""
    out = empty_outputs()
    out["DIST_MAPS"] = np.zeros((10, 10, 10), np.float32)
    with pytest.raises(PostprocessError):
        postprocess(out, 10, 10)
    del out["DIST_MAPS"]
    with pytest.raises(PostprocessError):
        postprocess(out, 10, 10)


def test_params_round_trip_through_json_and_bad_files_fail(tmp_path):
    """save_params/load_params keep every value; wrong lengths or unknown keys are errors."""
    params = PostprocessParams(
        presence_threshold=tuple(np.linspace(0.1, 0.9, 10)), key_threshold=0.4, upsample=2
    )
    path = tmp_path / "postprocess.json"
    save_params(params, path, note="tuned on val")
    assert load_params(path) == params
    path.write_text(json.dumps({"presence_threshold": [0.5] * 3}))
    with pytest.raises(PostprocessError):
        load_params(path)
    path.write_text(json.dumps({"surprise": 1}))
    with pytest.raises(PostprocessError):
        load_params(path)
    assert DEFAULT.upsample >= 1
