"""Faults under a steady load: the long forms behind `make chaos` (docs/reliability.md).

    python -m bench.chaos [--faults worker-kill,triton-stop,postgres-restart,redis-restart]
                          [--clients 8] [--outage 30] [--out var/bench/chaos.json]

Starts `idetex serve` on this machine's PostgreSQL (a fresh database) and Redis (a
database of its own), keeps a steady load of Validate calls running (a share of them
sync), and injects each fault in turn:

- worker-kill: SIGKILL a Celery pool process while it runs a task (acks_late +
  reject_on_worker_lost give the task back to the broker);
- triton-stop: SIGSTOP the Triton server and its Python-backend stub for `--outage`
  seconds, then SIGCONT (to the pipeline, a Triton that stops answering);
- postgres-restart: stop the PostgreSQL cluster, wait `--pg-outage` seconds, start it;
- redis-restart: shut Redis down without saving (this machine's Redis keeps nothing on
  disk, so queued and unacknowledged messages are lost), wait, start it again; the
  stale-job sweeper queues the lost jobs again: PENDING ones after IDETEX_STALE_PENDING_S,
  RUNNING ones after twice IDETEX_TASK_TIME_LIMIT_S (both shortened here: 60 s, 2 x 60 s).

Around each fault it records the health status seen (NOT_SERVING expected while Triton,
the database or the broker is down), every call's status code and latency (sync callers
must get an answer, UNAVAILABLE or PENDING, within their deadline plus a margin: no
hang), and the time until a sync Validate succeeds again. At the end it drains the queue
and accounts for every accepted job (bench.load.account): 0 lost, 0 duplicated.

It restarts this machine's PostgreSQL and Redis: run it when nothing else uses them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import REDIS_URL, LoadState, account, drive, fresh_pg_database, pct, with_comment
from bench.stack import RunningStack, descendants, publish, running_stack
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb

FAULTS = ("worker-kill", "triton-stop", "postgres-restart", "redis-restart")
PG_CLUSTER = ("15", "main")
SYNC_MARGIN_S = 3.0


@dataclass
class HealthLog:
    samples: list[tuple[float, str]] = field(default_factory=list)

    def statuses_between(self, start: float, end: float) -> Counter[str]:
        return Counter(s for t, s in self.samples if start <= t <= end)


def watch_health(addr: str, log: HealthLog, stop: threading.Event) -> None:
    channel = grpc.insecure_channel(addr)
    stub = health_pb2_grpc.HealthStub(channel)
    while not stop.wait(0.25):
        try:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(
                stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status
            )
        except grpc.RpcError as exc:
            status = f"RPC_{exc.code().name}"
        log.samples.append((time.monotonic(), status))
    channel.close()


def busy_pool_process(stack: RunningStack) -> int:
    """A Celery pool process (a child of the worker's main process), preferring one using CPU now."""
    workers = stack.worker_pids()
    pool = [p for p in workers if p in _children_of_any(workers)]  # the main process is no one's child
    if not pool:
        raise RuntimeError("no Celery pool process found")

    def cpu(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return int(fields[11]) + int(fields[12])

    before = {p: cpu(p) for p in pool}
    time.sleep(0.2)
    return max(pool, key=lambda p: cpu(p) - before[p])


def _children_of_any(pids: list[int]) -> set[int]:
    out: set[int] = set()
    for p in pids:
        out.update(descendants(p))
    return out


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def inject(fault: str, stack: RunningStack, outage_s: float, pg_outage_s: float) -> dict[str, Any]:
    """Cause the fault and undo it; returns what was done."""
    if fault == "worker-kill":
        pid = busy_pool_process(stack)
        os.kill(pid, signal.SIGKILL)
        return {"killed_pid": pid}
    if fault == "triton-stop":
        pids = stack.pids("tritonserver") + stack.pids("triton_python_backend_stub")
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        time.sleep(outage_s)
        for p in pids:
            os.kill(p, signal.SIGCONT)
        return {"stopped_pids": pids, "outage_s": outage_s}
    if fault == "postgres-restart":
        _run(["pg_ctlcluster", *PG_CLUSTER, "stop", "-m", "fast"])
        time.sleep(pg_outage_s)
        _run(["pg_ctlcluster", *PG_CLUSTER, "start"])
        return {"outage_s": pg_outage_s}
    if fault == "redis-restart":
        subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=30)
        time.sleep(pg_outage_s)
        _run(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ]
        )
        return {"outage_s": pg_outage_s}
    raise ValueError(f"unknown fault {fault!r}")


def recovered_after(stack: RunningStack, tag: str, jpeg: bytes, timeout_s: float) -> float | None:
    """Seconds until a sync Validate of a new image comes back DONE; None if it never does."""
    start = time.monotonic()
    n = 0
    with ValidationClient(stack.addr, stack.api_key) as client:
        while time.monotonic() - start < timeout_s:
            n += 1
            try:
                resp = client.validate_bytes(
                    with_comment(jpeg, f"{tag}-probe-{n}"),
                    product_id=f"{tag}-probe-{n}",
                    mode=pb.MODE_SYNC,
                    timeout_s=10.0,
                )
                if resp.status == pb.JOB_STATUS_DONE:
                    return time.monotonic() - start
            except grpc.RpcError:
                pass
            time.sleep(1.0)
    return None


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_url = fresh_pg_database()
    extra_env = {
        "IDETEX_DATABASE_URL": db_url,
        "IDETEX_BROKER_URL": REDIS_URL,
        "IDETEX_STALE_PENDING_S": str(args.stale_pending),
        "IDETEX_STALE_CHECK_INTERVAL_S": "5",
        # a RUNNING job whose message Redis lost is requeued after twice the hard limit
        "IDETEX_TASK_SOFT_TIME_LIMIT_S": "45",
        "IDETEX_TASK_TIME_LIMIT_S": "60",
    }
    run_tag = f"chaos{os.getpid()}"
    results: dict[str, Any] = {"faults": {}, "sync_deadline_s": args.sync_deadline}
    with running_stack(workdir, workers=2, extra_env=extra_env) as stack:
        from bench.load import base_jpegs

        probe_jpeg = base_jpegs()[1]
        health = HealthLog()
        stop_health = threading.Event()
        threading.Thread(target=watch_health, args=(stack.addr, health, stop_health), daemon=True).start()
        state = LoadState()
        stop_load = threading.Event()
        load = threading.Thread(
            target=drive,
            args=(
                stack.addr,
                stack.api_key,
                10**9,
                args.clients,
                args.sync_share,
                args.sync_deadline,
                run_tag,
            ),
            kwargs={"stop": stop_load, "pause_s": args.pause, "state": state},
            daemon=True,
        )
        load.start()
        time.sleep(args.steady)
        for fault in args.faults:
            print(f"== {fault}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            seen = len(state.calls)
            done = inject(fault, stack, args.outage, args.pg_outage)
            t1 = time.monotonic()
            # probes are named apart from the load (bench.load.account counts the load's rows)
            recovery = recovered_after(stack, f"probe-{run_tag}-{fault}", probe_jpeg, args.recovery_timeout)
            time.sleep(args.steady)
            window = state.calls[seen:]
            sync = [c for c in window if c.mode == "sync"]
            results["faults"][fault] = {
                **done,
                "health_during": dict(health.statuses_between(t0, t1 + 1.0)),
                "calls": len(window),
                "codes": dict(Counter(c.code for c in window)),
                "sync_codes": dict(
                    Counter(f"{c.code}/{c.status}" if c.code == "OK" else c.code for c in sync)
                ),
                "sync_max_ms": max((c.latency_ms for c in sync), default=0.0),
                "sync_p95_ms": pct([c.latency_ms for c in sync], 95),
                "hung_sync_calls": sum(
                    1 for c in sync if c.latency_ms > (args.sync_deadline + SYNC_MARGIN_S) * 1000
                ),
                "recovered_after_s": recovery,
            }
            print(json.dumps(results["faults"][fault]), file=sys.stderr, flush=True)
        stop_load.set()
        load.join(timeout=120)
        stop_health.set()
        results["accounting"] = account(db_url, state.calls, run_tag, args.drain_timeout)
        results["calls"] = len(state.calls)
        results["codes"] = dict(Counter(c.code for c in state.calls))
    return results


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "| fault | calls during | status codes | sync replies | sync max ms | hung | health seen | "
        "recovered after s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in r["faults"].items():
        rec = "never" if f["recovered_after_s"] is None else f"{f['recovered_after_s']:.1f}"
        lines.append(
            f"| {name} | {f['calls']} | {_fmt(f['codes'])} | {_fmt(f['sync_codes'])} "
            f"| {f['sync_max_ms']:.0f} "
            f"| {f['hung_sync_calls']} | {_fmt(f['health_during'])} | {rec} |"
        )
    a = r["accounting"]
    lines += [
        "",
        f"{r['calls']} calls in all ({_fmt(r['codes'])}); "
        f"accepted jobs {a['accepted_jobs']}: done {a['done']}, "
        f"failed {a['failed']}, **lost {a['lost']}, duplicated {a['duplicated']}**",
    ]
    return "\n".join(lines)


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, from {', '.join(FAULTS)}"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds each client waits between calls")
    parser.add_argument("--sync-share", type=float, default=0.3)
    parser.add_argument("--sync-deadline", type=float, default=10.0)
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of steady load around each fault")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds Triton stays stopped")
    parser.add_argument("--pg-outage", type=float, default=10.0, help="seconds PostgreSQL / Redis stay down")
    parser.add_argument("--stale-pending", type=int, default=60, help="IDETEX_STALE_PENDING_S for the stack")
    parser.add_argument("--recovery-timeout", type=float, default=180.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=Path("var/bench/chaos.json"))
    args = parser.parse_args(argv)
    args.faults = [f for f in args.faults.split(",") if f]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="idetex-chaos-") as tmp:
        result = run(args, Path(tmp))
    publish(result, args.out, markdown(result))
    a = result["accounting"]
    hung = sum(f["hung_sync_calls"] for f in result["faults"].values())
    never = [n for n, f in result["faults"].items() if f["recovered_after_s"] is None]
    return 0 if a["lost"] == 0 and a["duplicated"] == 0 and hung == 0 and not never else 1


if __name__ == "__main__":
    raise SystemExit(main())
