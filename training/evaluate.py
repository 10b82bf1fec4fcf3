"""Evaluate the model and the two classical baselines on the same reserved images.

    python -m training.evaluate --eval-dir var/data/eval \\
        --model model_repository/idetex_lite/1/model.onnx --out var/eval

The model runs the service's own path (``decode_image`` -> ``to_model_input`` -> model ->
``postprocess``), through onnxruntime in-process or, with ``--triton-url``, through a
running Triton. The heuristic and BRISQUE baselines see the very same decoded pixels.
Every number comes from ``service.iqa.metrics``.

Writes under ``--out``: ``results.json`` (all metrics, per method), ``results.md`` (the
tables for docs/model-card.md), ``preds_<method>.json`` (labelled images) and
``ranking_preds_<method>.json``. Plots go to ``--img-dir`` (docs/img): per-type F1 bars
and a grid of annotated examples. The real blurred photos of ``opencv-doc``
(``text_defocus.jpg``, ``text_motion.jpg``) are run too and reported separately.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from service.domain.imaging import DecodedImage, ImageLimits, decode_image
from service.domain.taxonomy import DISTORTIONS
from service.iqa.metrics import evaluate, ranking_accuracy
from training.baselines import brisque_predict, find_brisque_models, heuristic_predict

METHODS = ("model", "heuristic", "brisque")
REAL_PHOTOS = ("text_defocus.jpg", "text_motion.jpg")
TARGET_F1_TYPES = (
    "Out of focus blur",
    "Motion blur",
    "Noise",
    "Underexposure",
    "Overexposure",
    "Blocking artifacts",
)
TARGETS = {"distortion_map": 0.6, "f1": 0.85, "ranking": 0.95, "ranking_margin": 0.10}

Predictor = Callable[[Sequence[tuple[str, DecodedImage]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvalInputs:
    labels: list[dict[str, Any]]
    label_paths: dict[str, Path]
    ranking: list[dict[str, Any]]
    ranking_paths: dict[str, Path]


def _resolve(root: Path, name: str, folders: Sequence[str]) -> Path:
    for folder in folders:
        path = root / folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name} not found under {root} ({', '.join(folders)})")


def load_eval_set(eval_dir: Path) -> EvalInputs:
    """labels.json (required) and ranking.json (optional) with each image's file."""
    labels = json.loads((eval_dir / "labels.json").read_text(encoding="utf-8"))
    label_paths = {lab["image"]: _resolve(eval_dir, lab["image"], ("images", ".")) for lab in labels}
    ranking: list[dict[str, Any]] = []
    ranking_paths: dict[str, Path] = {}
    if (eval_dir / "ranking.json").is_file():
        ranking = json.loads((eval_dir / "ranking.json").read_text(encoding="utf-8"))
        ranking_paths = {
            r["image"]: _resolve(eval_dir, r["image"], ("ranking", "images", ".")) for r in ranking
        }
    return EvalInputs(labels, label_paths, ranking, ranking_paths)


# ---------------------------------------------------------------- predictors


def model_predictor(model: Path, triton_url: str | None, protocol: str, params_path: str) -> Predictor:
    """The service's path: to_model_input -> onnxruntime or Triton -> postprocess."""
    from service.adapters.inference import OnnxRuntimeInference, TritonGrpcInference, TritonHttpInference
    from service.predict import predict_batch

    params = None
    if params_path:
        from service.iqa.postprocess import load_params

        params = load_params(params_path)
    if triton_url:
        inference: Any = (
            TritonHttpInference(triton_url) if protocol == "http" else TritonGrpcInference(triton_url)
        )
    else:
        inference = OnnxRuntimeInference(model)

    def run(batch: Sequence[tuple[str, DecodedImage]]) -> list[dict[str, Any]]:
        predictions = predict_batch(inference, [im for _, im in batch], params)
        return [p.to_json(image=name) for (name, _), p in zip(batch, predictions, strict=True)]

    return run


def tuned_params(model: Path) -> str:
    """The thresholds tuned for this model (``<model dir>/postprocess.json``), as the service uses them."""
    path = model.parent.parent / "postprocess.json"
    return str(path) if path.is_file() else ""


def heuristic_predictor() -> Predictor:
    def run(batch: Sequence[tuple[str, DecodedImage]]) -> list[dict[str, Any]]:
        return [heuristic_predict(im.rgb, name) for name, im in batch]

    return run


def brisque_predictor(opencv_doc: Path) -> Predictor:
    model, range_file = find_brisque_models(opencv_doc)

    def run(batch: Sequence[tuple[str, DecodedImage]]) -> list[dict[str, Any]]:
        return [brisque_predict(im.rgb, model, range_file, name) for name, im in batch]

    return run


def predict_all(
    paths: dict[str, Path],
    predictors: dict[str, Predictor],
    batch_size: int,
    progress: TextIO,
    what: str,
) -> dict[str, list[dict[str, Any]]]:
    """Decode each image once and give the same pixels to every predictor."""
    out: dict[str, list[dict[str, Any]]] = {m: [] for m in predictors}
    seconds = dict.fromkeys(predictors, 0.0)
    names = list(paths)
    limits = ImageLimits()
    for start in range(0, len(names), batch_size):
        batch = [(n, decode_image(paths[n].read_bytes(), limits)) for n in names[start : start + batch_size]]
        for method, predict in predictors.items():
            t0 = time.monotonic()
            out[method].extend(predict(batch))
            seconds[method] += time.monotonic() - t0
        done = min(start + batch_size, len(names))
        timing = "  ".join(f"{m} {1000 * s / done:.0f} ms/img" for m, s in seconds.items())
        print(f"[{what} {done}/{len(names)}] {timing}", file=progress, flush=True)
    return out


# ---------------------------------------------------------------- summaries


def targets_check(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets for the model, each with the measured value and pass/fail."""
    model = results["metrics"]["model"]
    ranks = {m: results["ranking"].get(m, {}).get("accuracy") for m in METHODS}
    best_baseline = max((v for m, v in ranks.items() if m != "model" and v is not None), default=None)
    checks: dict[str, Any] = {
        "distortion_map": {
            "value": model["distortion_map"],
            "target": TARGETS["distortion_map"],
            "ok": model["distortion_map"] >= TARGETS["distortion_map"],
        }
    }
    for kind in TARGET_F1_TYPES:
        loc = (model["per_type"].get(kind) or {}).get("localisation") or {}
        f1 = float(loc.get("f1", 0.0))
        checks[f"f1 {kind}"] = {"value": f1, "target": TARGETS["f1"], "ok": f1 >= TARGETS["f1"]}
    rank = ranks.get("model")
    if rank is not None:
        checks["ranking"] = {"value": rank, "target": TARGETS["ranking"], "ok": rank >= TARGETS["ranking"]}
        if best_baseline is not None:
            margin = rank - best_baseline
            checks["ranking margin over best baseline"] = {
                "value": margin,
                "target": TARGETS["ranking_margin"],
                "ok": margin >= TARGETS["ranking_margin"],
            }
    return checks


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown_report(results: dict[str, Any]) -> str:
    """The tables of the model card's Evaluation section."""
    m = results["metrics"]
    rows = [
        ("Distortion mAP@0.5 (official rule)", "distortion_map"),
        ("Key-distortion accuracy (official)", "key_distortion_accuracy"),
        ("Key-distortion type-set accuracy (strict)", "key_type_set_accuracy"),
        ("Image-quality accuracy (exact grade)", "image_quality_accuracy"),
        ("Grade within one level", "grade_within_one_accuracy"),
        ("SRCC score vs MOS", "srcc"),
        ("PLCC score vs MOS", "plcc"),
        ("Challenge subtotal (mAP + key + quality, max 3)", "challenge_subtotal"),
    ]
    pairs = results["ranking"].get("model", {}).get("pairs", 0)
    lines = [
        f"Evaluation set: {results['images']} labelled images, {results['ranking_images']} ranking images "
        f"({pairs} pairs). Generated {results['generated_at']}.",
        "",
        "| metric | model | heuristic | BRISQUE |",
        "|---|---|---|---|",
    ]
    for title, key in rows:
        lines.append(f"| {title} | " + " | ".join(_fmt(m[x].get(key)) for x in METHODS) + " |")
    lines.append(
        "| Pairwise ranking accuracy | "
        + " | ".join(_fmt(results["ranking"].get(x, {}).get("accuracy")) for x in METHODS)
        + " |"
    )
    lines += [
        "",
        "Per type (localisation F1 at IoU >= 0.5 / image-level presence F1 / AP):",
        "",
        "| type | model | heuristic |",
        "|---|---|---|",
    ]
    for kind in DISTORTIONS:
        cells = []
        for x in ("model", "heuristic"):
            t = m[x]["per_type"].get(kind)
            if t is None:
                cells.append("n/a")
                continue
            loc, pres = t.get("localisation") or {}, t.get("presence") or {}
            cells.append(f"{_fmt(loc.get('f1'))} / {_fmt(pres.get('f1'))} / {_fmt(t.get('ap'))}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    if results["ranking"]:
        lines += [
            "",
            "Pairwise ranking accuracy per distortion type:",
            "",
            "| type | model | heuristic | BRISQUE |",
        ]
        lines.append("|---|---|---|---|")
        for kind in DISTORTIONS:
            cells = [_fmt(results["ranking"].get(x, {}).get("per_distortion", {}).get(kind)) for x in METHODS]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (model):", "", "| target | value | goal | met |", "|---|---|---|---|"]
    for name, c in results["targets"].items():
        lines.append(f"| {name} | {_fmt(c['value'])} | {_fmt(c['target'])} | {'yes' if c['ok'] else 'no'} |")
    if results.get("real_photos"):
        lines += [
            "",
            "Real blurred photos from opencv-doc:",
            "",
            "| photo | method | grade | score | found |",
        ]
        lines.append("|---|---|---|---|---|")
        for photo, per in results["real_photos"].items():
            for x, p in per.items():
                found = ", ".join(f"{d['severity']} {d['distortion']}" for d in p["distortions"]) or "none"
                lines.append(f"| {photo} | {x} | {p['image_quality']} | {p['score']:.2f} | {found} |")
    return "\n".join(lines) + "\n"


CARD_BEGIN = "<!-- evaluation results: generated by python -m training.evaluate, do not edit -->"
CARD_END = "<!-- end of evaluation results -->"


def update_model_card(card: Path, report: str) -> bool:
    """Replace the generated block of docs/model-card.md with ``report``; False when it has no block."""
    if not card.is_file():
        return False
    text = card.read_text(encoding="utf-8")
    start, end = text.find(CARD_BEGIN), text.find(CARD_END)
    if start < 0 or end < start:
        return False
    card.write_text(text[: start + len(CARD_BEGIN)] + "\n\n" + report + "\n" + text[end:], encoding="utf-8")
    return True


# ---------------------------------------------------------------- plots


def plot_per_type_f1(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    x = np.arange(len(DISTORTIONS))
    for ax, part, title in zip(
        axes,
        ("localisation", "presence"),
        ("Localisation F1 (IoU >= 0.5)", "Presence F1 (image level)"),
        strict=True,
    ):
        for offset, method, color in ((-0.2, "model", "#1f77b4"), (0.2, "heuristic", "#ff7f0e")):
            per = results["metrics"][method]["per_type"]
            values = [float(((per.get(k) or {}).get(part) or {}).get("f1", 0.0)) for k in DISTORTIONS]
            ax.bar(x + offset, values, 0.4, label=method, color=color)
        ax.axhline(TARGETS["f1"], color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(
            x,
            [k.replace(" effect", "").replace("artifacts", "artif.") for k in DISTORTIONS],
            rotation=40,
            ha="right",
            fontsize=8,
        )
        ax.set_title(title)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("F1")
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pick_examples(labels: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """One image per distortion type in taxonomy order (the first that has it), then evenly spaced others."""
    chosen: list[dict[str, Any]] = []
    for kind in DISTORTIONS:
        hit = next(
            (
                lab
                for lab in labels
                if lab not in chosen and any(d["distortion"] == kind for d in lab["distortions"])
            ),
            None,
        )
        if hit is not None and len(chosen) < count:
            chosen.append(hit)
    for i in np.linspace(0, len(labels) - 1, len(labels)).astype(int):
        if len(chosen) >= count:
            break
        if labels[i] not in chosen:
            chosen.append(labels[i])
    return chosen


def plot_examples(
    labels: list[dict[str, Any]],
    preds: list[dict[str, Any]],
    paths: dict[str, Path],
    path: Path,
    count: int = 8,
) -> None:
    """Truth boxes (green, dashed) and model boxes (red) on evenly spaced eval images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    by_name = {p["image"]: p for p in preds}
    chosen = pick_examples(labels, count)
    cols = 4
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, lab in zip(axes.flat, chosen, strict=False):
        rgb = decode_image(paths[lab["image"]].read_bytes()).rgb
        ax.imshow(rgb)
        for d in lab["distortions"]:
            x1, y1, x2, y2 = d["coordinates"]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", ls="--", lw=1.5))
        pred = by_name.get(lab["image"], {"distortions": [], "image_quality": "?"})
        for d in pred["distortions"]:
            x1, y1, x2, y2 = d["coordinates"]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=1.2))
            ax.text(
                x1,
                y1,
                d["distortion"],
                color="white",
                fontsize=6,
                va="top",
                bbox={"facecolor": "red", "alpha": 0.6, "pad": 1, "lw": 0},
            )
        truth = ", ".join(sorted({d["distortion"] for d in lab["distortions"]})) or "clean"
        ax.set_title(f"truth: {truth}\n{lab['image_quality']} -> {pred['image_quality']}", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- main


def run(args: argparse.Namespace, progress: TextIO = sys.stderr) -> dict[str, Any]:
    inputs = load_eval_set(args.eval_dir)
    if args.limit:
        inputs = EvalInputs(
            inputs.labels[: args.limit], inputs.label_paths, inputs.ranking, inputs.ranking_paths
        )
    params = args.params or tuned_params(args.model)
    predictors: dict[str, Predictor] = {
        "model": model_predictor(args.model, args.triton_url, args.protocol, params),
        "heuristic": heuristic_predictor(),
        "brisque": brisque_predictor(args.opencv_doc),
    }
    label_paths = {lab["image"]: inputs.label_paths[lab["image"]] for lab in inputs.labels}
    print(f"{len(label_paths)} labelled images, {len(inputs.ranking_paths)} ranking images", file=progress)
    preds = predict_all(label_paths, predictors, args.batch_size, progress, "labels")
    rank_preds = predict_all(inputs.ranking_paths, predictors, args.batch_size, progress, "ranking")

    photos = {p.name: p for p in args.opencv_doc.rglob("*.jpg") if p.name in REAL_PHOTOS}
    real = predict_all(dict(sorted(photos.items())), predictors, args.batch_size, progress, "real photos")

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model": str(args.triton_url or args.model),
        "model_sha256": None if args.triton_url else _sha256(args.model),
        "postprocess_params": params or "built-in defaults",
        "eval_dir": str(args.eval_dir),
        "images": len(inputs.labels),
        "sources": dict(Counter(str(lab.get("source", "?")).split("/")[0] for lab in inputs.labels)),
        "ranking_images": len(inputs.ranking_paths),
        "metrics": {m: evaluate(preds[m], inputs.labels) for m in METHODS},
        "ranking": {
            m: ranking_accuracy({p["image"]: float(p["score"]) for p in rank_preds[m]}, inputs.ranking)
            for m in METHODS
            if inputs.ranking
        },
        "real_photos": {
            name: {m: next(p for p in real[m] if p["image"] == name) for m in METHODS} for name in photos
        },
    }
    results["targets"] = targets_check(results)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for m in METHODS:
        (out / f"preds_{m}.json").write_text(json.dumps(preds[m], indent=1) + "\n")
        (out / f"ranking_preds_{m}.json").write_text(json.dumps(rank_preds[m], indent=1) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown_report(results)
    (out / "results.md").write_text(report)
    if not args.no_plots:
        plot_per_type_f1(results, args.img_dir / "eval_per_type_f1.png")
        plot_examples(
            inputs.labels, preds["model"], label_paths, args.img_dir / "eval_examples.png", args.examples
        )
    print(report, file=progress)
    print(f"wrote {out}/results.json, results.md; plots in {args.img_dir}", file=progress)
    if args.model_card and update_model_card(args.model_card, report):
        print(f"updated the evaluation block of {args.model_card}", file=progress)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--eval-dir", type=Path, default=Path("var/data/eval"))
    p.add_argument("--model", type=Path, default=Path("model_repository/idetex_lite/1/model.onnx"))
    p.add_argument("--triton-url", default=None, help="use a running Triton instead of onnxruntime")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument(
        "--params",
        default="",
        help="post-processing parameters (default: postprocess.json beside the model's version folder, "
        "as the service does; else the built-in thresholds)",
    )
    p.add_argument("--opencv-doc", type=Path, default=Path("var/sources/opencv-doc"))
    p.add_argument("--out", type=Path, default=Path("var/eval"))
    p.add_argument("--img-dir", type=Path, default=Path("docs/img"))
    p.add_argument("--examples", type=int, default=12, help="images in the annotated examples grid")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=0, help="only the first N labelled images (smoke runs)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--model-card",
        type=Path,
        default=Path("docs/model-card.md"),
        help="rewrite the generated results block of this file (if it has one); '' to leave it",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
