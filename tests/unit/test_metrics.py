"""The challenge metrics on cases small enough to compute by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import pearsonr, spearmanr

from service.iqa.metrics import (
    Detection,
    GroundTruth,
    average_precision,
    evaluate,
    grade_accuracy,
    iou,
    key_distortion_accuracy,
    key_type_set_accuracy,
    localisation_prf,
    mean_average_precision,
    pearson,
    presence_prf,
    rankdata,
    ranking_accuracy,
    spearman,
)

Box = tuple[float, float, float, float]
A: Box = (0.0, 0.0, 10.0, 10.0)
C = (50.0, 50.0, 70.0, 70.0)
FAR = (200.0, 200.0, 210.0, 210.0)


def gt(image: str, box: Box, label: str = "Noise") -> GroundTruth:
    return GroundTruth(image, label, box)


def det(image: str, box: Box, conf: float, label: str = "Noise") -> Detection:
    return Detection(image, label, box, conf)


def test_iou_matches_the_official_formula() -> None:
    """IoU has no +1 convention, touching boxes score 0, a degenerate union scores 0."""
    assert iou(A, A) == 1.0
    assert iou(A, (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou(A, (10, 0, 20, 10)) == 0.0
    assert iou((1, 1, 1, 1), (1, 1, 1, 1)) == 0.0


def test_ap_of_a_hand_computed_voc_sequence() -> None:
    """TP, FP(duplicate), TP, FP over 3 ground truths gives all-point AP 1/3 + 1/3 * 2/3 = 5/9."""
    gts = [gt("i1", A), gt("i1", (100, 100, 120, 120)), gt("i2", C)]
    dets = [
        det("i1", A, 0.9),
        det("i1", (0, 0, 10, 11), 0.8),  # duplicate of the first
        det("i2", C, 0.7),
        det("i2", FAR, 0.6),
    ]
    assert average_precision(gts, dets) == pytest.approx(5 / 9)


def test_ap_sorts_by_confidence_not_input_order() -> None:
    """The same detections in another order give the same AP: confidence decides the order."""
    gts = [gt("i1", A), gt("i2", C)]
    dets = [det("i1", FAR, 0.1), det("i2", C, 0.5), det("i1", A, 0.9)]
    assert average_precision(gts, dets) == pytest.approx(1.0)
    # with the false positive first the curve loses area
    dets_low = [det("i1", FAR, 0.95), det("i2", C, 0.5), det("i1", A, 0.4)]
    # FP, TP, TP: precision 0, 1/2, 2/3 -> interpolated 2/3 over recall 0..1
    assert average_precision(gts, dets_low) == pytest.approx(2 / 3)


def test_duplicate_detection_is_a_false_positive() -> None:
    """A second box on an already matched ground truth counts as FP (AP drops below 1 only at the end)."""
    gts = [gt("i1", A)]
    assert average_precision(gts, [det("i1", A, 0.9), det("i1", A, 0.8)]) == pytest.approx(1.0)
    flags_gts = [gt("i1", A), gt("i2", C)]
    # dup ranked before the second true hit: TP, FP, TP -> 1/2*1 + 1/2*2/3
    dets = [det("i1", A, 0.9), det("i1", A, 0.8), det("i2", C, 0.7)]
    assert average_precision(flags_gts, dets) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_voc_rule_takes_the_best_ground_truth_even_when_already_matched() -> None:
    """Official rule: a detection whose best-IoU truth is taken is FP, though another overlaps >= 0.5."""
    b = (1.0, 0.0, 11.0, 10.0)  # IoU(A, b) = 0.818
    gts = [gt("i1", A), gt("i1", b)]
    dets = [det("i1", A, 0.9), det("i1", A, 0.8)]
    assert average_precision(gts, dets, match="voc") == pytest.approx(0.5)
    assert average_precision(gts, dets, match="unmatched") == pytest.approx(1.0)


def test_detection_below_iou_threshold_is_false_positive() -> None:
    """IoU 0.45 does not match; exactly 0.5 does."""
    gts = [gt("i1", A)]
    assert average_precision(gts, [det("i1", (0, 0, 10, 4.5), 1.0)]) == 0.0
    assert average_precision(gts, [det("i1", (0, 0, 10, 5), 1.0)]) == pytest.approx(1.0)


def test_matching_stays_inside_the_image() -> None:
    """A perfect box in another image is an FP."""
    assert average_precision([gt("i1", A)], [det("i2", A, 1.0)]) == 0.0


def test_map_averages_over_the_union_of_classes() -> None:
    """Predicted-only and true-only classes each add an AP of 0 to the mean."""
    gts = [gt("i1", A, "Noise"), gt("i1", C, "Motion blur")]
    dets = [det("i1", A, 1.0, "Noise"), det("i1", FAR, 1.0, "Overexposure")]
    m, per = mean_average_precision(gts, dets)
    assert per == {"Motion blur": 0.0, "Noise": 1.0, "Overexposure": 0.0}
    assert m == pytest.approx(1 / 3)


def test_map_compares_class_names_exactly() -> None:
    """'noise' is not 'Noise': the official scorer does not normalise names for distortion mAP."""
    m, per = mean_average_precision([gt("i1", A, "Noise")], [det("i1", A, 1.0, "noise")])
    assert m == 0.0 and set(per) == {"Noise", "noise"}


def test_map_is_zero_without_predictions_or_without_truth() -> None:
    """No predictions at all, or no ground truth at all, scores 0."""
    assert mean_average_precision([gt("i1", A)], [])[0] == 0.0
    assert mean_average_precision([], [det("i1", A, 1.0)])[0] == 0.0


def test_localisation_f1_counts_iou_matches() -> None:
    """Two truths, one hit, one miss, one duplicate: P=1/3, R=1/2."""
    gts = [gt("i1", A), gt("i2", C)]
    dets = [det("i1", A, 0.9), det("i1", A, 0.8), det("i2", FAR, 0.7)]
    r = localisation_prf(gts, dets)["Noise"]
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 1)
    assert r["f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))


def test_presence_f1_ignores_boxes() -> None:
    """Image-level presence counts a type named anywhere in the right image."""
    r = presence_prf({"i1": {"Noise"}, "i2": {"Noise"}, "i3": set()}, {"i1": {"Noise"}, "i3": {"Noise"}})
    assert (r["Noise"]["tp"], r["Noise"]["fp"], r["Noise"]["fn"]) == (1, 1, 1)


def _key(name: str, box: Box) -> dict[str, Any]:
    return {"distortion": name, "coordinates": list(box)}


def test_key_accuracy_is_official_precision_of_predicted_keys() -> None:
    """Correct needs same name (case-insensitive) and IoU > 0.5; images without truth distortions skip."""
    truth: dict[str, dict[str, Any]] = {
        "i1": {"distortions": [_key("Noise", A)], "key_distortions": [_key("Noise", A)]},
        "i2": {"distortions": [_key("Motion blur", C)], "key_distortions": [_key("Motion blur", C)]},
        "i3": {"distortions": [], "key_distortions": []},
    }
    preds = {
        "i1": [_key("noise", A), _key("Noise", FAR)],  # one right (case-insensitive), one wrong box
        "i2": [],  # a missed key costs nothing in the official metric
        "i3": [_key("Noise", A)],  # skipped: no true distortions
    }
    acc, ok, total = key_distortion_accuracy(preds, truth)
    assert (acc, ok, total) == (0.5, 1, 2)
    # the stricter reading: i1 types {noise} == {noise} ok, i2 {} != {motion blur}
    assert key_type_set_accuracy(preds, truth) == 0.5


def test_key_accuracy_needs_iou_strictly_above_half() -> None:
    """IoU exactly 0.5 is not enough for a key distortion."""
    truth = {"i1": {"distortions": [_key("Noise", A)], "key_distortions": [_key("Noise", A)]}}
    assert key_distortion_accuracy({"i1": [_key("Noise", (0, 0, 10, 5))]}, truth)[0] == 0.0


def test_grade_accuracy_exact_and_within_one() -> None:
    """good vs excellent is wrong exactly but right within one level; unknown strings are wrong."""
    pairs = [("good", "excellent"), ("bad", "bad"), ("fair", "excellent"), ("", "bad")]
    assert grade_accuracy(pairs) == 0.25
    assert grade_accuracy(pairs, tolerance=1) == 0.5


def test_spearman_with_ties_matches_scipy() -> None:
    """Tie-averaged ranks reproduce scipy's spearmanr and pearsonr."""
    x = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 0.5]
    y = [2.0, 1.0, 4.0, 4.0, 3.0, 6.0, 6.0, 0.0]
    assert rankdata([3.0, 1.0, 3.0]) == [2.5, 1.0, 2.5]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert pearson(x, y) == pytest.approx(pearsonr(x, y).statistic)


def test_correlation_is_none_when_undefined() -> None:
    """A constant side or a single point has no correlation."""
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert pearson([1.0], [2.0]) is None


def test_ranking_accuracy_wants_scores_to_fall_with_strength() -> None:
    """Pairs within a group count; equal scores are wrong; images without a score are skipped."""
    series = [
        {"group": "g1", "image": "a0", "distortion": "Noise", "strength_rank": 0},
        {"group": "g1", "image": "a1", "distortion": "Noise", "strength_rank": 1},
        {"group": "g1", "image": "a2", "distortion": "Noise", "strength_rank": 2},
        {"group": "g2", "image": "b0", "distortion": "Motion blur", "strength_rank": 0},
        {"group": "g2", "image": "b1", "distortion": "Motion blur", "strength_rank": 1},
        {"group": "g2", "image": "b2", "distortion": "Motion blur", "strength_rank": 2},
    ]
    scores = {"a0": 4.0, "a1": 3.0, "a2": 3.5, "b0": 4.0, "b1": 4.0}
    r = ranking_accuracy(scores, series)
    # g1: (0,1) ok (0,2) ok (1,2) wrong; g2: (0,1) tie wrong
    assert r["pairs"] == 4
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["per_distortion"] == {"Motion blur": 0.0, "Noise": pytest.approx(2 / 3)}


def _entry(name: str, box: Box) -> dict[str, Any]:
    return {"distortion": name, "severity": "moderate", "coordinates": list(box)}


def _label(
    image: str, dists: list[tuple[str, Box]], keys: list[tuple[str, Box]], grade: str, mos: float
) -> dict[str, Any]:
    return {
        "image": image,
        "width": 100,
        "height": 100,
        "distortions": [_entry(n, b) for n, b in dists],
        "key_distortions": [_entry(n, b) for n, b in keys],
        "image_quality": grade,
        "mos": mos,
    }


def _pred(
    image: str, dists: list[tuple[str, Box]], keys: list[tuple[str, Box]], grade: str, score: float
) -> dict[str, Any]:
    item = _label(image, dists, keys, grade, 0.0)
    del item["mos"]
    for d in item["distortions"]:
        d["confidence"] = 0.9
    item["score"] = score
    return item


def test_evaluate_combines_all_metrics_and_counts_missing_predictions() -> None:
    """End to end on three labelled images, one without a prediction."""
    labels = [
        _label("x.png", [("Noise", A)], [("Noise", A)], "poor", 2.0),
        _label("y.png", [("Motion blur", C)], [("Motion blur", C)], "good", 3.8),
        _label("z.png", [], [], "excellent", 4.6),
    ]
    preds = [
        _pred("x.png", [("Noise", A)], [("Noise", A)], "poor", 2.2),
        _pred("y.png", [("Motion blur", FAR)], [], "fair", 3.0),
        _pred("other.png", [("Noise", A)], [], "bad", 1.0),
    ]
    r = evaluate(preds, labels)
    assert r["images"] == 3 and r["missing_predictions"] == 1
    assert r["ap_per_type"] == {"Motion blur": 0.0, "Noise": 1.0}
    assert r["distortion_map"] == pytest.approx(0.5)
    assert r["key_distortion_accuracy"] == 1.0 and r["key_distortion_counts"]["predicted"] == 1
    assert r["key_type_set_accuracy"] == 0.5
    assert r["image_quality_accuracy"] == pytest.approx(1 / 3)
    assert r["grade_within_one_accuracy"] == pytest.approx(2 / 3)
    assert r["srcc"] == pytest.approx(1.0)
    assert r["per_type"]["Noise"]["localisation"]["f1"] == 1.0
    assert r["per_type"]["Motion blur"]["presence"]["f1"] == 1.0
    assert r["per_type"]["Motion blur"]["localisation"]["f1"] == 0.0
    assert r["challenge_subtotal"] == pytest.approx(0.5 + 1.0 + 1 / 3)
    assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())


def test_evaluate_rejects_a_malformed_box() -> None:
    """A box without four coordinates is a clear error, not a silent miss."""
    labels = [_label("x.png", [], [], "poor", 2.0)]
    labels[0]["distortions"] = [{"distortion": "Noise", "coordinates": [0, 0, 1]}]
    with pytest.raises(ValueError, match="4 coordinates"):
        evaluate([], labels)
