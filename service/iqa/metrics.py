"""MIPI 2025 Detailed-IQA challenge metrics, plus the diagnostics the model card reports.

Pure functions, no I/O. The challenge metrics follow the official scorer
(DYEvaLab/ViDA-MIPI-code, ``eval/src/scoring.py``, the script that produced the
leaderboard's final score), line by line where it matters:

* **IoU** ``inter / (area1 + area2 - inter)`` with no +1 pixel convention; boxes that
  only touch have IoU 0; a zero union gives 0.
* **AP** (per class): predictions sorted by confidence, descending (stable, so ties keep
  input order). Each prediction takes the ground truth of the same class in the same
  image with the highest IoU *among all of them*; if that IoU >= 0.5 and that ground
  truth is still unmatched it is a TP, otherwise (below threshold, or the best one is
  already taken, e.g. a duplicate detection) an FP. This is the PASCAL VOC rule.
  All-point interpolated AP (VOC2010+): precision made monotone, area summed where
  recall changes, with the sentinels (0, 0) and (1, 0).
* **mAP**: mean over the *union* of predicted and true class names, compared as exact
  strings. A class with predictions but no ground truth has AP 0, one with ground truth
  and no predictions has AP 0. No ground truth at all, or no predictions at all: 0.
* **Key-distortion accuracy**: for every predicted key distortion of an image whose
  ground truth has at least one distortion, it is correct when its name (lower case,
  ``_`` -> space) equals a ground-truth key distortion's and the box IoU is > 0.5
  (strictly). Accuracy = correct / number of predicted key distortions. Images whose
  ground truth lists no distortion are skipped. Note that this is a precision: an image
  whose key distortions the model fails to name costs nothing. We therefore also report
  the stricter ``key_type_set_accuracy``: over every image with ground-truth
  distortions, the set of predicted key types equals the set of true key types.
* **Image-quality accuracy**: the predicted grade string equals the true one exactly.

The official repository also carries ``eval/src/grounding/compute_map.py``, an older
variant (11-point AP, match against the best *unmatched* ground truth). It is not what
the final score used; ``match="unmatched"`` reproduces its matching rule (with
all-point AP) for comparison only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.domain.taxonomy import DISTORTIONS, GRADES

IOU_THRESHOLD = 0.5
MatchRule = Literal["voc", "unmatched"]


@dataclass(frozen=True)
class GroundTruth:
    image: str
    label: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    image: str
    label: str
    box: tuple[float, float, float, float]
    confidence: float = 1.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes, as the official scorer computes it."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    if x2 < x1 or y2 < y1:
        return 0.0
    inter = (x2 - x1) * (y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union == 0 else inter / union


def match_detections(
    gts: Sequence[GroundTruth],
    dets: Sequence[Detection],
    iou_threshold: float = IOU_THRESHOLD,
    match: MatchRule = "voc",
) -> list[bool]:
    """TP flag per detection, detections taken in descending confidence (returned in that order).

    All inputs must be of one class. ``voc``: the best-IoU ground truth of the image is
    taken whether matched or not, and a taken one makes the detection an FP.
    ``unmatched``: the best-IoU ground truth among those still unmatched.
    """
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(gts):
        by_image[g.image].append(i)
    taken = [False] * len(gts)
    flags: list[bool] = []
    for det in sorted(dets, key=lambda d: d.confidence, reverse=True):
        best_iou, best = 0.0, -1
        for i in by_image.get(det.image, []):
            if match == "unmatched" and taken[i]:
                continue
            v = iou(det.box, gts[i].box)
            if v > best_iou:
                best_iou, best = v, i
        hit = best >= 0 and best_iou >= iou_threshold and not taken[best]
        if hit:
            taken[best] = True
        flags.append(hit)
    return flags


def average_precision(
    gts: Sequence[GroundTruth],
    dets: Sequence[Detection],
    iou_threshold: float = IOU_THRESHOLD,
    match: MatchRule = "voc",
) -> float:
    """All-point interpolated AP of one class (0 when the class has no ground truth)."""
    if not gts:
        return 0.0
    flags = match_detections(gts, dets, iou_threshold, match)
    recalls, precisions = [0.0], [0.0]
    tp = 0
    for n, hit in enumerate(flags, start=1):
        tp += hit
        recalls.append(tp / len(gts))
        precisions.append(tp / n)
    recalls.append(1.0)
    precisions.append(0.0)
    for i in range(len(precisions) - 2, -1, -1):
        precisions[i] = max(precisions[i], precisions[i + 1])
    return sum(
        (recalls[i + 1] - recalls[i]) * precisions[i + 1]
        for i in range(len(recalls) - 1)
        if recalls[i + 1] != recalls[i]
    )


def mean_average_precision(
    gts: Sequence[GroundTruth],
    dets: Sequence[Detection],
    iou_threshold: float = IOU_THRESHOLD,
    match: MatchRule = "voc",
) -> tuple[float, dict[str, float]]:
    """mAP over the union of predicted and true class names, and the AP of each of those classes."""
    gt_by: dict[str, list[GroundTruth]] = defaultdict(list)
    det_by: dict[str, list[Detection]] = defaultdict(list)
    for g in gts:
        gt_by[g.label].append(g)
    for d in dets:
        det_by[d.label].append(d)
    if not gt_by or not det_by:
        return 0.0, {c: 0.0 for c in sorted(set(gt_by) | set(det_by))}
    aps = {
        c: average_precision(gt_by.get(c, []), det_by.get(c, []), iou_threshold, match)
        for c in sorted(set(gt_by) | set(det_by))
    }
    return sum(aps.values()) / len(aps), aps


# ---------------------------------------------------------------- per-type diagnostics


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float | int]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_true - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def localisation_prf(
    gts: Sequence[GroundTruth], dets: Sequence[Detection], iou_threshold: float = IOU_THRESHOLD
) -> dict[str, dict[str, float | int]]:
    """Per class: a detection is a TP when the VOC rule matches it at IoU >= threshold."""
    classes = sorted({g.label for g in gts} | {d.label for d in dets})
    out = {}
    for c in classes:
        cg = [g for g in gts if g.label == c]
        cd = [d for d in dets if d.label == c]
        out[c] = _prf(sum(match_detections(cg, cd, iou_threshold)), len(cd), len(cg))
    return out


def presence_prf(
    true_sets: Mapping[str, set[str]], pred_sets: Mapping[str, set[str]]
) -> dict[str, dict[str, float | int]]:
    """Per class, image-level: is the type named anywhere in the image (no boxes)."""
    images = set(true_sets) | set(pred_sets)
    classes = sorted(set().union(*true_sets.values(), *pred_sets.values()))
    out = {}
    for c in classes:
        t = {i for i in images if c in true_sets.get(i, set())}
        p = {i for i in images if c in pred_sets.get(i, set())}
        out[c] = _prf(len(t & p), len(p), len(t))
    return out


# ---------------------------------------------------------------- key distortions and grades


def _norm_name(name: Any) -> str:
    return name.lower().replace("_", " ").strip() if isinstance(name, str) else ""


def key_distortion_accuracy(
    pred_keys: Mapping[str, Sequence[Mapping[str, Any]]],
    true_items: Mapping[str, Mapping[str, Any]],
) -> tuple[float, int, int]:
    """Official key-distortion accuracy: (accuracy, correct, total predicted keys counted).

    ``true_items[image]`` needs ``distortions`` (an image without any is skipped) and
    ``key_distortions``; each entry has ``distortion`` and ``coordinates``.
    """
    correct = total = 0
    for image, keys in pred_keys.items():
        truth = true_items.get(image)
        if truth is None or not truth.get("distortions"):
            continue
        true_keys = truth.get("key_distortions", [])
        for k in keys:
            total += 1
            name = _norm_name(k.get("distortion"))
            if any(
                name == _norm_name(t.get("distortion")) and iou(k["coordinates"], t["coordinates"]) > 0.5
                for t in true_keys
            ):
                correct += 1
    return (correct / total if total else 0.0), correct, total


def key_type_set_accuracy(
    pred_keys: Mapping[str, Sequence[Mapping[str, Any]]],
    true_items: Mapping[str, Mapping[str, Any]],
) -> float:
    """Stricter reading: share of images with true distortions whose key *type set* is named exactly."""
    images = [i for i, t in true_items.items() if t.get("distortions")]
    if not images:
        return 0.0
    ok = sum(
        {_norm_name(k.get("distortion")) for k in pred_keys.get(i, [])}
        == {_norm_name(k.get("distortion")) for k in true_items[i].get("key_distortions", [])}
        for i in images
    )
    return ok / len(images)


def grade_accuracy(pairs: Iterable[tuple[str, str]], tolerance: int = 0) -> float:
    """Share of (predicted, true) grade pairs at most ``tolerance`` levels apart (unknown: wrong)."""
    pairs = list(pairs)
    if not pairs:
        return 0.0
    ok = 0
    for pred, true in pairs:
        if pred in GRADES and true in GRADES:
            ok += abs(GRADES.index(pred) - GRADES.index(true)) <= tolerance
    return ok / len(pairs)


# ---------------------------------------------------------------- correlation and ranking


def rankdata(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties get the mean of the ranks they span (scipy's 'average')."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation, None when undefined (fewer than 2 points or a constant side)."""
    n = len(x)
    if n != len(y):
        raise ValueError("pearson: sequences differ in length")
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation with tie-averaged ranks (Pearson on the ranks)."""
    return pearson(rankdata(x), rankdata(y))


def ranking_accuracy(scores: Mapping[str, float], series: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pairwise ranking accuracy over series of one photo at increasing strengths.

    ``series`` items: ``{group, image, distortion, strength_rank}``. Every pair inside a
    group with different ranks counts; it is correct when the stronger one scores strictly
    lower (a tie is wrong). Images without a score are skipped.
    """
    groups: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for item in series:
        if item["image"] in scores:
            groups[str(item["group"])].append(
                (int(item["strength_rank"]), float(scores[item["image"]]), str(item.get("distortion", "")))
            )
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    correct = total = 0
    for members in groups.values():
        for a in members:
            for b in members:
                if a[0] < b[0]:
                    hit = int(a[1] > b[1])
                    kind = b[2] or a[2]
                    per[kind][0] += hit
                    per[kind][1] += 1
                    correct += hit
                    total += 1
    return {
        "accuracy": correct / total if total else None,
        "pairs": total,
        "groups": len(groups),
        "per_distortion": {k: v[0] / v[1] for k, v in sorted(per.items())},
    }


# ---------------------------------------------------------------- the whole evaluation


def _box(coords: Sequence[float]) -> tuple[float, float, float, float]:
    if len(coords) != 4:
        raise ValueError(f"a box needs 4 coordinates, got {list(coords)}")
    return (float(coords[0]), float(coords[1]), float(coords[2]), float(coords[3]))


def evaluate(preds: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """All metrics for ``idetex predict`` items against eval ``labels.json`` items, matched by ``image``.

    A label without a prediction counts as an empty prediction (no distortions, no grade)
    and is reported in ``missing_predictions``; predictions for images without a label are
    ignored. ``challenge_subtotal`` sums the three challenge metrics this task measures
    (distortion mAP, key-distortion accuracy, image-quality accuracy; max 3).
    """
    truth = {str(lab["image"]): lab for lab in labels}
    pred_by = {str(p["image"]): p for p in preds if str(p["image"]) in truth}
    empty: dict[str, Any] = {"distortions": [], "key_distortions": [], "image_quality": ""}
    items = [(name, pred_by.get(name, empty), lab) for name, lab in truth.items()]

    gts = [
        GroundTruth(name, d["distortion"], _box(d["coordinates"]))
        for name, _, lab in items
        for d in lab.get("distortions", [])
    ]
    dets = [
        Detection(name, d["distortion"], _box(d["coordinates"]), float(d.get("confidence", 1.0)))
        for name, p, _ in items
        for d in p.get("distortions", [])
    ]
    dmap, ap_per_type = mean_average_precision(gts, dets)
    dmap_unmatched, _ = mean_average_precision(gts, dets, match="unmatched")

    pred_keys = {name: p.get("key_distortions", []) for name, p, _ in items}
    key_acc, key_ok, key_total = key_distortion_accuracy(pred_keys, truth)
    grades = [(str(p.get("image_quality", "")), str(lab.get("image_quality", ""))) for _, p, lab in items]
    quality_acc = grade_accuracy(grades)

    scored = [(float(p["score"]), float(lab["mos"])) for _, p, lab in items if "score" in p and "mos" in lab]
    xs, ys = [s for s, _ in scored], [m for _, m in scored]

    loc = localisation_prf(gts, dets)
    pres = presence_prf(
        {n: {d["distortion"] for d in lab.get("distortions", [])} for n, _, lab in items},
        {n: {d["distortion"] for d in p.get("distortions", [])} for n, p, _ in items},
    )
    per_type = {
        c: {"ap": ap_per_type.get(c, 0.0), "localisation": loc.get(c), "presence": pres.get(c)}
        for c in [*DISTORTIONS, *sorted(set(loc) - set(DISTORTIONS))]
        if c in loc or c in pres
    }
    return {
        "images": len(items),
        "missing_predictions": len(truth) - len(pred_by),
        "distortion_map": dmap,
        "distortion_map_unmatched_rule": dmap_unmatched,
        "ap_per_type": ap_per_type,
        "key_distortion_accuracy": key_acc,
        "key_distortion_counts": {"correct": key_ok, "predicted": key_total},
        "key_type_set_accuracy": key_type_set_accuracy(pred_keys, truth),
        "image_quality_accuracy": quality_acc,
        "grade_within_one_accuracy": grade_accuracy(grades, tolerance=1),
        "srcc": spearman(xs, ys),
        "plcc": pearson(xs, ys),
        "per_type": per_type,
        "challenge_subtotal": dmap + key_acc + quality_acc,
    }
