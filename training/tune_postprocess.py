"""Tune post-processing thresholds on the val shards, with the served ONNX model.

    python -m training.tune_postprocess --onnx model_repository/idetex_lite/1/model.onnx \
        --data var/data --out model_repository/idetex_lite/postprocess.json

Val images go through the serving path (service.iqa.preprocess -> onnxruntime ->
service.iqa.postprocess) at their full 352x352 size, and are compared with the
boxes recorded by the distortion engine (shard ``meta``), so no hand-picked
numbers reach the service. Per type: the presence threshold maximises the
image-level F1, then the map threshold maximises box F1 at IoU >= 0.5. The key
threshold maximises the F1 of key types per image. The evaluation set is not
used (it is reserved for reporting).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from service.domain.prediction import Prediction
from service.domain.taxonomy import DISTORTION_INDEX, NUM_DISTORTIONS
from service.iqa.contract import INPUT_NAME, OUTPUT_NAMES
from service.iqa.postprocess import DEFAULT, PostprocessParams, postprocess, save_params
from service.iqa.preprocess import to_model_input

GridBox = tuple[int, int, int, int]
GRID = tuple(round(v, 2) for v in np.arange(0.1, 0.91, 0.05))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_counts(pred: Sequence[GridBox], true: Sequence[GridBox], thr: float = 0.5) -> tuple[int, int, int]:
    """Greedy one-to-one matching by IoU: (true positives, false positives, false negatives)."""
    free = list(true)
    tp = 0
    for p in pred:
        scores = [iou(p, t) for t in free]
        if scores and max(scores) >= thr:
            free.pop(int(np.argmax(scores)))
            tp += 1
    return tp, len(pred) - tp, len(free)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


class ValSet:
    """Val images at full shard size, their labels and the model's outputs on them."""

    def __init__(self, data: Path, limit: int) -> None:
        images, present, key, metas = [], [], [], []
        for path in sorted((data / "val").glob("shard_*.npz")):
            with np.load(path) as z:
                images.append(z["images"])
                present.append(z["present"])
                key.append(z["key"])
                metas += [json.loads(str(m)) for m in z["meta"]]
        self.images = np.concatenate(images)[:limit]
        self.present = np.concatenate(present)[:limit].astype(bool)
        self.key = np.concatenate(key)[:limit].astype(bool)
        self.size = self.images.shape[2], self.images.shape[1]
        self.boxes: list[dict[int, list[GridBox]]] = []
        for meta in metas[:limit]:
            per: dict[int, list[GridBox]] = {}
            for d in meta["distortions"]:
                per.setdefault(DISTORTION_INDEX[d["distortion"]], []).append(tuple(d["box"]))
            self.boxes.append(per)
        self.outputs: list[dict[str, np.ndarray]] = []

    def run(self, onnx: Path, batch: int = 16, threads: int = 2) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        for start in range(0, len(self.images), batch):
            x = np.stack([to_model_input(im) for im in self.images[start : start + batch]])
            outs = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
            for i in range(len(x)):
                self.outputs.append({name: o[i] for name, o in zip(OUTPUT_NAMES, outs, strict=True)})

    def predict(self, params: PostprocessParams) -> list[Prediction]:
        w, h = self.size
        return [postprocess(o, w, h, params) for o in self.outputs]


def best(grid: Sequence[float], score: Callable[[float], float]) -> tuple[float, float]:
    scored = [(score(v), v) for v in grid]
    top = max(s for s, _ in scored)
    # among equally good values take the middle one (stable against ties at the ends)
    ties = [v for s, v in scored if s == top]
    return ties[len(ties) // 2], top


def tune_presence(val: ValSet) -> tuple[list[float], list[float]]:
    pres = np.stack([o["PRESENCE"] for o in val.outputs])
    thr, scores = [], []
    for t in range(NUM_DISTORTIONS):
        y = val.present[:, t]
        if not y.any():
            thr.append(0.5)
            scores.append(float("nan"))
            continue

        def score(v: float, t: int = t, y: np.ndarray = y) -> float:
            p = pres[:, t] >= v
            return f1(int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum()))

        v, s = best(GRID, score)
        thr.append(v)
        scores.append(s)
    return thr, scores


def box_f1(val: ValSet, params: PostprocessParams, t: int) -> float:
    tp = fp = fn = 0
    for pred, truth in zip(val.predict(params), val.boxes, strict=True):
        mine = [d.box for d in pred.distortions if DISTORTION_INDEX[d.distortion] == t]
        a, b, c = match_counts(mine, truth.get(t, []))
        tp, fp, fn = tp + a, fp + b, fn + c
    return f1(tp, fp, fn)


def tune_maps(val: ValSet, params: PostprocessParams) -> tuple[PostprocessParams, list[float]]:
    scores = []
    for t in range(NUM_DISTORTIONS):

        def score(v: float, t: int = t, params: PostprocessParams = params) -> float:
            thr = list(params.map_threshold)
            thr[t] = v
            return box_f1(val, replace(params, map_threshold=tuple(thr)), t)

        v, s = best(GRID, score)
        thr = list(params.map_threshold)
        thr[t] = v
        params = replace(params, map_threshold=tuple(thr))
        scores.append(s)
    return params, scores


def key_f1(val: ValSet, params: PostprocessParams) -> float:
    tp = fp = fn = 0
    for i, pred in enumerate(val.predict(params)):
        got = {DISTORTION_INDEX[d.distortion] for d in pred.key_distortions}
        want = set(np.flatnonzero(val.key[i]).tolist())
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    return f1(tp, fp, fn)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", type=Path, default=Path("model_repository/idetex_lite/1/model.onnx"))
    p.add_argument("--data", type=Path, default=Path("var/data"))
    p.add_argument("--out", type=Path, default=Path("model_repository/idetex_lite/postprocess.json"))
    p.add_argument("--limit", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    val = ValSet(args.data, args.limit)
    val.run(args.onnx, threads=args.threads)
    before = {t: round(box_f1(val, DEFAULT, t), 4) for t in range(NUM_DISTORTIONS)}
    presence, pres_f1 = tune_presence(val)
    params = replace(DEFAULT, presence_threshold=tuple(presence))
    params, map_f1 = tune_maps(val, params)
    key_thr, key_score = best(GRID, lambda v: key_f1(val, replace(params, key_threshold=v)))
    params = replace(params, key_threshold=key_thr)
    report = {
        "val_images": len(val.images),
        "box_f1_default": before,
        "presence_f1": [round(v, 4) for v in pres_f1],
        "box_f1_tuned": [round(v, 4) for v in map_f1],
        "key_f1": round(key_score, 4),
    }
    print(json.dumps(report, indent=1))
    note = f"tuned by training.tune_postprocess on {len(val.images)} val images; {json.dumps(report)}"
    save_params(params, args.out, note=note)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
