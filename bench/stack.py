"""Start the whole stack exactly as `make run` does (`idetex serve`), in a folder of its own.

Used by the pipeline benchmark and the end-to-end tests: Triton from the wheel, a Celery
worker on the embedded broker and the gRPC API, with free ports so runs never collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.adapters.triton_server import find_free_port

IDETEX = Path(sys.executable).parent / "idetex"


class StackError(RuntimeError):
    """The stack exited or did not become SERVING in time; carries the end of its log."""


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    workdir: Path
    addr: str
    triton_grpc_url: str
    api_key: str = ""
    http_url: str = ""  # the report pages (IDETEX_HTTP_ADDR)
    children: list[int] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.workdir / "var" / "idetex.db"

    def log_tail(self, chars: int = 4000) -> str:
        path = self.workdir / "serve.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The Celery worker processes (main and pool children) among the stack's descendants."""
        return self.pids("celery")

    def pids(self, needle: str) -> list[int]:
        """The stack's live descendants whose command line contains `needle`."""
        return [p for p in descendants(self.proc.pid) if needle in cmdline(p)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...] (index 11, 12: utime, stime).
    OSError when the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(stat_fields(int(entry.name))[1])
            except OSError:
                continue
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each live pid has used so far (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat_fields(pid)
            out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def process_role(pid: int, stack_pid: int, celery_main: int | None) -> str:
    """What a stack process is, for the CPU accounting: api, celery-main, celery-pool, tritonserver,
    triton-stub, or other."""
    cmd = cmdline(pid)
    if pid == stack_pid:
        return "api"  # `idetex serve` serves gRPC itself and supervises the rest
    if "triton_python_backend_stub" in cmd:
        return "triton-stub"
    if "tritonserver" in cmd:
        return "tritonserver"
    if "celery" in cmd:
        return "celery-main" if pid == celery_main else "celery-pool"
    return "other"


class CpuMeter:
    """CPU milliseconds per image by process role over a measured stretch of work."""

    def __init__(self, stack: RunningStack) -> None:
        pids = [stack.proc.pid, *descendants(stack.proc.pid)]
        celery = [p for p in pids if "celery" in cmdline(p)]
        # the Celery main process is the one whose children are the pool processes
        main = next((p for p in celery if set(descendants(p)) & set(celery)), None)
        self.roles = {p: process_role(p, stack.proc.pid, main) for p in pids}
        self.start = cpu_seconds(pids)

    def per_image_ms(self, images: int) -> dict[str, float]:
        end = cpu_seconds(list(self.roles))
        out: dict[str, float] = {}
        for pid, role in self.roles.items():
            if pid in end and pid in self.start:
                out[role] = out.get(role, 0.0) + (end[pid] - self.start[pid]) * 1000 / images
        out = {k: round(v, 1) for k, v in sorted(out.items())}
        out["total"] = round(sum(out.values()), 1)
        return out


def alive(pid: int) -> bool:
    try:
        state = stat_fields(pid)[0]
    except OSError:
        return False
    return state != "Z"


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def _wait_serving(stack: RunningStack, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    key_file = stack.workdir / "var" / "dev-api-key"
    channel = grpc.insecure_channel(stack.addr)
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        while time.monotonic() < deadline:
            if stack.proc.poll() is not None:
                raise StackError(f"idetex serve exited with {stack.proc.returncode}:\n{stack.log_tail()}")
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            except grpc.RpcError:
                status = None
            if status == health_pb2.HealthCheckResponse.SERVING and key_file.exists():
                stack.api_key = key_file.read_text().strip()
                return
            time.sleep(0.5)
    finally:
        channel.close()
    raise StackError(f"the stack was not SERVING within {timeout_s:.0f} s:\n{stack.log_tail()}")


@contextlib.contextmanager
def running_stack(
    workdir: Path, *, workers: int = 1, timeout_s: float = 400.0, extra_env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    """`idetex serve` in `workdir` (its var/ lives there) until the block ends; SIGKILLs leftovers.
    The environment's IDETEX_* variables are dropped (embedded defaults); `extra_env` is added."""
    workdir.mkdir(parents=True, exist_ok=True)
    addr = f"127.0.0.1:{find_free_port()}"
    http, grpc_port, metrics = find_free_port(), find_free_port(), find_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDETEX_")}
    env.pop("DATABASE_URL", None)
    env.pop("BROKER_URL", None)
    env["IDETEX_GRPC_ADDR"] = addr
    http_addr = f"127.0.0.1:{find_free_port()}"
    env["IDETEX_HTTP_ADDR"] = http_addr
    env["IDETEX_METRICS_ADDR"] = f"127.0.0.1:{find_free_port()}"
    env["IDETEX_WORKER_METRICS_ADDR"] = f"127.0.0.1:{find_free_port()}"
    env.update(extra_env or {})
    cmd = [str(IDETEX), "serve", "--triton-ports", f"{http},{grpc_port},{metrics}", "--workers", str(workers)]
    with (workdir / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        stack = RunningStack(
            proc=proc,
            workdir=workdir,
            addr=addr,
            triton_grpc_url=f"127.0.0.1:{grpc_port}",
            http_url=f"http://{http_addr}",
        )
        try:
            _wait_serving(stack, timeout_s)
            stack.children = descendants(proc.pid)
            yield stack
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def publish(result: dict[str, Any], out: Path, table: str) -> None:
    """Write a bench's result as JSON to `out` and print its markdown table and where the JSON is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table)
    print(f"\nJSON: {out}")
