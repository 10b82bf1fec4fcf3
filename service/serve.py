"""`idetex serve`: the whole stack on one machine, the way `make run` starts it.

Creates var/, migrates the database, starts Triton from the nvidia-pytriton wheel
(unless IDETEX_TRITON_URL names an external one), one Celery worker process and the
gRPC API; in development it also makes a dev merchant whose key is kept in
var/dev-api-key so `idetex check photo.jpg` works with no setup. Ctrl-C or SIGTERM
stops every process it started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Final
from urllib.parse import urlparse

from service.settings import Settings, env_name

log = logging.getLogger("idetex.serve")

VAR: Final = Path("var")
DEV_KEY_FILE: Final = VAR / "dev-api-key"
TRITON_PORTS: Final = (8000, 8001, 8002)  # http, grpc, metrics
MODEL_REPOSITORY: Final = Path(__file__).resolve().parent.parent / "model_repository"


def local_paths(settings: Settings) -> list[Path]:
    """Folders the embedded defaults write to: var/, the SQLite files' folders, local blobs."""
    paths = [VAR, VAR / "logs"]
    for url in (settings.database_url, settings.broker_url):
        if "sqlite:///" in url:
            db_file = url.split("sqlite:///", 1)[1].split("?", 1)[0]
            if db_file and db_file != ":memory:":
                paths.append(Path(db_file).parent)
    if settings.blob_url.startswith("file://"):
        paths.append(Path(urlparse(settings.blob_url).netloc + urlparse(settings.blob_url).path))
    return paths


def prepare(settings: Settings) -> None:
    """Create the local folders and bring the database schema up to date."""
    from service.adapters.db import migrate

    for path in local_paths(settings):
        path.mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url)


def wants_embedded_triton(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return not environ.get(env_name("triton_url")) and not environ.get("TRITON_URL")


def dev_api_key(container: Any, settings: Settings, key_file: Path = DEV_KEY_FILE) -> str | None:
    """In development: the stored dev key if it still works, else a new dev merchant's key."""
    if settings.environment != "development":
        return None
    if key_file.exists():
        key = key_file.read_text().strip()
        with contextlib.suppress(Exception):
            container.authenticate(key)
            return key
    _merchant_id, key = container.create_merchant("dev")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return str(key)


@contextlib.contextmanager
def embedded_triton(timeout_s: float = 300.0) -> Iterator[Any]:
    """Triton from the nvidia-pytriton wheel on 8000 (http) / 8001 (grpc) / 8002 (metrics)."""
    from service.adapters.triton_server import TritonServer

    http, grpc_port, metrics = TRITON_PORTS
    server = TritonServer(
        MODEL_REPOSITORY,
        http_port=http,
        grpc_port=grpc_port,
        metrics_port=metrics,
        log_path=VAR / "logs" / "triton.log",
    )
    log.info(
        "starting Triton (http %d, grpc %d, metrics %d), log in var/logs/triton.log", http, grpc_port, metrics
    )
    server.start()
    try:
        server.wait_ready(timeout_s)
        log.info("Triton ready")
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def celery_worker(concurrency: int = 1, pool: str = "prefork") -> Iterator[subprocess.Popen[bytes]]:
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-c", str(concurrency), f"--pool={pool}", "--loglevel=INFO", "-n", f"idetex-{os.getpid()}@%h",
    ]  # fmt: skip
    log_file = (VAR / "logs" / "worker.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    log.info(
        "Celery worker pid %d (pool %s, concurrency %d), log in var/logs/worker.log",
        proc.pid,
        pool,
        concurrency,
    )
    try:
        yield proc
    finally:
        stop_process(proc, "Celery worker")
        log_file.close()


def stop_process(proc: subprocess.Popen[bytes], name: str, grace_s: float = 10.0) -> None:
    """SIGTERM (a warm shutdown for Celery), then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s; killing it", name, grace_s)
        proc.kill()
        proc.wait()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C / SIGTERM unwinds the stack (stopping children in order); later ones wait."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def serve(
    settings: Settings, *, workers: int | None = None, pool: str = "prefork", triton_timeout_s: float = 300.0
) -> int:
    """Run until Ctrl-C / SIGTERM or until a child process dies; returns the exit status."""
    from service.adapters.triton_server import TritonNotInstalled, TritonStartupError
    from service.api.app import build_server
    from service.bootstrap import build

    prepare(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    container = build(settings)
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(container.close)
            triton = None
            if wants_embedded_triton():
                triton = stack.enter_context(embedded_triton(triton_timeout_s))
            else:
                log.info("using the external Triton at %s", settings.triton_url)
            worker = stack.enter_context(celery_worker(workers or settings.worker_concurrency, pool))
            api = build_server(container, settings)
            api.start()
            stack.callback(api.stop)
            key = dev_api_key(container, settings)
            _print_banner(settings, key)
            while True:
                time.sleep(1.0)
                if worker.poll() is not None:
                    log.error(
                        "the Celery worker exited with %s; stopping (see var/logs/worker.log)",
                        worker.returncode,
                    )
                    return 1
                if triton is not None and not triton.is_running():
                    log.error("Triton exited; stopping (see var/logs/triton.log)")
                    return 1
    except _Stop as why:
        log.info("%s: stopping every process", why)
    except (TritonNotInstalled, TritonStartupError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


def _print_banner(settings: Settings, key: str | None) -> None:
    lines = [f"iDetex validation API on {settings.grpc_addr} (gRPC, reflection and grpc.health.v1 enabled)"]
    if key:
        lines.append(f"dev API key (also in {DEV_KEY_FILE}): {key}")
    lines.append("try:  .venv/bin/idetex check photo.jpg")
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)
