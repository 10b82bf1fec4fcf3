"""Train idetex_lite on the generated shards, bounded by wall-clock time.

    python -m training.train --data var/data --minutes 70 --out var/train

Shards are read progressively: training starts on the shards present and rescans
for new ones after every epoch. The learning-rate schedule (linear warm-up, then
cosine) is a function of the elapsed fraction of the time budget, so a run of any
length ends annealed. ``last.pt`` is written atomically every few minutes, so a
usable model exists even if the run is stopped. Progress goes to ``train.log``
and ``metrics.jsonl`` in the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from service.iqa.contract import OUTPUT_NAMES
from training.export import load_checkpoint_state, model_from_state
from training.losses import LOSS_WEIGHTS, multitask_loss
from training.model import IdetexLite, build_model
from training.targets import CENTER_CROP, Batch, Crop, build_batch, draw_crop, smoothed_fine
from training.val_metrics import val_metrics

log = logging.getLogger("training.train")
SHARD_KEYS = ("images", "masks", "sev_maps", "present", "key", "mos")


@dataclass(frozen=True)
class TrainConfig:
    data: str = "var/data"
    out: str = "var/train"
    minutes: float = 70.0
    batch: int = 16
    lr: float = 1.5e-3  # neck and heads
    backbone_lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_frac: float = 0.04
    final_lr_frac: float = 0.02
    perturb_prob: float = 0.3  # iDetex spatial perturbation rate (15-45% band)
    freeze: int = 4  # features.0..freeze-1 stay at ImageNet weights (BN in eval mode)
    eval_minutes: float = 10.0
    ckpt_minutes: float = 4.0
    val_max: int = 512
    max_samples: int = 40000
    wait_minutes: float = 20.0  # how long to wait for the first training shard
    seed: int = 20251
    threads: int = 2
    log_every: int = 10
    device: str = "auto"  # auto: cuda when available, else cpu
    precision: str = "auto"  # auto: bf16 autocast on cuda, fp32 on cpu; or fp32 / bf16
    loaders: int = 0  # threads building batches ahead of the optimiser (0: inline)
    init: str = ""  # start from this state dict or checkpoint (e.g. the committed weights), not ImageNet


class ShardStore:
    """The samples of every shard loaded so far; ``rescan`` adds shards that appeared since."""

    def __init__(self, folder: Path, max_samples: int) -> None:
        self.folder = folder
        self.max_samples = max_samples
        self.loaded: list[str] = []
        self.arrays: dict[str, list[np.ndarray]] = {k: [] for k in SHARD_KEYS}
        self.index = np.zeros((0, 2), dtype=np.int64)  # (shard, row)

    def __len__(self) -> int:
        return len(self.index)

    def rescan(self) -> int:
        """Load complete new shards (np.savez writes them whole); returns how many samples were added."""
        added = 0
        for path in sorted(self.folder.glob("shard_*.npz")):
            if path.name in self.loaded or len(self) + added >= self.max_samples:
                continue
            try:
                with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
                    arrs = {k: z[k] for k in SHARD_KEYS}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # being written
                log.info("skip %s for now: %s", path.name, exc)
                continue
            shard = len(self.loaded)
            self.loaded.append(path.name)
            for k in SHARD_KEYS:
                self.arrays[k].append(arrs[k])
            n = len(arrs["mos"])
            rows = np.stack([np.full(n, shard), np.arange(n)], axis=1)
            self.index = np.concatenate([self.index, rows])
            added += n
        return added

    def gather(self, picks: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.stack([self.arrays[k][s][r] for s, r in picks]) for k in SHARD_KEYS}


def lr_factor(frac: float, cfg: TrainConfig) -> float:
    """Warm-up then cosine, both on the elapsed fraction of the time budget."""
    if frac < cfg.warmup_frac:
        return max(frac / cfg.warmup_frac, 0.01)
    t = min((frac - cfg.warmup_frac) / (1.0 - cfg.warmup_frac), 1.0)
    return cfg.final_lr_frac + (1.0 - cfg.final_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * t))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_for(device: torch.device, precision: str) -> Any:
    """bf16 autocast on CUDA (the default there), none on CPU unless asked for."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def to_tensors(b: Batch, device: torch.device | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    dev = device or torch.device("cpu")
    images = (
        torch.from_numpy(b.images).to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
    )
    target = {
        "coverage": torch.from_numpy(b.coverage),
        "severity": torch.from_numpy(b.severity),
        "severity_weight": torch.from_numpy(b.severity_weight),
        "present": torch.from_numpy(b.present),
        "key": torch.from_numpy(b.key),
        "fine_soft": torch.from_numpy(smoothed_fine(b.fine)),
        "mos": torch.from_numpy(b.mos),
    }
    return images, {k: v.to(dev, non_blocking=True) for k, v in target.items()}


def initial_model(init: str) -> IdetexLite:
    """ImageNet backbone with fresh heads, or a warm start from an earlier run's weights."""
    if not init:
        return build_model(pretrained=True)
    model = model_from_state(load_checkpoint_state(Path(init)))
    log.info("warm start from %s", init)
    return model


def set_train_mode(model: IdetexLite, freeze: int) -> None:
    model.train()
    for layer in list(model.features)[:freeze]:
        layer.eval()


def param_groups(model: IdetexLite, cfg: TrainConfig) -> list[dict[str, Any]]:
    for layer in list(model.features)[: cfg.freeze]:
        for p in layer.parameters():
            p.requires_grad_(False)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((name.startswith("features."), p.ndim > 1), []).append(p)
    return [
        {
            "params": ps,
            "lr_base": cfg.backbone_lr if bb else cfg.lr,
            "weight_decay": cfg.weight_decay if decay else 0.0,
        }
        for (bb, decay), ps in groups.items()
    ]


@torch.no_grad()
def evaluate(
    model: IdetexLite, val: ShardStore, cfg: TrainConfig, device: torch.device | None = None
) -> dict[str, float]:
    dev = device or torch.device("cpu")
    model.eval()
    outs: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUT_NAMES}
    tgts: dict[str, list[np.ndarray]] = {k: [] for k in ("coverage", "present", "key", "fine", "mos")}
    n = min(len(val), cfg.val_max)
    for start in range(0, n, 32):
        picks = val.index[start : min(start + 32, n)]
        a = val.gather(picks)
        b = build_batch(
            a["images"],
            a["masks"],
            a["sev_maps"],
            a["present"],
            a["key"],
            a["mos"],
            [CENTER_CROP] * len(picks),
        )
        x = torch.from_numpy(b.images).to(dev).contiguous(memory_format=torch.channels_last)
        for name, o in zip(OUTPUT_NAMES, model(x), strict=True):
            outs[name].append(o.float().cpu().numpy())
        for k in tgts:
            tgts[k].append(getattr(b, k))
    result = val_metrics(
        {k: np.concatenate(v) for k, v in outs.items()}, {k: np.concatenate(v) for k, v in tgts.items()}
    )
    result["n"] = float(n)
    return result


def save_checkpoint(path: Path, model: IdetexLite, cfg: TrainConfig, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": asdict(cfg),
            "arch": "idetex_lite/mobilenet_v2-1.0",
            **info,
        },
        tmp,
    )
    os.replace(tmp, path)


class Recorder:
    def __init__(self, out: Path) -> None:
        self.path = out / "metrics.jsonl"

    def write(self, kind: str, **fields: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"kind": kind, "time": time.time(), **fields}) + "\n")


def wait_for_shards(store: ShardStore, cfg: TrainConfig) -> None:
    deadline = time.time() + cfg.wait_minutes * 60
    while store.rescan() == 0 and len(store) == 0:
        if time.time() > deadline:
            raise SystemExit(f"no training shards under {store.folder} after {cfg.wait_minutes} min")
        log.info("waiting for shards under %s", store.folder)
        time.sleep(15)


class Trainer:
    """One time-bounded run: the model, its optimiser, the data and the bookkeeping."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.rng = np.random.default_rng(cfg.seed)
        self.rec = Recorder(self.out)
        self.store = ShardStore(Path(cfg.data) / "train", cfg.max_samples)
        self.val = ShardStore(Path(cfg.data) / "val", cfg.val_max)
        self.device = resolve_device(cfg.device)
        model = initial_model(cfg.init).to(self.device)
        self.model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.autocast = lambda: autocast_for(self.device, cfg.precision)
        self.pool = ThreadPoolExecutor(cfg.loaders) if cfg.loaders > 0 else None
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg), lr=cfg.lr)
        self.budget = cfg.minutes * 60.0
        self.ckpt = self.out / "last.pt"
        self.start = self.last_ckpt = self.last_eval = time.time()
        self.step = self.epoch = self.seen = 0
        self.window: dict[str, float] = {}
        self.win_t, self.win_n = time.time(), 0
        self.val_result: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.time() - self.start

    def make_batch(self, picks: np.ndarray, crops: list[Crop]) -> Batch:
        a = self.store.gather(picks)
        return build_batch(a["images"], a["masks"], a["sev_maps"], a["present"], a["key"], a["mos"], crops)

    def batches(self, order: np.ndarray) -> Iterator[tuple[int, Batch]]:
        """The epoch's batches in order; with ``loaders`` threads they are built a few steps ahead."""
        bs = self.cfg.batch
        plan = []
        for i in range(0, len(order) - bs + 1, bs):
            picks = self.store.index[order[i : i + bs]]
            plan.append((picks, [draw_crop(self.rng, self.cfg.perturb_prob) for _ in range(bs)]))
        if self.pool is None:
            for picks, crops in plan:
                yield len(picks), self.make_batch(picks, crops)
            return
        ahead: deque[Future[Batch]] = deque()
        todo = iter(plan)
        for picks, crops in todo:
            ahead.append(self.pool.submit(self.make_batch, picks, crops))
            if len(ahead) >= 2 * self.cfg.loaders:
                break
        while ahead:
            batch = ahead.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append(self.pool.submit(self.make_batch, *nxt))
            yield len(batch.mos), batch

    def train_step(self, batch: Batch) -> None:
        cfg = self.cfg
        factor = lr_factor(self.elapsed() / self.budget, cfg)
        for g in self.opt.param_groups:
            g["lr"] = g["lr_base"] * factor
        x, tgt = to_tensors(batch, self.device)
        set_train_mode(self.model, cfg.freeze)
        with self.autocast():
            raw = self.model.raw(x)
        loss, terms = multitask_loss({k: v.float() for k, v in raw.items()}, tgt)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        self.step += 1
        self.seen += len(batch.mos)
        self.win_n += len(batch.mos)
        for k, v in {"loss": float(loss.detach()), **terms}.items():
            self.window[k] = self.window.get(k, 0.0) + v

    def log_progress(self) -> None:
        rate = self.win_n / max(time.time() - self.win_t, 1e-6)
        avg = {k: round(v / self.cfg.log_every, 4) for k, v in self.window.items()}
        lr = self.opt.param_groups[0]["lr"]
        terms = " ".join(f"{k} {v}" for k, v in avg.items())
        log.info(
            "step %d epoch %d elapsed %.1fmin lr %.2e %s samples/s %.2f",
            self.step,
            self.epoch,
            self.elapsed() / 60,
            lr,
            terms,
            rate,
        )
        self.rec.write(
            "train",
            step=self.step,
            epoch=self.epoch,
            elapsed_s=self.elapsed(),
            lr=lr,
            samples_per_s=rate,
            **avg,
        )
        self.window, self.win_t, self.win_n = {}, time.time(), 0

    def run_eval(self, final: bool = False) -> None:
        with self.autocast():
            self.val_result = evaluate(self.model, self.val, self.cfg, self.device)
        shown = " ".join(f"{k} {v:.4f}" for k, v in self.val_result.items())
        log.info("%sval step %d %s", "final " if final else "", self.step, shown)
        self.rec.write("val", step=self.step, elapsed_s=self.elapsed(), final=final, **self.val_result)
        self.last_eval = time.time()

    def checkpoint(self) -> None:
        info = {
            "step": self.step,
            "epoch": self.epoch,
            "elapsed_s": self.elapsed(),
            "seen": self.seen,
            "val": self.val_result,
            "train_shards": list(self.store.loaded),
        }
        save_checkpoint(self.ckpt, self.model, self.cfg, info)
        self.last_ckpt = time.time()
        log.info("checkpoint %s at step %d", self.ckpt, self.step)

    def housekeeping(self) -> None:
        cfg = self.cfg
        if self.step % cfg.log_every == 0:
            self.log_progress()
        if time.time() - self.last_eval >= cfg.eval_minutes * 60 and len(self.val):
            self.run_eval()
        if time.time() - self.last_ckpt >= cfg.ckpt_minutes * 60:
            self.checkpoint()

    def rescan(self) -> None:
        added = self.store.rescan() + (self.val.rescan() if len(self.val) < self.cfg.val_max else 0)
        if added:
            log.info(
                "rescan: +%d samples, train %d (%d shards), val %d",
                added,
                len(self.store),
                len(self.store.loaded),
                len(self.val),
            )

    def run(self) -> Path:
        wait_for_shards(self.store, self.cfg)
        self.val.rescan()
        log.info("config %s", json.dumps(asdict(self.cfg)))
        log.info("loss weights %s", json.dumps(LOSS_WEIGHTS))
        log.info(
            "train samples %d from %d shards, val %d", len(self.store), len(self.store.loaded), len(self.val)
        )
        log.info("device %s, precision %s, loaders %d", self.device, self.cfg.precision, self.cfg.loaders)
        self.start = self.last_ckpt = self.last_eval = time.time()
        while self.elapsed() < self.budget:
            order = self.rng.permutation(len(self.store))
            for _, batch in self.batches(order):
                if self.elapsed() >= self.budget:
                    break
                self.train_step(batch)
                self.housekeeping()
            self.epoch += 1
            if self.elapsed() < self.budget:
                self.rescan()
        if len(self.val):
            self.run_eval(final=True)
        self.checkpoint()
        log.info("done: %d steps, %d samples seen, %.1f min", self.step, self.seen, self.elapsed() / 60)
        return self.ckpt


def train(cfg: TrainConfig) -> Path:
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    return Trainer(cfg).run()


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f, default in asdict(TrainConfig()).items():
        p.add_argument("--" + f.replace("_", "-"), type=type(default), default=default)
    return TrainConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.FileHandler(Path(cfg.out) / "train.log"), logging.StreamHandler()],
    )
    train(cfg)


if __name__ == "__main__":
    main()
