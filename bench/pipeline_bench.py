"""Whole pipeline vs raw Triton, measured in one run on the same images.

    python -m bench.pipeline_bench [--images 100] [--rounds 3] [--rss-images 1000] [--out FILE]

Starts the stack the way `make run` does (`idetex serve`: Triton from the wheel, the
Celery worker (2 processes, serve's default), the gRPC API, SQLite + embedded broker),
then on the same 1024 px photos:

1. `--rounds` rounds, each of
   - raw Triton: tritonclient straight to the model (pre-processed tensor, batch 1, one at a time);
   - pipeline, async: the images sent with async Validate by 4 concurrent clients; throughput =
     images / (last report stored - first job created); per-job latency = report stored - job created.
   - raw Triton one at a time again, then sync Validate one at a time: client-side p50/p95.
   This machine kind's speed drifts by tens of percent over minutes, so each ratio and each
   sync - raw difference is taken within one round and the median round is reported;
2. raw Triton with 4 requests in flight (the server kept busy), for comparison;
3. worker RSS after `--rss-images` async images (Celery main + pool processes);
4. with the stack stopped, the job's own steps alone in this process (`bench.stage_cpu`), and
   the ceiling they put on the ratio: every core busy with only inference and those steps.

Every request carries distinct bytes (a JPEG comment), so idempotency never skips inference.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench import stage_cpu
from bench.photos import base_images, variants
from bench.stack import CpuMeter, RunningStack, publish, rss_mib, running_stack
from service.adapters.inference import TritonGrpcInference
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.iqa.contract import MODEL_NAME, MODEL_VERSION
from service.iqa.preprocess import to_model_input

SUBMITTERS = 4
STEP_IMAGES = 40  # photos for the floor (bench.stage_cpu), after the rounds


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def model_inputs(images: list[Image.Image]) -> list[np.ndarray]:
    """Each photo pre-processed once, as a batch of one: what raw Triton is sent."""
    return [to_model_input(np.asarray(im))[None] for im in images]


def raw_triton(stack: RunningStack, images: list[Image.Image], n: int) -> dict[str, Any]:
    inference = TritonGrpcInference(stack.triton_grpc_url, model_name=MODEL_NAME, model_version=MODEL_VERSION)
    tensors = model_inputs(images)
    for t in tensors:  # warm-up
        inference.infer(t)
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        inference.infer(tensors[i % len(tensors)])
        latencies.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - start
    inference.close()
    return {"images": n, "throughput": n / wall, "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95)}


def _parse_ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _done_jobs(db: Path, job_ids: list[str]) -> dict[str, tuple[float, float]]:
    """job id -> (job created, report stored) for finished jobs."""
    marks = ",".join("?" * len(job_ids))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT j.id, j.created_at, r.created_at FROM jobs j JOIN reports r ON r.job_id = j.id"
            f" WHERE j.id IN ({marks})",
            job_ids,
        ).fetchall()
    return {jid: (_parse_ts(c), _parse_ts(r)) for jid, c, r in rows}


def pipeline_async(stack: RunningStack, images: list[Image.Image], n: int, tag: str) -> dict[str, Any]:
    payloads = variants(images, n)
    job_ids: list[str] = [""] * n

    def submit(worker: int) -> None:
        with ValidationClient(stack.addr, stack.api_key) as client:
            for i in range(worker, n, SUBMITTERS):
                resp = client.validate_bytes(
                    payloads[i], product_id=f"{tag}-{i}", mode=pb.MODE_ASYNC, timeout_s=60
                )
                job_ids[i] = resp.job_id

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(submit, range(SUBMITTERS)))
    deadline = time.time() + 60 + n * 2.0
    done: dict[str, tuple[float, float]] = {}
    while len(done) < n and time.time() < deadline:
        time.sleep(0.25)
        done = _done_jobs(stack.database, job_ids)
        print(f"\r  {tag}: {len(done)}/{n} reports stored", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if len(done) < n:
        raise RuntimeError(f"only {len(done)}/{n} jobs finished; see {stack.workdir}/var/logs/worker.log")
    first = min(c for c, _ in done.values())
    last = max(r for _, r in done.values())
    latencies = [(r - c) * 1000 for c, r in done.values()]
    return {
        "images": n,
        "throughput": n / (last - first),  # first job created -> last report stored, both from the DB
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
    }


def pipeline_sync(stack: RunningStack, images: list[Image.Image], n: int) -> dict[str, float]:
    payloads = variants(images, n, start=10_000)
    latencies = []
    with ValidationClient(stack.addr, stack.api_key) as client:
        for i, data in enumerate(payloads):
            t0 = time.perf_counter()
            resp = client.validate_bytes(data, product_id=f"sync-{i}", mode=pb.MODE_SYNC, timeout_s=60)
            latencies.append((time.perf_counter() - t0) * 1000)
            if resp.status != pb.JOB_STATUS_DONE:
                raise RuntimeError(f"sync Validate returned {pb.JobStatus.Name(resp.status)}")
    return {"images": n, "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95)}


def raw_triton_concurrent(
    stack: RunningStack, images: list[Image.Image], n: int, streams: int
) -> dict[str, float]:
    """Raw Triton with `streams` requests in flight (the dynamic batcher may join them): the
    server's throughput when something keeps it busy, for comparison with the pipeline."""
    tensors = model_inputs(images)

    def one_stream(k: int) -> None:
        inference = TritonGrpcInference(
            stack.triton_grpc_url, model_name=MODEL_NAME, model_version=MODEL_VERSION
        )
        for i in range(k, n, streams):
            inference.infer(tensors[i % len(tensors)])
        inference.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(one_stream, range(streams)))
    return {"images": n, "throughput": n / (time.perf_counter() - start), "streams": streams}


def run(n: int, rounds: int, rss_images: int, workdir: Path, workers: int) -> dict[str, Any]:
    """`rounds` rounds of (raw Triton, async pipeline, raw Triton, sync Validate), `n` images each:
    this machine's speed drifts by tens of percent over minutes, so each ratio and each sync - raw
    difference is taken within one round and the median round is the result."""
    images = base_images()
    with running_stack(workdir, workers=workers) as stack:
        print("warm-up ...", file=sys.stderr)
        raw_triton(stack, images, 20)
        pipeline_async(stack, images, 20, "warm")
        pairs: list[dict[str, Any]] = []
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}: raw Triton ...", file=sys.stderr)
            meter = CpuMeter(stack)
            raw = raw_triton(stack, images, n)
            raw["cpu_ms_per_image"] = meter.per_image_ms(n)
            print(f"round {r + 1}/{rounds}: pipeline (async) ...", file=sys.stderr)
            meter = CpuMeter(stack)
            pipe = pipeline_async(stack, images, n, f"async{r}")
            pipe["cpu_ms_per_image"] = meter.per_image_ms(n)
            print(f"round {r + 1}/{rounds}: raw Triton and sync Validate, one at a time ...", file=sys.stderr)
            raw_one = raw_triton(stack, images, n)
            sync = pipeline_sync(stack, images, n)
            pairs.append(
                {
                    "raw": raw,
                    "pipeline": pipe,
                    "ratio": pipe["throughput"] / raw["throughput"],
                    "raw_before_sync": raw_one,
                    "sync": sync,
                    "sync_p95_minus_raw_p95_ms": sync["p95_ms"] - raw_one["p95_ms"],
                }
            )
        print("raw Triton, 4 requests in flight ...", file=sys.stderr)
        raw_busy = raw_triton_concurrent(stack, images, n, streams=4)
        rss_before = rss_mib(stack.worker_pids())
        rss = None
        if rss_images:
            print(f"worker memory over {rss_images} images ...", file=sys.stderr)
            pipeline_async(stack, images, rss_images, "rss")
            rss = rss_mib(stack.worker_pids())
    median = sorted(pairs, key=lambda p: float(p["ratio"]))[len(pairs) // 2]
    # the stack is down: the job's own steps, alone in this process, on the same photos
    print("the job's steps in one process (the floor) ...", file=sys.stderr)
    steps = stage_cpu.measure(variants(images, STEP_IMAGES, start=20_000))
    cores = os.cpu_count() or 1
    triton_cpu = median["pipeline"]["cpu_ms_per_image"]
    inference_ms = triton_cpu.get("triton-stub", 0.0) + triton_cpu.get("tritonserver", 0.0)
    ceiling = stage_cpu.ceiling_ratio(cores, inference_ms, steps["floor"], median["raw"]["throughput"])
    median_sync = sorted(pairs, key=lambda p: float(p["sync_p95_minus_raw_p95_ms"]))[len(pairs) // 2]
    return {
        "rounds": pairs,
        "raw_triton": median["raw"],
        "pipeline_async": median["pipeline"],
        "raw_triton_4_in_flight": raw_busy,
        "raw_triton_before_sync": median_sync["raw_before_sync"],
        "sync_validate": median_sync["sync"],
        "ratio_throughput_pipeline_vs_raw": median["ratio"],
        "ratio_pipeline_vs_raw_4_in_flight": median["pipeline"]["throughput"] / raw_busy["throughput"],
        "sync_p95_minus_raw_p95_ms": median_sync["sync_p95_minus_raw_p95_ms"],
        "job_steps_cpu_ms": steps,
        "ceiling": {"cores": cores, "inference_cpu_ms": inference_ms, "ratio": ceiling},
        "worker_rss_mib_start": rss_before,
        "worker_rss_mib_after": rss,
        "rss_images": rss_images,
        "image_long_side": 1024,
        "workers": workers,
        "submitters": SUBMITTERS,
    }


def _row(label: str, d: dict[str, float], latency: bool = True, rate: bool = True) -> str:
    images_s = f"{d['throughput']:.1f}" if rate else "-"
    p50 = f"{d['p50_ms']:.0f}" if latency else "-"
    p95 = f"{d['p95_ms']:.0f}" if latency else "-"
    return f"| {label} | {d['images']:.0f} | {images_s} | {p50} | {p95} |"


def busy_share(pipeline: dict[str, Any], cores: int) -> float:
    """The share of the machine's cores the stack's processes used during the async pass."""
    return float(pipeline["throughput"] * pipeline["cpu_ms_per_image"]["total"] / (1000.0 * cores))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| round | raw Triton images/s | pipeline images/s | ratio | raw p95 ms | sync p95 ms | sync - raw |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, p in enumerate(r["rounds"], 1):
        raw_rate, pipe_rate = p["raw"]["throughput"], p["pipeline"]["throughput"]
        raw95, sync95 = p["raw_before_sync"]["p95_ms"], p["sync"]["p95_ms"]
        lines.append(
            f"| {i} | {raw_rate:.1f} | {pipe_rate:.1f} | {p['ratio']:.2f} | {raw95:.0f} | {sync95:.0f} "
            f"| {p['sync_p95_minus_raw_p95_ms']:+.0f} |"
        )
    busy = r["raw_triton_4_in_flight"]
    lines += [
        "",
        "| path (median round) | images | images/s | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
        _row("raw Triton (tritonclient gRPC, batch 1, one at a time)", r["raw_triton"]),
        _row("pipeline: async Validate -> report stored", r["pipeline_async"]),
        _row(f"raw Triton, {busy['streams']} requests in flight", busy, latency=False),
        _row("raw Triton before the sync pass (one at a time)", r["raw_triton_before_sync"]),
        _row("sync Validate (one at a time)", r["sync_validate"], rate=False),
        "",
        f"pipeline / raw throughput (median of {len(r['rounds'])} rounds): "
        f"**{r['ratio_throughput_pipeline_vs_raw']:.2f}x**; pipeline / raw with "
        f"{busy['streams']} in flight: {r['ratio_pipeline_vs_raw_4_in_flight']:.2f}x; "
        f"sync p95 - raw p95 (median round): **{r['sync_p95_minus_raw_p95_ms']:+.0f} ms**",
    ]
    cpu_raw, cpu_pipe = r["raw_triton"]["cpu_ms_per_image"], r["pipeline_async"]["cpu_ms_per_image"]
    roles = sorted(set(cpu_raw) | set(cpu_pipe), key=lambda k: (k == "total", k))
    lines += [
        "",
        "CPU ms per image by process (median round; the raw Triton client is the bench, not counted):",
        "",
        "| process | raw Triton | pipeline |",
        "|---|---|---|",
        *(f"| {k} | {cpu_raw.get(k, 0.0):.1f} | {cpu_pipe.get(k, 0.0):.1f} |" for k in roles),
    ]
    steps, ceiling = r.get("job_steps_cpu_ms"), r.get("ceiling")
    if steps and ceiling:
        cores, inference = ceiling["cores"], ceiling["inference_cpu_ms"]
        busy = busy_share(r["pipeline_async"], cores)
        at_busy = ceiling["ratio"] * busy
        lines += [
            "",
            "The work every job does, alone in one process (`bench.stage_cpu`, same photos, after "
            "the rounds):",
            "",
            stage_cpu.markdown(steps),
            "",
            f"Ceiling: {ceiling['cores']} cores busy all the time with only inference "
            f"({ceiling['inference_cpu_ms']:.1f} ms of Triton CPU per image, median round) and that floor "
            f"({steps['floor']:.1f} ms) would give at most **{ceiling['ratio']:.2f}x** raw Triton's "
            f"throughput. The pipeline kept the cores {busy:.0%} busy (median round); at that share, "
            f"with no service overhead at all (no gRPC, database, broker or Celery): "
            f"**{at_busy:.2f}x**. The service's own overhead: "
            f"{r['pipeline_async']['cpu_ms_per_image']['total'] - inference - steps['floor']:.1f} ms "
            "of CPU per image.",
        ]
    if r["worker_rss_mib_after"] is not None:
        lines.append("")
        lines.append(
            f"worker RSS: {r['worker_rss_mib_start']:.0f} MiB at start of the RSS run, "
            f"{r['worker_rss_mib_after']:.0f} MiB after {r['rss_images']} more images"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100, help="images per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw / pipeline rounds")
    parser.add_argument(
        "--rss-images", type=int, default=1000, help="images for the worker memory check (0: skip)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (serve's default)")
    parser.add_argument("--out", type=Path, default=Path("var/bench/pipeline.json"))
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of an earlier run's JSON (--out) and exit"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        print(markdown(json.loads(args.from_json.read_text())))
        return 0
    with tempfile.TemporaryDirectory(prefix="idetex-bench-") as tmp:
        result = run(args.images, args.rounds, args.rss_images, Path(tmp), args.workers)
    publish(result, args.out, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
