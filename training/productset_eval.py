"""Evaluate the marketplace compliance step on the product-shot test set (training.productset).

    python -m training.productset_eval --split report [--local] [--threads 1]

Each image is decoded as the worker decodes it and measured with service.domain.report.measure_image
under the amazon_main profile (white background, fill >= 85%, no text) with the scene analyser the
service uses (service.adapters.vision.OnnxSceneAnalyzer; `--local` for the border-colour heuristic
without text detection). Reported:

- white-background accuracy: IMG_NOT_WHITE_BACKGROUND passed == the background is pure white;
- fill mean absolute error: |measured fill - true fill| (fill = the product box's longer extent over
  the frame side, the truth from the cut-out's alpha), over the images whose fill was measured, and
  the share measured; the 85% rule's agreement with the truth;
- text-overlay accuracy: IMG_TEXT_OR_WATERMARK failed == an overlay was drawn, over the images whose
  product carries no printed lettering (training.productset.LETTERED_STAMPS); over all images too, and
  how many lettered products without an overlay are flagged (text on the product is found as text);
  plus the share of drawn overlays whose box a detected box overlaps (IoU >= 0.3, or the detection
  inside it);
- milliseconds per image for each model and for the whole step (measure_image), on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from service.adapters.dbnet import DbParams
from service.adapters.vision import LocalSceneAnalyzer, OnnxSceneAnalyzer
from service.domain.imaging import decode_image
from service.domain.prediction import Box
from service.domain.report import measure_image
from service.domain.scene import SceneAnalyzer
from service.pipeline import DECODE_SIDE
from training.productset import Truth, load_truth

PROFILE = "amazon_main"
FILL_RULE = 0.85


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _covered(truth: Box, found: tuple[Box, ...]) -> bool:
    """A drawn overlay counts as found when a detection overlaps it (IoU >= 0.3) or lies mostly in it."""
    for f in found:
        inter = max(0, min(truth[2], f[2]) - max(truth[0], f[0])) * max(
            0, min(truth[3], f[3]) - max(truth[1], f[1])
        )
        if iou(truth, f) >= 0.3 or inter >= 0.5 * max(1, (f[2] - f[0]) * (f[3] - f[1])):
            return True
    return False


def _as_box(value: object) -> Box:
    x1, y1, x2, y2 = (int(v) for v in value)  # type: ignore[attr-defined]
    return (x1, y1, x2, y2)


def evaluate_one(folder: Path, t: Truth, analyzer: SceneAnalyzer) -> dict[str, Any]:
    image = decode_image((folder / t.file).read_bytes(), max_side=DECODE_SIDE)
    start = time.perf_counter()
    measured = measure_image(image, PROFILE, analyzer=analyzer)
    step_ms = (time.perf_counter() - start) * 1000
    checks = {c.code: c for c in measured.checks}
    white = checks["IMG_NOT_WHITE_BACKGROUND"]
    fill = checks["IMG_PRODUCT_TOO_SMALL"]
    text = checks["IMG_TEXT_OR_WATERMARK"]
    truth_boxes = [_as_box(o["box"]) for o in t.overlays]
    return {
        "file": t.file,
        "background": t.background,
        "white_truth": t.white,
        "white_pred": white.passed,
        "white_share": white.measured,
        "fill_truth": t.fill,
        "fill_pred": fill.measured,
        "fill_method": None if measured.scene.product is None else measured.scene.product.method,
        "text_truth": t.has_text,
        "lettering": t.lettering,
        "text_pred": None if text.passed is None else not text.passed,
        "text_boxes": [list(b) for b in text.boxes],
        "overlays_found": [_covered(b, text.boxes) for b in truth_boxes],
        "overlay_kinds": [o["kind"] for o in t.overlays],
        "step_ms": round(step_ms, 1),
        **measured.scene.timings_ms,
    }


def _ms(rows: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = sorted(r[key] for r in rows if r.get(key) is not None)
    if not values:
        return None
    return {
        "mean": round(statistics.fmean(values), 1),
        "median": round(statistics.median(values), 1),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 1),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    white_ok = sum(r["white_pred"] == r["white_truth"] for r in rows)
    measured = [r for r in rows if r["fill_pred"] is not None]
    errors = [abs(r["fill_pred"] - r["fill_truth"]) for r in measured]
    rule_ok = sum((r["fill_pred"] >= FILL_RULE) == (r["fill_truth"] >= FILL_RULE) for r in measured)
    checked = [r for r in rows if r["text_pred"] is not None]
    text_rows = [r for r in checked if not r["lettering"]]  # the overlay truth is unambiguous there
    text_ok = sum(r["text_pred"] == r["text_truth"] for r in text_rows)
    lettered = [r for r in checked if r["lettering"] and not r["text_truth"]]
    tp = sum(r["text_pred"] and r["text_truth"] for r in text_rows)
    fp = sum(r["text_pred"] and not r["text_truth"] for r in text_rows)
    fn = sum(not r["text_pred"] and r["text_truth"] for r in text_rows)
    overlays = [(k, f) for r in rows for k, f in zip(r["overlay_kinds"], r["overlays_found"], strict=True)]
    by_bg: dict[str, Any] = {}
    for bg in sorted({r["background"] for r in rows}):
        sub = [r for r in rows if r["background"] == bg]
        sub_m = [r for r in sub if r["fill_pred"] is not None]
        by_bg[bg] = {
            "images": len(sub),
            "white_accuracy": round(sum(r["white_pred"] == r["white_truth"] for r in sub) / len(sub), 4),
            "fill_mae": round(statistics.fmean(abs(r["fill_pred"] - r["fill_truth"]) for r in sub_m), 4)
            if sub_m
            else None,
            "fill_measured": round(len(sub_m) / len(sub), 4),
        }
    return {
        "images": n,
        "white_accuracy": round(white_ok / n, 4),
        "fill_mae": round(statistics.fmean(errors), 4) if errors else None,
        "fill_measured_share": round(len(measured) / n, 4),
        "fill_rule_agreement": round(rule_ok / len(measured), 4) if measured else None,
        "text_accuracy": round(text_ok / len(text_rows), 4) if text_rows else None,
        "text_accuracy_products_without_lettering": len(text_rows),
        "text_accuracy_all_images": round(
            sum(r["text_pred"] == r["text_truth"] for r in checked) / len(checked), 4
        )
        if checked
        else None,
        "lettered_products_flagged": f"{sum(r['text_pred'] for r in lettered)} of {len(lettered)}",
        "text_checked_share": round(len(checked) / n, 4),
        "text_images_with_overlay": sum(r["text_truth"] for r in rows),
        "text_tp_fp_fn": [tp, fp, fn],
        "overlay_box_recall": {
            kind: round(
                sum(f for k, f in overlays if k == kind) / max(1, sum(k == kind for k, _ in overlays)), 4
            )
            for kind in sorted({k for k, _ in overlays})
        },
        "ms": {key: _ms(rows, key) for key in ("step_ms", "product_ms", "text_ms", "faces_ms")},
        "by_background": by_bg,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("var/productset"))
    parser.add_argument("--split", default="report")
    parser.add_argument("--local", action="store_true", help="the border-colour heuristic, no text detector")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per model")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--box-thresh", type=float, default=DbParams.box_thresh)
    parser.add_argument("--max-side", type=int, default=DbParams.max_side)
    args = parser.parse_args(argv)
    folder = args.data / args.split
    truths = load_truth(folder)[: args.limit or None]
    analyzer: SceneAnalyzer
    if args.local:
        analyzer = LocalSceneAnalyzer(faces=True)
    else:
        db = DbParams(box_thresh=args.box_thresh, max_side=args.max_side)
        analyzer = OnnxSceneAnalyzer(threads=args.threads, db=db)
    evaluate_one(folder, truths[0], analyzer)  # load the models before timing
    rows = [evaluate_one(folder, t, analyzer) for t in truths]
    summary = summarise(rows)
    name = "eval-local.json" if args.local else "eval.json"
    (folder / name).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
