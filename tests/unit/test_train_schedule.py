"""training.train: the time-based schedule and progressive shard loading."""

import itertools
import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is only in the 'train' extra")

from training.train import ShardStore, TrainConfig, lr_factor


def write_shard(path, n, seed):
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        images=rng.integers(0, 256, (n, 352, 352, 3), dtype=np.uint8),
        masks=np.zeros((n, 10, 44, 44), np.uint8),
        sev_maps=np.zeros((n, 10, 44, 44), np.uint8),
        present=np.zeros((n, 10), np.uint8),
        key=np.zeros((n, 10), np.uint8),
        mos=np.full(n, 3.0, np.float32),
        meta=np.array([json.dumps({"source": "t", "distortions": []})] * n),
    )


def test_lr_warms_up_then_anneals_by_elapsed_fraction():
    """The factor rises to 1 at the end of warm-up and decays monotonically to the final fraction."""
    cfg = TrainConfig(warmup_frac=0.1, final_lr_frac=0.02)
    assert lr_factor(0.05, cfg) == pytest.approx(0.5)
    assert lr_factor(0.1, cfg) == pytest.approx(1.0)
    later = [lr_factor(f, cfg) for f in np.linspace(0.1, 1.0, 20)]
    assert all(a >= b for a, b in itertools.pairwise(later))
    assert lr_factor(1.0, cfg) == pytest.approx(0.02)


def test_shard_store_picks_up_new_shards_and_skips_broken_ones(tmp_path):
    """rescan() adds shards that appeared since, ignores a half-written file and respects the cap."""
    write_shard(tmp_path / "shard_000.npz", 3, 0)
    store = ShardStore(tmp_path, max_samples=100)
    assert store.rescan() == 3
    (tmp_path / "shard_001.npz").write_bytes(b"PK\x03\x04 not finished")
    write_shard(tmp_path / "shard_002.npz", 2, 1)
    assert store.rescan() == 2 and len(store) == 5
    batch = store.gather(store.index[[0, 4]])
    assert batch["images"].shape == (2, 352, 352, 3)
    write_shard(tmp_path / "shard_001.npz", 4, 2)
    assert store.rescan() == 4 and store.rescan() == 0
    capped = ShardStore(tmp_path, max_samples=3)
    assert capped.rescan() == 3
