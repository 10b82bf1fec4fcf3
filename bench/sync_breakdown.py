"""Where a sync Validate's time goes: the client's clock against the worker's log, call by call.

    python -m bench.sync_breakdown [--calls 110] [--warmup 10] [--out FILE]

Starts the stack the way `make run` does (`idetex serve`, SQLite + embedded broker), warms
it up, then sends `--calls` sync Validate calls one at a time (the 1024 px photos of
`bench.pipeline_bench`, distinct bytes each). The worker logs, per task, when it received
the message (Celery's `received` line), the job's stage times (`job ... DONE: claim .. ms
decode .. ms ...`) and when the task succeeded (with its job id). Joined on the task id and
the job id, every call splits into

- client -> worker: the client's call until the worker received the task (gRPC, the API's
  checks and decode, the pixel hand-off, the job row, the broker);
- in the worker: received until the task succeeded (stage by stage from the DONE line; what
  the stages leave is the task's own overhead);
- worker -> client: the task's end until the client had the reply (the API noticing the
  stored report, reading it, the gRPC reply).

The log's timestamps have millisecond resolution, on the same machine's clock as the client.
Raw Triton one at a time on the same photos is measured first, for the comparison.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.photos import base_images, jpeg_variant
from bench.pipeline_bench import pct, raw_triton
from bench.stack import publish, running_stack
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb

_RECEIVED = re.compile(r"process_image\[([0-9a-f-]+)\] received")
_SUCCEEDED = re.compile(r"process_image\[([0-9a-f-]+)\] succeeded in [\d.]+s.*job_id=([0-9a-f-]+)")
_DONE = re.compile(r"job ([0-9a-f-]+) DONE: (.*?)(?: task=|$)")
_STAGE = re.compile(r"(\w+) ([\d.]+) ms")


@dataclass
class WorkerTimes:
    """One job's times from the worker log (seconds since the epoch; stages in ms)."""

    received: float
    succeeded: float
    stages: dict[str, float] = field(default_factory=dict)


def log_time(line: str) -> float:
    """The timestamp that starts a worker log line (local time, as `time.time()` counts)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def worker_times(lines: list[str]) -> dict[str, WorkerTimes]:
    """Per job id: when its task was received and succeeded, and its stage times."""
    received: dict[str, float] = {}
    stages: dict[str, dict[str, float]] = {}
    found: dict[str, WorkerTimes] = {}
    for line in lines:
        if m := _RECEIVED.search(line):
            received[m.group(1)] = log_time(line)
        elif m := _DONE.search(line):
            stages[m.group(1)] = {k: float(v) for k, v in _STAGE.findall(m.group(2))}
        if (m := _SUCCEEDED.search(line)) and m.group(1) in received:
            job = m.group(2)
            found[job] = WorkerTimes(received[m.group(1)], log_time(line), stages.get(job, {}))
    return found


def breakdown(calls: list[tuple[str, float, float]], times: dict[str, WorkerTimes]) -> dict[str, Any]:
    """p50/p95 (ms) of each part of the calls (job id, client start, client end) the log explains."""
    parts: dict[str, list[float]] = {"client -> worker": [], "in the worker": [], "worker -> client": []}
    stage_ms: dict[str, list[float]] = {}
    total: list[float] = []
    for job, start, end in calls:
        w = times.get(job)
        if w is None:
            continue
        parts["client -> worker"].append((w.received - start) * 1000)
        parts["in the worker"].append((w.succeeded - w.received) * 1000)
        parts["worker -> client"].append((end - w.succeeded) * 1000)
        total.append((end - start) * 1000)
        for name, ms in w.stages.items():
            stage_ms.setdefault(name, []).append(ms)
        overhead = (w.succeeded - w.received) * 1000 - sum(w.stages.values())
        stage_ms.setdefault("task overhead (the rest)", []).append(overhead)
    summary = {name: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95)} for name, v in parts.items()}
    summary["total (client)"] = {"p50_ms": pct(total, 50), "p95_ms": pct(total, 95)}
    return {
        "calls_explained": len(total),
        "parts": summary,
        "worker_stages": {name: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95)} for name, v in stage_ms.items()},
    }


def run(calls: int, warmup: int, workdir: Path) -> dict[str, Any]:
    images = base_images()
    with running_stack(workdir, workers=2) as stack:
        print("warm-up ...", file=sys.stderr)
        raw_triton(stack, images, 20)
        log = stack.workdir / "var" / "logs" / "worker.log"
        with ValidationClient(stack.addr, stack.api_key) as client:
            for i in range(warmup):
                client.validate_bytes(jpeg_variant(images[i % len(images)], 30_000 + i), mode=pb.MODE_SYNC)
            print("raw Triton, one at a time ...", file=sys.stderr)
            raw = raw_triton(stack, images, calls)
            print(f"{calls} sync Validate calls, one at a time ...", file=sys.stderr)
            made: list[tuple[str, float, float]] = []
            for i in range(calls):
                data = jpeg_variant(images[i % len(images)], 40_000 + i)
                start = time.time()
                reply = client.validate_bytes(data, product_id=f"sync-{i}", mode=pb.MODE_SYNC, timeout_s=60)
                made.append((reply.job_id, start, time.time()))
                if reply.status != pb.JOB_STATUS_DONE:
                    raise RuntimeError(f"sync Validate returned {pb.JobStatus.Name(reply.status)}")
        time.sleep(1.0)  # the log's last lines
        result = breakdown(made, worker_times(log.read_text(errors="replace").splitlines()))
    result["calls"] = calls
    result["raw_triton"] = raw
    return result


def markdown(r: dict[str, Any]) -> str:
    raw = r["raw_triton"]
    lines = [
        f"{r['calls_explained']} of {r['calls']} sync calls joined with the worker log; "
        f"raw Triton one at a time: p50 {raw['p50_ms']:.1f} ms, p95 {raw['p95_ms']:.1f} ms",
        "",
        "| part of a sync call | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |" for k, v in r["parts"].items()]
    lines += ["", "| worker stage | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |" for k, v in r["worker_stages"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=110)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("var/bench/sync-breakdown.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="idetex-bench-") as tmp:
        result = run(args.calls, args.warmup, Path(tmp))
    publish(result, args.out, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
