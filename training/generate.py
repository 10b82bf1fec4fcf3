"""Generate training/validation shards and the reserved evaluation set.

    python -m training.generate --train 8192 --val 512 --eval 400 --ranking 40

Shards follow the contract in docs/data.md: `var/data/{train,val}/shard_NNN.npz` (written
atomically one by one, then `READY` with the sample count), `var/data/eval/` (images, labels.json,
ranking.json). Everything is seeded: a shard's content depends only on --seed and its index.
Training and validation photos come from disjoint photos of the training packages; the
evaluation set uses the reserved packages only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from service.domain.taxonomy import (
    DISTORTION_INDEX,
    DISTORTIONS,
    NUM_DISTORTIONS,
    SEVERITIES,
    fine_index_to_level,
    mos_to_fine_index,
    mos_to_grade,
)
from training import engine
from training.pseudo_mos import MOS_CLEAN, key_types, pseudo_mos
from training.sources import MANIFEST_PATH, SourceImage, load_manifest

MODEL_SIZE = 352
GRID = 44
WORK_MIN, WORK_MAX = 352, 704
EVAL_LONG_MIN, EVAL_LONG_MAX = 384, 1280
POOL_LONG_SIDE = 1600
CUTOUT_P = 0.22
# A cell carries a type's severity when the type covers at least this fraction of it.
SEVERITY_CELL_COVERAGE = 0.25
# A planned distortion lowering the pseudo-MOS by less than this (applied alone) is not labelled.
MIN_VISIBLE_IMPACT = 0.1
VISIBLE_TRIES = 3
DATA_DIR = Path("var/data")


@dataclass
class Pool:
    """Decoded source images held in memory (photos RGB, cut-outs RGBA)."""

    photos: list[tuple[str, np.ndarray]]
    cutouts: list[tuple[str, np.ndarray]]


def _is_val_photo(entry: SourceImage) -> bool:
    """One training-package photo in ten (by content hash) is held out for validation."""
    return int(entry.sha1[:8], 16) % 10 == 0


def _load_photo(path: str) -> np.ndarray:
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        with PILImage.open(path) as pil:
            rgb = np.asarray(pil.convert("RGB"))
    else:
        rgb = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    scale = POOL_LONG_SIDE / max(h, w)
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def _load_cutout(path: str) -> np.ndarray:
    with PILImage.open(path) as pil:
        return np.asarray(pil.convert("RGBA"))


def load_pool(split: str, manifest: Path = MANIFEST_PATH) -> Pool:
    """Load the source images of one split: train, val (held-out train photos) or eval."""
    entries = load_manifest(manifest)
    if split == "eval":
        chosen = [e for e in entries if e.split == "eval"]
    else:
        want_val = split == "val"
        chosen = [e for e in entries if e.split == "train" and _is_val_photo(e) == want_val]
    photos = [(f"{e.package}/{Path(e.path).name}", _load_photo(e.path)) for e in chosen if e.kind == "photo"]
    if split != "eval":
        photos = [p for p in photos if min(p[1].shape[:2]) >= WORK_MIN]
    cutouts = [
        (f"{e.package}/{Path(e.path).name}", _load_cutout(e.path)) for e in chosen if e.kind == "cutout"
    ]
    if not photos:
        raise RuntimeError(f"no photos for split {split}: run `python -m training.sources` first")
    return Pool(photos, cutouts)


# ---------------------------------------------------------------- clean canvases


def photo_crop(photo: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random crop with the aspect of width x height, area-resized to exactly that size."""
    ph, pw = photo.shape[:2]
    aspect = width / height
    max_w = min(pw, ph * aspect)
    min_w = max(width, 0.35 * max_w) if max_w >= width else max_w
    cw = float(rng.uniform(min_w, max_w))
    ch = cw / aspect
    x = int(rng.integers(0, max(1, int(pw - cw) + 1)))
    y = int(rng.integers(0, max(1, int(ph - ch) + 1)))
    crop = photo[y : y + round(ch), x : x + round(cw)]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    r = rng.uniform()
    if r < 0.6:
        return np.full((height, width, 3), 255, dtype=np.uint8)
    if r < 0.85:
        colour = rng.uniform(170, 250, 3) if rng.uniform() < 0.7 else rng.uniform(30, 250, 3)
        return np.broadcast_to(colour.astype(np.uint8), (height, width, 3)).copy()
    top, bottom = rng.uniform(150, 255, 3), rng.uniform(150, 255, 3)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    grad = top[None, None, :] * (1 - t) + bottom[None, None, :] * t
    return np.broadcast_to(grad, (height, width, 3)).astype(np.uint8).copy()


def product_shot(cutout: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A cut-out object composited on a plain background (mostly white), e-commerce style."""
    canvas = _background(rng, width, height).astype(np.float32)
    ch, cw = cutout.shape[:2]
    target = float(rng.uniform(0.5, 0.88)) * min(width, height)
    scale = min(target / max(ch, cw), 1.5)
    nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    obj = cv2.resize(cutout, (nw, nh), interpolation=interp).astype(np.float32)
    x = int(rng.integers(0, max(1, width - nw + 1)))
    y = int(rng.integers(0, max(1, height - nh + 1)))
    alpha = obj[:, :, 3:4] / 255.0
    region = canvas[y : y + nh, x : x + nw]
    canvas[y : y + nh, x : x + nw] = region * (1 - alpha) + obj[:, :, :3] * alpha
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def clean_image(pool: Pool, rng: np.random.Generator, width: int, height: int) -> tuple[str, np.ndarray]:
    """A clean photo crop or product shot of the requested size, with its source name."""
    if pool.cutouts and rng.uniform() < CUTOUT_P:
        name, cut = pool.cutouts[int(rng.integers(len(pool.cutouts)))]
        return name, product_shot(cut, rng, width, height)
    name, photo = pool.photos[int(rng.integers(len(pool.photos)))]
    return name, photo_crop(photo, rng, width, height)


# ---------------------------------------------------------------- labels


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def impacts(
    clean: np.ndarray, plans: list[engine.DistortionPlan], rng: np.random.Generator
) -> dict[str, float]:
    """MOS drop of each planned type when applied alone to the clean image."""
    h, w = clean.shape[:2]
    scale = min(1.0, MODEL_SIZE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    ref = _resize(clean, *size)
    out: dict[str, float] = {}
    for plan in plans:
        alone, _ = engine.execute(clean, [plan], rng)
        out[plan.distortion] = MOS_CLEAN - pseudo_mos(ref, _resize(alone, *size))
    return out


def distort_labelled(
    clean: np.ndarray, rng: np.random.Generator, clean_p: float = 0.12
) -> tuple[np.ndarray, list[engine.AppliedDistortion], set[str]]:
    """Randomly distort, keeping only visible types; return image, region records and key types.

    Each planned type is first applied alone: while it lowers the pseudo-MOS by less than
    MIN_VISIBLE_IMPACT (e.g. blur on a flat wallpaper) it is re-planned with a fresh strength and
    regions, up to VISIBLE_TRIES times, then dropped rather than labelled.
    """
    shape = (clean.shape[0], clean.shape[1])
    plans = engine.random_plans(shape, rng, clean_p)
    if not plans:
        return clean.copy(), [], set()
    visible: list[engine.DistortionPlan] = []
    impact: dict[str, float] = {}
    for plan in plans:
        for _ in range(VISIBLE_TRIES):
            drop = impacts(clean, [plan], rng)[plan.distortion]
            if drop >= MIN_VISIBLE_IMPACT:
                visible.append(plan)
                impact[plan.distortion] = drop
                break
            plan = engine.random_plan(plan.distortion, shape, rng)
    dist, applied = engine.execute(clean, visible, rng)
    if len(visible) == 1:
        return dist, applied, {visible[0].distortion}
    return dist, applied, key_types(impact)


def grid_maps(applied: list[engine.AppliedDistortion]) -> tuple[np.ndarray, np.ndarray]:
    """Per-type coverage [10,44,44] (0..255) and severity [10,44,44] (0..3) maps."""
    masks = np.zeros((NUM_DISTORTIONS, GRID, GRID), dtype=np.float32)
    sev = np.zeros((NUM_DISTORTIONS, GRID, GRID), dtype=np.uint8)
    for a in applied:
        t = DISTORTION_INDEX[a.distortion]
        cov = cv2.resize(a.mask, (GRID, GRID), interpolation=cv2.INTER_AREA)
        np.maximum(masks[t], cov, out=masks[t])
        level = SEVERITIES.index(a.severity) + 1
        sev[t] = np.where(cov >= SEVERITY_CELL_COVERAGE, np.maximum(sev[t], level), sev[t])
    return np.clip(masks * 255.0 + 0.5, 0, 255).astype(np.uint8), sev


@dataclass(frozen=True)
class Sample:
    """One training sample at model scale, laid out as in the shard contract."""

    image: np.ndarray  # uint8 [352, 352, 3]
    masks: np.ndarray  # uint8 [10, 44, 44]
    sev: np.ndarray  # uint8 [10, 44, 44]
    present: np.ndarray  # uint8 [10]
    key: np.ndarray  # uint8 [10]
    mos: float
    meta: str


def make_sample(pool: Pool, rng: np.random.Generator) -> Sample:
    """One training sample at model scale with all its labels."""
    work = int(rng.integers(WORK_MIN, WORK_MAX + 1))
    source, clean = clean_image(pool, rng, work, work)
    dist, applied, keys = distort_labelled(clean, rng)
    image = _resize(dist, MODEL_SIZE, MODEL_SIZE)
    ref = _resize(clean, MODEL_SIZE, MODEL_SIZE)
    mos = pseudo_mos(ref, image) if applied else MOS_CLEAN
    masks, sev = grid_maps(applied)
    present = np.zeros(NUM_DISTORTIONS, dtype=np.uint8)
    key = np.zeros(NUM_DISTORTIONS, dtype=np.uint8)
    for a in applied:
        present[DISTORTION_INDEX[a.distortion]] = 1
    for k in keys:
        key[DISTORTION_INDEX[k]] = 1
    scale = MODEL_SIZE / work
    meta = {
        "source": source,
        "work_size": work,
        "distortions": [a.to_json(a.distortion in keys, scale) for a in applied],
    }
    return Sample(image, masks, sev, present, key, mos, json.dumps(meta))


# ---------------------------------------------------------------- shards

_POOLS: dict[str, Pool] = {}


def _shard_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, {"train": 1, "val": 2}[split], index])


def write_shard(split: str, index: int, count: int, seed: int, out_dir: Path) -> Path:
    """Generate and atomically write one shard (`.tmp` name first, renamed when complete)."""
    pool = _POOLS[split]
    rng = np.random.default_rng(_shard_seed(seed, split, index))
    samples = [make_sample(pool, rng) for _ in range(count)]
    arrays = {
        "images": np.stack([s.image for s in samples]),
        "masks": np.stack([s.masks for s in samples]),
        "sev_maps": np.stack([s.sev for s in samples]),
        "present": np.stack([s.present for s in samples]),
        "key": np.stack([s.key for s in samples]),
        "mos": np.array([s.mos for s in samples], dtype=np.float32),
        "meta": np.array([s.meta for s in samples], dtype=np.str_),
    }
    final = out_dir / f"shard_{index:03d}.npz"
    tmp = out_dir / f".tmp_shard_{index:03d}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, final)
    return final


def _write_shard_job(args: tuple[str, int, int, int, str]) -> str:
    split, index, count, seed, out_dir = args
    return str(write_shard(split, index, count, seed, Path(out_dir)))


def generate_split(
    split: str,
    total: int,
    shard_size: int,
    seed: int,
    root: Path,
    workers: int,
    manifest: Path = MANIFEST_PATH,
) -> None:
    """Write `total` samples of one split as shards, then the READY marker."""
    out_dir = root / split
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "READY").unlink(missing_ok=True)
    if split not in _POOLS:
        _POOLS[split] = load_pool(split, manifest)
    n_shards = (total + shard_size - 1) // shard_size
    jobs = [(split, i, min(shard_size, total - i * shard_size), seed, str(out_dir)) for i in range(n_shards)]
    start = time.time()
    done = 0
    if workers > 1:
        ctx = mp.get_context("fork")  # the forked workers share the already decoded pool
        with ctx.Pool(workers) as procs:
            for path in procs.imap(_write_shard_job, jobs):
                done += 1
                _progress(split, path, done, n_shards, shard_size, start)
    else:
        for job in jobs:
            done += 1
            _progress(split, _write_shard_job(job), done, n_shards, shard_size, start)
    (out_dir / "READY").write_text(f"{total}\n")
    print(f"{split}: {total} samples in {time.time() - start:.0f}s", flush=True)


def _progress(split: str, path: str, done: int, n: int, shard_size: int, start: float) -> None:
    elapsed = time.time() - start
    rate = done * shard_size / max(elapsed, 1e-6)
    print(f"{split}: shard {done}/{n} {path} ({rate:.1f} samples/s, {elapsed:.0f}s)", flush=True)


# ---------------------------------------------------------------- evaluation set


def eval_clean(pool: Pool, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A clean evaluation crop: long side 384..1280, aspect 0.6..1.67, never upscaled past the photo."""
    name, photo = pool.photos[int(rng.integers(len(pool.photos)))]
    ph, pw = photo.shape[:2]
    long_side = int(rng.integers(EVAL_LONG_MIN, EVAL_LONG_MAX + 1))
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.67))))
    w, h = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
    shrink = min(1.0, pw / w, ph / h)
    # Keep the long side >= EVAL_LONG_MIN even for small photos (a slight upscale at most).
    shrink = max(shrink, EVAL_LONG_MIN / max(w, h))
    return name, photo_crop(photo, rng, max(64, round(w * shrink)), max(64, round(h * shrink)))


def _label_entry(a: engine.AppliedDistortion) -> dict[str, object]:
    return {"distortion": a.distortion, "severity": a.severity, "coordinates": list(a.box)}


def _save_png(path: Path, img: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])


def generate_eval(count: int, groups: int, seed: int, root: Path) -> None:
    """Write the evaluation images, labels.json and the ranking series from reserved sources."""
    pool = load_pool("eval")
    out = root / "eval"
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "ranking").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    labels: list[dict[str, object]] = []
    start = time.time()
    for i in range(count):
        source, clean = eval_clean(pool, rng)
        h, w = clean.shape[:2]
        dist, applied, keys = distort_labelled(clean, rng)
        mos = pseudo_mos(clean, dist) if applied else MOS_CLEAN
        name = f"images/eval_{i:04d}.png"
        _save_png(out / name, dist)
        labels.append(
            {
                "image": name,
                "source": source,
                "width": w,
                "height": h,
                "distortions": [_label_entry(a) for a in applied],
                "key_distortions": [_label_entry(a) for a in applied if a.distortion in keys],
                "image_quality": mos_to_grade(mos),
                "mos": round(mos, 4),
                "fine_level": fine_index_to_level(mos_to_fine_index(mos)),
            }
        )
        if (i + 1) % 50 == 0:
            print(f"eval: {i + 1}/{count} ({time.time() - start:.0f}s)", flush=True)
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    ranking = ranking_series(pool, groups, rng, out)
    (out / "ranking.json").write_text(json.dumps(ranking, indent=1))
    print(f"eval: {count} images, {groups} ranking groups in {time.time() - start:.0f}s", flush=True)


RANK_LEVELS = 4


def ranking_series(pool: Pool, groups: int, rng: np.random.Generator, out: Path) -> list[dict[str, object]]:
    """Series of one photo at RANK_LEVELS increasing strengths of one type (types cycle)."""
    rows: list[dict[str, object]] = []
    for g in range(groups):
        distortion = DISTORTIONS[g % NUM_DISTORTIONS]
        name, clean = eval_clean(pool, rng)
        h, w = clean.shape[:2]
        base = engine.random_plan(distortion, (h, w), rng, strength=0.75)
        edges = np.linspace(0.05, 1.0, RANK_LEVELS + 1)
        strengths = [float(rng.uniform(edges[k] + 0.02, edges[k + 1] - 0.02)) for k in range(RANK_LEVELS)]
        noise_seed = int(rng.integers(1 << 31))
        for rank, s in enumerate(strengths, start=1):
            plan = engine.DistortionPlan(distortion, s, base.boxes, base.ellipses, base.feather)
            dist, _ = engine.execute(clean, [plan], np.random.default_rng(noise_seed))
            rel = f"ranking/g{g:03d}_{rank}.png"
            _save_png(out / rel, dist)
            rows.append(
                {
                    "group": g,
                    "image": rel,
                    "source": name,
                    "distortion": distortion,
                    "strength_rank": rank,
                    "strength": round(s, 4),
                    "mos": round(pseudo_mos(clean, dist), 4),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=int, default=8192, help="training samples (0 skips)")
    parser.add_argument("--val", type=int, default=512, help="validation samples (0 skips)")
    parser.add_argument("--eval", type=int, default=400, help="evaluation images (0 skips)")
    parser.add_argument("--ranking", type=int, default=40, help="ranking series (groups)")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=20251126)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--manifest", type=Path, default=MANIFEST_PATH, help="source manifest (see training.pack_sources)"
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    if args.val:
        generate_split("val", args.val, args.shard_size, args.seed, args.out, args.workers, args.manifest)
    if args.train:
        generate_split("train", args.train, args.shard_size, args.seed, args.out, args.workers, args.manifest)
    if args.eval:
        generate_eval(args.eval, args.ranking, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
