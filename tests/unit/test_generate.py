"""Shard generation: samples follow the DATA/MODEL shard contract and labels agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from service.domain.taxonomy import DISTORTION_INDEX, DISTORTIONS
from training import generate
from training.pseudo_mos import MOS_CLEAN


def _pool() -> generate.Pool:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    photo = np.stack([xx / 640 * 255, yy / 480 * 255, 128 + 60 * np.sin(xx / 9.0)], axis=2)
    photo = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
    cutout = np.zeros((220, 160, 4), dtype=np.uint8)
    cutout[40:180, 30:130] = (200, 40, 40, 255)
    return generate.Pool(photos=[("test/photo", photo)], cutouts=[("test/cutout", cutout)])


def test_samples_follow_the_shard_contract() -> None:
    """Images, maps, flags, MOS and meta have the contract's shapes, dtypes and ranges."""
    pool, rng = _pool(), np.random.default_rng(1)
    for _ in range(12):
        s = generate.make_sample(pool, rng)
        assert s.image.shape == (352, 352, 3) and s.image.dtype == np.uint8
        assert s.masks.shape == s.sev.shape == (10, 44, 44)
        assert s.present.shape == s.key.shape == (10,)
        assert int(s.sev.max()) <= 3 and 1.0 <= s.mos <= 5.0
        meta = json.loads(s.meta)
        types = {d["distortion"] for d in meta["distortions"]}
        assert {DISTORTIONS[i] for i in np.flatnonzero(s.present)} == types
        assert {DISTORTIONS[i] for i in np.flatnonzero(s.key)} == {
            d["distortion"] for d in meta["distortions"] if d["key"]
        }
        assert set(np.flatnonzero(s.key)) <= set(np.flatnonzero(s.present))
        for d in meta["distortions"]:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 < x2 <= 352 and 0 <= y1 < y2 <= 352
            assert s.masks[DISTORTION_INDEX[d["distortion"]]].max() > 0
        if not types:
            assert s.mos == MOS_CLEAN and not s.masks.any()


def test_shards_are_written_whole_and_reproducible(tmp_path: Path) -> None:
    """A shard holds the requested samples and regenerating it gives identical arrays."""
    generate._POOLS["train"] = _pool()
    try:
        first = generate.write_shard("train", 0, 3, seed=5, out_dir=tmp_path)
        a = dict(np.load(first))
        second = generate.write_shard("train", 0, 3, seed=5, out_dir=tmp_path)
        b = np.load(second)
    finally:
        del generate._POOLS["train"]
    assert first.name == "shard_000.npz" and not list(tmp_path.glob(".tmp_*"))
    assert a["images"].shape == (3, 352, 352, 3) and a["mos"].dtype == np.float32
    for k in ("images", "masks", "sev_maps", "present", "key", "mos", "meta"):
        assert np.array_equal(a[k], b[k]), k


def test_distortions_without_visible_effect_are_not_labelled() -> None:
    """Blur on a perfectly flat image changes nothing, so no blur label is ever produced."""
    flat = np.full((360, 360, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(2)
    invisible = {
        "Low clarity",
        "Out of focus blur",
        "Motion blur",
        "Edge aliasing effect",
        "Edge ringing effect",
    }
    for _ in range(30):
        _, applied, keys = generate.distort_labelled(flat, rng)
        labelled = {a.distortion for a in applied}
        assert not labelled & invisible
        assert keys <= labelled
