"""Load test: many concurrent Validate calls against the stack, then an accounting of every job.

    python -m bench.load [--calls 10000] [--clients 50] [--sync-share 0.2]
                         [--backend embedded|pg-redis] [--out var/bench/load-embedded.json]

Starts `idetex serve` the way `make run` does (embedded defaults: SQLite + the SQLite
broker; or `--backend pg-redis`: a fresh PostgreSQL database and a Redis database on this
machine), then `--clients` threads, each with its own gRPC channel, send `--calls`
Validate calls in all: real photographs (tests/fixtures/photos) at several sizes (512 to
3000 px long side, so some go through UploadImage streaming), every upload with distinct
bytes; `--sync-share` of them sync (deadline `--sync-deadline`), the rest async. One call
in twenty repeats an earlier upload with the same idempotency key and must get the same job.

Afterwards it waits for the queue to drain and checks, from the database:
- every accepted job id has exactly one job row and one stored report (0 lost);
- no upload made two jobs (jobs rows of the run == distinct accepted job ids; a repeated
  idempotency key answered with its first job id) and no report was written twice
  (distortion rows per job == the report body's distortion count) (0 duplicated).

Prints progress while it runs and a Markdown summary; writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from PIL import Image
from sqlalchemy import create_engine, text

from bench.stack import publish, running_stack
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.handlers import RETRYABLE_CODES

PHOTOS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos"
SIZES = (512, 1024, 1600, 3000)
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PG_DB = "idetex_load"
REDIS_URL = "redis://127.0.0.1:6379/5"
TERMINAL = ("DONE", "FAILED")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def base_jpegs() -> list[bytes]:
    """The fixture photos at each size in SIZES, JPEG quality 92."""
    out = []
    for path in sorted(PHOTOS.glob("*.jpg")):
        im = Image.open(path).convert("RGB")
        for side in SIZES:
            scale = side / max(im.size)
            resized = im.resize(
                (round(im.width * scale), round(im.height * scale)), Image.Resampling.BILINEAR
            )
            buf = io.BytesIO()
            resized.save(buf, format="JPEG", quality=92)
            out.append(buf.getvalue())
    return out


def with_comment(jpeg: bytes, comment: str) -> bytes:
    """The same JPEG with a COM segment after SOI: distinct bytes and sha256, same pixels."""
    body = comment.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@dataclass
class Call:
    index: int
    mode: str  # sync | async | repeat
    code: str  # gRPC status name, OK for accepted
    latency_ms: float
    job_id: str = ""
    status: str = ""  # job status in the reply
    expected_job: str = ""  # for a repeat: the job id its first upload got


@dataclass
class LoadState:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_index: int = 0
    sent_keys: list[tuple[str, bytes, str]] = field(default_factory=list)  # (idempotency key, bytes, job id)


def _client_loop(
    addr: str,
    key: str,
    state: LoadState,
    n: int,
    sync_share: float,
    deadline_s: float,
    jpegs: list[bytes],
    run_tag: str,
    seed: int,
    stop: threading.Event,
    pause_s: float,
) -> None:
    rng = random.Random(seed)
    with ValidationClient(addr, key) as client:
        while not stop.is_set():
            if pause_s:
                time.sleep(pause_s * rng.random() * 2)  # a steady trickle instead of a flood
            with state.lock:
                if state.next_index >= n:
                    return
                i = state.next_index
                state.next_index += 1
                repeat = (
                    state.sent_keys[rng.randrange(len(state.sent_keys))]
                    if (state.sent_keys and i % 20 == 19)
                    else None
                )
            if repeat is not None:
                idem, data, expected = repeat
                mode, pb_mode = "repeat", pb.MODE_ASYNC
            else:
                idem = f"{run_tag}-{i}"
                data = with_comment(jpegs[rng.randrange(len(jpegs))], idem)
                expected = ""
                mode = "sync" if rng.random() < sync_share else "async"
                pb_mode = pb.MODE_SYNC if mode == "sync" else pb.MODE_ASYNC
            t0 = time.perf_counter()
            try:
                resp = client.validate_bytes(
                    data,
                    product_id=f"{run_tag}-{i}",
                    mode=pb_mode,
                    idempotency_key=idem,
                    timeout_s=deadline_s if mode == "sync" else 30.0,
                )
                call = Call(
                    i,
                    mode,
                    "OK",
                    (time.perf_counter() - t0) * 1000,
                    resp.job_id,
                    pb.JobStatus.Name(resp.status),
                    expected,
                )
            except grpc.RpcError as exc:
                call = Call(
                    i, mode, exc.code().name, (time.perf_counter() - t0) * 1000, expected_job=expected
                )
            with state.lock:
                state.calls.append(call)
                if call.code == "OK" and repeat is None:
                    state.sent_keys.append((idem, data, call.job_id))


def _progress(state: LoadState, n: int, stop: threading.Event) -> None:
    start = time.perf_counter()
    while not stop.wait(5.0):
        done = len(state.calls)
        rate = done / (time.perf_counter() - start)
        print(f"  {done}/{n} calls answered, {rate:.1f}/s", file=sys.stderr, flush=True)


def drive(
    addr: str,
    key: str,
    n: int,
    clients: int,
    sync_share: float,
    deadline_s: float,
    run_tag: str,
    *,
    stop: threading.Event | None = None,
    pause_s: float = 0.0,
    state: LoadState | None = None,
) -> tuple[list[Call], float]:
    """`clients` threads send up to `n` calls (fewer when `stop` is set first); each waits about
    `pause_s` between calls (0: as fast as the replies come)."""
    jpegs = base_jpegs()
    state = state or LoadState()
    stop = stop or threading.Event()
    done = threading.Event()
    progress = threading.Thread(target=_progress, args=(state, n, done), daemon=True)
    progress.start()
    threads = [
        threading.Thread(
            target=_client_loop,
            args=(addr, key, state, n, sync_share, deadline_s, jpegs, run_tag, 1000 + c, stop, pause_s),
        )
        for c in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done.set()
    progress.join()
    return state.calls, wall


def account(db_url: str, calls: list[Call], run_tag: str, drain_timeout_s: float) -> dict[str, Any]:
    """Wait until every accepted job is terminal, then count lost and duplicated jobs."""
    accepted = {c.job_id for c in calls if c.code == "OK" and c.job_id}
    engine = create_engine(db_url)
    deadline = time.monotonic() + drain_timeout_s
    drain_start = time.perf_counter()
    statuses: dict[str, str] = {}
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, status, idempotency_key, error_code FROM jobs WHERE product_id LIKE :p"),
                {"p": f"{run_tag}-%"},
            ).all()
        statuses = {r[0]: r[1] for r in rows}
        pending = [j for j in accepted if statuses.get(j) not in TERMINAL]
        if not pending or time.monotonic() > deadline:
            break
        print(
            f"  draining: {len(accepted) - len(pending)}/{len(accepted)} jobs finished",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(5.0)
    drain_s = time.perf_counter() - drain_start
    with engine.connect() as conn:
        reports = conn.execute(
            text(
                "SELECT r.job_id, r.body FROM reports r JOIN jobs j ON j.id = r.job_id"
                " WHERE j.product_id LIKE :p"
            ),
            {"p": f"{run_tag}-%"},
        ).all()
        rows_per_job: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT d.job_id, COUNT(*) FROM distortions d JOIN jobs j ON j.id = d.job_id"
                    " WHERE j.product_id LIKE :p GROUP BY d.job_id"
                ),
                {"p": f"{run_tag}-%"},
            ).all()
        )
    engine.dispose()
    report_count = Counter(r[0] for r in reports)
    bodies = {r[0]: (r[1] if isinstance(r[1], dict) else json.loads(r[1])) for r in reports}
    double_written = [
        j for j, body in bodies.items() if rows_per_job.get(j, 0) != len(body.get("distortions", []))
    ]
    done = [j for j in accepted if statuses.get(j) == "DONE"]
    failed = [j for j in accepted if statuses.get(j) == "FAILED"]
    lost = [
        j
        for j in accepted
        if j not in statuses
        or (statuses[j] == "DONE" and report_count[j] != 1)
        or statuses[j] not in TERMINAL
    ]
    repeats = [c for c in calls if c.mode == "repeat" and c.code == "OK"]
    repeat_mismatch = [c for c in repeats if c.job_id != c.expected_job]
    # rows the clients were not given a job id for: a call answered UNAVAILABLE after its row was
    # written (the broker refused the task: the row says FAILED with a retryable code) is no
    # duplicate; any other such row is one, as is an idempotency key with more than one job
    refused = {r[0] for r in rows if r[1] == "FAILED" and r[3] in RETRYABLE_CODES}
    # a call that failed on the client side (its deadline) after the server stored its job: the
    # job is there for a retry with the same idempotency key to find, not a duplicate
    errored_keys = {f"{run_tag}-{c.index}" for c in calls if c.code != "OK" and c.mode != "repeat"}
    orphans = {r[0] for r in rows if r[0] not in accepted and r[2] in errored_keys} - refused
    extra_jobs = sorted(set(statuses) - accepted - refused - orphans)
    keys = Counter(r[2] for r in rows if r[2])
    return {
        "accepted_jobs": len(accepted),
        "done": len(done),
        "failed": len(failed),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "jobs_rows_not_accepted": len(extra_jobs),
        "refused_calls_with_failed_rows": len(refused),
        "failed_calls_whose_job_was_stored": len(orphans),
        "idempotency_keys_with_several_jobs": sum(1 for n in keys.values() if n > 1),
        "reports_more_than_once": sum(1 for n in report_count.values() if n > 1),
        "distortion_rows_mismatch": len(double_written),
        "repeat_calls": len(repeats),
        "repeat_answered_other_job": len(repeat_mismatch),
        "duplicated": len(extra_jobs)
        + sum(1 for n in keys.values() if n > 1)
        + len(repeat_mismatch)
        + len(double_written)
        + sum(1 for n in report_count.values() if n > 1),
        "drain_s": drain_s,
    }


def summarise(calls: list[Call], wall: float) -> dict[str, Any]:
    codes = Counter(c.code for c in calls)
    out: dict[str, Any] = {
        "calls": len(calls),
        "wall_s": wall,
        "calls_per_s": len(calls) / wall,
        "codes": dict(codes),
    }
    for mode in ("sync", "async", "repeat"):
        lat = [c.latency_ms for c in calls if c.mode == mode and c.code == "OK"]
        out[mode] = {
            "calls": sum(1 for c in calls if c.mode == mode),
            "p50_ms": pct(lat, 50),
            "p95_ms": pct(lat, 95),
            "p99_ms": pct(lat, 99),
            "reply_status": dict(Counter(c.status for c in calls if c.mode == mode and c.code == "OK")),
        }
    return out


def fresh_pg_database() -> str:
    """Drop and create the load database on this machine's PostgreSQL; empty the Redis database."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    admin.dispose()
    subprocess.run(
        ["redis-cli", "-n", REDIS_URL.rsplit("/", 1)[1], "FLUSHDB"], check=False, capture_output=True
    )
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{PG_DB}"


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    extra_env: dict[str, str] = {}
    if args.backend == "pg-redis":
        db_url = fresh_pg_database()
        extra_env = {"IDETEX_DATABASE_URL": db_url, "IDETEX_BROKER_URL": REDIS_URL}
    run_tag = f"load{os.getpid()}"
    with running_stack(workdir, workers=args.workers, extra_env=extra_env) as stack:
        if args.backend == "embedded":
            db_url = f"sqlite:///{stack.database}"
        print(f"{args.calls} calls from {args.clients} clients ({args.backend}) ...", file=sys.stderr)
        calls, wall = drive(
            stack.addr, stack.api_key, args.calls, args.clients, args.sync_share, args.sync_deadline, run_tag
        )
        accounting = account(db_url, calls, run_tag, args.drain_timeout)
    result = summarise(calls, wall)
    result.update(
        accounting=accounting,
        backend=args.backend,
        clients=args.clients,
        sync_share=args.sync_share,
        sync_deadline_s=args.sync_deadline,
        workers=args.workers,
        sizes=SIZES,
    )
    result["jobs_per_s_end_to_end"] = accounting["done"] / (wall + accounting["drain_s"])
    return result


def markdown(r: dict[str, Any]) -> str:
    a = r["accounting"]
    lines = [
        f"{r['calls']} calls, {r['clients']} clients, backend {r['backend']}: "
        f"{r['calls_per_s']:.1f} calls/s answered, {r['jobs_per_s_end_to_end']:.1f} reports/s end to end",
        "",
        "| calls | n | p50 ms | p95 ms | p99 ms | reply status |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("sync", "async", "repeat"):
        m = r[mode]
        lines.append(
            f"| {mode} | {m['calls']} | {m['p50_ms']:.0f} | {m['p95_ms']:.0f} | {m['p99_ms']:.0f} "
            f"| {', '.join(f'{k} {v}' for k, v in sorted(m['reply_status'].items()))} |"
        )
    lines += [
        "",
        "status codes: " + ", ".join(f"{k} {v}" for k, v in sorted(r["codes"].items())),
        f"accepted jobs {a['accepted_jobs']}: done {a['done']}, failed {a['failed']}, "
        f"**lost {a['lost']}, duplicated {a['duplicated']}** "
        f"(queue drained {a['drain_s']:.0f} s after the last call)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sync-share", type=float, default=0.2)
    parser.add_argument("--sync-deadline", type=float, default=10.0, help="seconds a sync call waits")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=("embedded", "pg-redis"), default="embedded")
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(f"var/bench/load-{args.backend}.json")
    with tempfile.TemporaryDirectory(prefix="idetex-load-") as tmp:
        result = run(args, Path(tmp))
    publish(result, out, markdown(result))
    a = result["accounting"]
    return 0 if a["lost"] == 0 and a["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
