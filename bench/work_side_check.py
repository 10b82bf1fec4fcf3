"""Does the 512 px working copy change what the report says? Same JPEGs, both decode paths.

    python -m bench.work_side_check [--eval-dir var/data/eval] [--sources var/sources] [--out FILE]

A job whose profile runs no scene analysis decodes a large JPEG to a 512-1023 px working copy
(`IDETEX_WORK_SIDE`, libjpeg's DCT scaling); before, every job decoded to at least 1946 px
(`service.pipeline.DECODE_SIDE`). Only JPEGs of 1024 px or more are affected, so the check uses:

- the labelled evaluation images (reserved sources, `make data`) of 1024 px or more, encoded as
  JPEG quality 92 (they are stored as PNG);
- the reserved-source photographs themselves (Debian `lomiri-wallpapers-16.04`, `palapeli-data`),
  as shipped.

Each goes through decode_image at both sides -> to_model_input -> onnxruntime -> postprocess
(the served parameters) and measure_image("default"). Reported: agreement of grade, fine level
and the set of reported distortion types; score and aspect-score differences; and, for the
labelled images, image-level presence F1 against the labels on each path.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.stack import publish
from service.domain.imaging import DecodedImage, decode_image
from service.domain.report import measure_image
from service.domain.taxonomy import DISTORTIONS
from service.iqa.contract import INPUT_NAME, OUTPUT_NAMES
from service.iqa.postprocess import load_params, postprocess
from service.iqa.preprocess import to_model_input
from service.pipeline import DECODE_SIDE

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "model_repository" / "idetex_lite" / "1" / "model.onnx"
PARAMS = ROOT / "model_repository" / "idetex_lite" / "postprocess.json"
RESERVED = ("lomiri-wallpapers-16.04", "palapeli-data")
ASPECTS = ("focus", "noise", "exposure", "contrast", "saturation")


def jpeg(path: Path, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


Input = tuple[str, bytes, set[str] | None, str, float]


def inputs(eval_dir: Path, sources: Path) -> list[Input]:
    """(name, JPEG bytes, labelled types or None, labelled grade, MOS) for every image the
    work side affects (grade "" and MOS nan for the unlabelled photographs)."""
    found: list[Input] = []
    labels_path = eval_dir / "labels.json"
    if labels_path.exists():
        for lab in json.loads(labels_path.read_text()):
            if max(lab["width"], lab["height"]) >= 1024:
                types = {d["distortion"] for d in lab["distortions"]}
                found.append(
                    (lab["image"], jpeg(eval_dir / lab["image"]), types, lab["image_quality"], lab["mos"])
                )
    for package in RESERVED:
        for path in sorted((sources / package).rglob("*.jpg")):
            with Image.open(path) as im:
                if max(im.size) >= 1024:
                    found.append((f"{package}/{path.name}", path.read_bytes(), None, "", float("nan")))
    return found


def one_path(session: Any, params: Any, image: DecodedImage) -> dict[str, Any]:
    outputs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: to_model_input(image.rgb)[None]})
    prediction = postprocess(
        {n: o[0] for n, o in zip(OUTPUT_NAMES, outputs, strict=True)}, image.width, image.height, params
    )
    aspects = measure_image(image, "default").aspects
    return {
        "side": max(image.rgb.shape[:2]),
        "grade": prediction.grade,
        "fine": prediction.fine_index,
        "score": prediction.score,
        "types": {d.distortion for d in prediction.distortions},
        "aspects": {a: getattr(aspects, a) for a in ASPECTS},
    }


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["labels"] = sorted(row["labels"]) if row["labels"] is not None else None
    for path in ("before", "after"):
        out[path] = {**row[path], "types": sorted(row[path]["types"])}
    return out


def labelled_accuracy(rows: list[dict[str, Any]], path: str) -> tuple[float, float]:
    """(grade accuracy, score SRCC vs MOS) over the labelled rows on one decode path."""
    from scipy.stats import spearmanr

    mine = [r for r in rows if r["labels"] is not None]
    if len(mine) < 3:
        return float("nan"), float("nan")
    grade = sum(r[path]["grade"] == r["quality"] for r in mine) / len(mine)
    srcc = float(spearmanr([r[path]["score"] for r in mine], [r["mos"] for r in mine])[0])
    return grade, srcc


def presence_f1(rows: list[dict[str, Any]], path: str) -> float:
    tp = fp = fn = 0
    for r in rows:
        if r["labels"] is None:
            continue
        got, want = r[path]["types"], r["labels"]
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def run(eval_dir: Path, sources: Path, work_side: int) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    params = load_params(PARAMS)
    rows: list[dict[str, Any]] = []
    images = inputs(eval_dir, sources)
    if not images:
        raise SystemExit(f"no JPEG of 1024 px or more under {eval_dir} or {sources}: run `make data` first")
    for i, (name, data, labels, quality, mos) in enumerate(images, 1):
        before = one_path(session, params, decode_image(data, max_side=DECODE_SIDE))
        after = one_path(session, params, decode_image(data, max_side=work_side))
        rows.append(
            {
                "image": name,
                "labels": labels,
                "quality": quality,
                "mos": mos,
                "before": before,
                "after": after,
            }
        )
        print(f"\r{i}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    n = len(rows)
    same = lambda key: sum(r["before"][key] == r["after"][key] for r in rows) / n  # noqa: E731
    jaccard = [
        len(r["before"]["types"] & r["after"]["types"])
        / max(len(r["before"]["types"] | r["after"]["types"]), 1)
        for r in rows
    ]
    score_diff = [abs(r["before"]["score"] - r["after"]["score"]) for r in rows]
    return {
        "images": n,
        "labelled": sum(r["labels"] is not None for r in rows),
        "work_side": work_side,
        "decode_side_before": DECODE_SIDE,
        "median_side_before": float(np.median([r["before"]["side"] for r in rows])),
        "median_side_after": float(np.median([r["after"]["side"] for r in rows])),
        "same_grade": same("grade"),
        "fine_within_one": sum(abs(r["before"]["fine"] - r["after"]["fine"]) <= 1 for r in rows) / n,
        "same_types": same("types"),
        "types_jaccard_mean": float(np.mean(jaccard)),
        "score_abs_diff_mean": float(np.mean(score_diff)),
        "score_abs_diff_max": float(np.max(score_diff)),
        "aspect_abs_diff_mean": {
            a: float(np.mean([abs(r["before"]["aspects"][a] - r["after"]["aspects"][a]) for r in rows]))
            for a in ASPECTS
        },
        "grade_accuracy_and_srcc_before": labelled_accuracy(rows, "before"),
        "grade_accuracy_and_srcc_after": labelled_accuracy(rows, "after"),
        "presence_f1_before": presence_f1(rows, "before"),
        "presence_f1_after": presence_f1(rows, "after"),
        "types": list(DISTORTIONS),
        "rows": [_jsonable(r) for r in rows],
    }


def markdown(r: dict[str, Any]) -> str:
    aspects = ", ".join(f"{a} {v:.3f}" for a, v in r["aspect_abs_diff_mean"].items())
    return "\n".join(
        [
            f"{r['images']} JPEGs of 1024 px or more ({r['labelled']} labelled); decoded long side: "
            f"median {r['median_side_before']:.0f} px before, "
            f"{r['median_side_after']:.0f} px with the working copy",
            "",
            "| measure | value |",
            "|---|---|",
            f"| same grade | {r['same_grade']:.3f} |",
            f"| fine level within one | {r['fine_within_one']:.3f} |",
            f"| same set of reported types | {r['same_types']:.3f} |",
            f"| mean Jaccard of reported types | {r['types_jaccard_mean']:.3f} |",
            f"| score: mean / max absolute difference (1-5 scale) | {r['score_abs_diff_mean']:.3f} / "
            f"{r['score_abs_diff_max']:.3f} |",
            f"| presence F1 vs labels, before / after | {r['presence_f1_before']:.3f} / "
            f"{r['presence_f1_after']:.3f} |",
            f"| grade accuracy vs labels, before / after | {r['grade_accuracy_and_srcc_before'][0]:.3f} / "
            f"{r['grade_accuracy_and_srcc_after'][0]:.3f} |",
            f"| score SRCC vs MOS, before / after | {r['grade_accuracy_and_srcc_before'][1]:.3f} / "
            f"{r['grade_accuracy_and_srcc_after'][1]:.3f} |",
            f"| aspect scores: mean absolute difference (0-1) | {aspects} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-dir", type=Path, default=Path("var/data/eval"))
    parser.add_argument("--sources", type=Path, default=Path("var/sources"))
    parser.add_argument("--work-side", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("var/bench/work_side.json"))
    args = parser.parse_args(argv)
    result = run(args.eval_dir, args.sources, args.work_side)
    publish(result, args.out, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
