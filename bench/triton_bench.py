"""Latency, throughput and memory of idetex_lite served by the real Triton (CPU config).

    python -m bench.triton_bench                       # starts Triton from the nvidia-pytriton wheel
    python -m bench.triton_bench --url 127.0.0.1:8001  # measures a running server (gRPC)
    python -m bench.triton_bench --onnx var/model.onnx # serves that model instead of the exported one

One real photograph (long side 1024 px) is pre-processed once and sent at batch 1 and
batch 8 over gRPC and HTTP, after warm-up. Latency is client-side (serialisation included);
the same ONNX file run in-process by onnxruntime (2 threads) is the baseline row.
Peak RSS is sampled from /proc for the tritonserver process and its Python-backend stubs
(only when this script started the server). Prints a markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from service.adapters.inference import (
    Inference,
    OnnxRuntimeInference,
    TritonGrpcInference,
    TritonHttpInference,
)
from service.adapters.triton_server import TritonServer
from service.iqa.contract import MODEL_NAME
from tests import imagefactory
from tests.support.photos import load_rgb, photo_paths, to_model_input

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def peak_rss_by_process(pids: list[int]) -> dict[str, float]:
    """Each process's own peak RSS (VmHWM) in MiB, keyed by `name[pid]`."""
    peaks = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        name = fields.get("Name", "?").strip()
        peaks[f"{name}[{pid}]"] = round(int(fields.get("VmHWM", "0 kB").split()[0]) / 1024, 1)
    return peaks


def rss_bytes(pids: list[int]) -> int:
    """Current resident set size of `pids` together."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class RssSampler:
    """Samples the summed RSS of a process tree every `interval` s; `peak` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(process_tree(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_image(long_side: int = 1024) -> tuple[np.ndarray, str, float]:
    """One real photo at `long_side` px as a model input, its source, and the pre-processing ms."""
    paths = photo_paths(1, min_side=700, max_side=4000)
    rgb = load_rgb(paths[0], long_side) if paths else imagefactory.gradient(long_side, long_side * 3 // 4)
    started = time.perf_counter()
    tensor = to_model_input(rgb)
    preprocess_ms = (time.perf_counter() - started) * 1000
    source = str(paths[0].relative_to(REPO_ROOT)) if paths else "synthetic gradient"
    return tensor, f"{source} ({rgb.shape[1]}x{rgb.shape[0]})", preprocess_ms


def measure(call: Callable[[], Any], batch: int, iterations: int, warmup: int) -> dict[str, float]:
    """p50/p95/mean latency (ms) of `call` and the images per second it sustains."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    ms = sorted(t * 1000 for t in times)
    return {
        "batch": batch,
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "images_per_s": round(batch * len(ms) / sum(times), 2),
    }


@contextmanager
def served(args: argparse.Namespace) -> Iterator[tuple[str, str, int | None, str, Path | None]]:
    """(grpc url, http url, server pid, model description, onnx path): a started or a given server."""
    if args.url:
        yield args.url, args.http_url or "", None, "given server", args.onnx
        return
    work = Path(tempfile.mkdtemp(prefix="idetex-bench-"))
    try:
        repo = work / "repository"
        shutil.copytree(REPO_ROOT / "model_repository", repo)
        onnx = repo / MODEL_NAME / "1" / "model.onnx"
        if args.onnx:
            shutil.copy2(args.onnx, onnx)
            described = str(args.onnx)
        elif onnx.is_file():
            described = "model_repository (exported model.onnx)"
        else:
            from tests.support.dev_onnx import build_dev_onnx

            build_dev_onnx(onnx)
            described = "tiny dev model (no model.onnx exported yet)"
        with TritonServer(repo, log_path=work / "tritonserver.log") as server:
            yield server.grpc_url, server.http_url, server.pid, described, onnx
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    image, source, preprocess_ms = bench_image(args.long_side)
    results: dict[str, Any] = {"image": source, "preprocess_ms": round(preprocess_ms, 2), "rows": []}
    results["loadavg"] = Path("/proc/loadavg").read_text().split()[0]
    started = time.perf_counter()
    with served(args) as (grpc_url, http_url, pid, described, onnx_path):
        results["startup_s"] = round(time.perf_counter() - started, 2)
        results["model"] = described
        adapters: dict[str, Inference] = {"grpc": TritonGrpcInference(grpc_url, timeout_s=120)}
        if http_url:
            adapters["http"] = TritonHttpInference(http_url, timeout_s=120)
        sampler = RssSampler(pid) if pid else None
        with sampler or _null():
            for protocol, adapter in adapters.items():
                for batch in (1, 8):
                    row = measure(_infer_call(adapter, image, batch), batch, args.iterations, args.warmup)
                    results["rows"].append({"protocol": protocol, **row})
        if onnx_path is not None:  # the same model in-process: what Triton adds on top
            local = OnnxRuntimeInference(onnx_path, threads=2)
            for batch in (1, 8):
                row = measure(_infer_call(local, image, batch), batch, args.iterations, args.warmup)
                results["rows"].append({"protocol": "onnxruntime in-process", **row})
        if pid:
            results["peak_rss_mib"] = round((sampler.peak if sampler else 0) / 2**20, 1)
            results["processes"] = len(process_tree(pid))
            results["peak_rss_by_process_mib"] = peak_rss_by_process(process_tree(pid))
    return results


def _infer_call(adapter: Inference, image: np.ndarray, batch: int) -> Callable[[], Any]:
    images = np.repeat(image[None], batch, axis=0)
    return lambda: adapter.infer(images)


@contextmanager
def _null() -> Iterator[None]:
    yield


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"image: {results['image']}, pre-processing {results['preprocess_ms']} ms; model: {results['model']}",
        "",
        "| protocol | batch | p50 ms | p95 ms | mean ms | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        cells = [r["protocol"], r["batch"], r["p50_ms"], r["p95_ms"], r["mean_ms"], r["images_per_s"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if "peak_rss_mib" in results:
        stubs = results["processes"] - 1
        lines.append("")
        lines.append(f"peak RSS (tritonserver + {stubs} stub process(es)): {results['peak_rss_mib']} MiB")
        lines.append(f"per process (VmHWM, MiB): {results.get('peak_rss_by_process_mib', {})}")
        lines.append(f"startup {results['startup_s']} s; load average at start {results['loadavg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark idetex_lite on Triton (CPU).")
    parser.add_argument("--url", help="gRPC host:port of a running Triton (default: start one)")
    parser.add_argument("--http-url", help="HTTP host:port of that server (optional)")
    parser.add_argument("--onnx", type=Path, help="serve this ONNX file instead of the exported model")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--long-side", type=int, default=1024)
    args = parser.parse_args(argv)
    results = run(args)
    print(markdown(results))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
