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
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from service.settings import Settings, env_name

if TYPE_CHECKING:
    from service.adapters.triton_server import TritonServer
    from service.api.pages import PageServer

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
def embedded_triton(
    ports: tuple[int, int, int] = TRITON_PORTS, timeout_s: float = 300.0
) -> Iterator[TritonServer]:
    """Triton from the nvidia-pytriton wheel on (http, grpc, metrics) ports; 0 picks a free one."""
    from service.adapters.triton_server import TritonServer

    http, grpc_port, metrics = ports
    server = TritonServer(
        MODEL_REPOSITORY,
        http_port=http or None,
        grpc_port=grpc_port or None,
        metrics_port=metrics or None,
        log_path=VAR / "logs" / "triton.log",
    )
    log.info(
        "starting Triton (http %d, grpc %d, metrics %d), log in var/logs/triton.log",
        server.http_port,
        server.grpc_port,
        server.metrics_port,
    )
    server.start()
    try:
        server.wait_ready(timeout_s)
        log.info("Triton ready")
        yield server
    finally:
        server.stop()


def parse_ports(text: str) -> tuple[int, int, int]:
    """`HTTP,GRPC,METRICS` -> three ports (0 = any free port)."""
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3 or not all(0 <= p < 65536 for p in parts):
        raise ValueError(f"expected HTTP,GRPC,METRICS ports, got {text!r}")
    return parts[0], parts[1], parts[2]


@contextlib.contextmanager
def celery_worker(
    concurrency: int = 1, pool: str = "prefork", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`celery -A workers.celery_app worker` as a child process, logging to var/logs/worker.log."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-c", str(concurrency), f"--pool={pool}", "--loglevel=INFO", "-n", f"idetex-{os.getpid()}@%h",
    ]  # fmt: skip
    log_file = (VAR / "logs" / "worker.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
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


NATIVE_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def native_thread_env(threads: int) -> dict[str, str]:
    """Thread-pool sizes of the native libraries for the worker's environment (read when they
    load, so they must be set before the worker starts); variables already set win; 0 leaves
    the libraries' defaults."""
    if threads <= 0:
        return {}
    return {name: str(threads) for name in NATIVE_THREAD_VARS if name not in os.environ}


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


def start_report_pages(container: Any, settings: Settings) -> PageServer | None:
    """The report pages' HTTP server on IDETEX_HTTP_ADDR, started (None when it is "off").
    With port 0 and no IDETEX_REPORT_BASE_URL, the links in replies point at the port it got."""
    from service.api.pages import PageServer

    address = settings.http_listen_addr()
    if not address:
        return None
    pages = PageServer(container, address)
    if not settings.report_base_url:
        container.links.base_url = pages.url
    pages.start()
    log.info("report pages on %s/reports/<job_id>", pages.url)
    return pages


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C / SIGTERM unwinds the stack (stopping children in order); later ones wait."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def serve(
    settings: Settings,
    *,
    workers: int | None = None,
    pool: str = "prefork",
    triton_ports: tuple[int, int, int] = TRITON_PORTS,
    triton_timeout_s: float = 300.0,
) -> int:
    """Run until Ctrl-C / SIGTERM or until a child process dies; returns the exit status."""
    from service.adapters.triton_server import TritonNotInstalled, TritonStartupError
    from service.api.app import build_server
    from service.bootstrap import build
    from service.observability.metrics import multiproc_env

    prepare(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        with contextlib.ExitStack() as stack:
            triton = None
            worker_env = native_thread_env(settings.worker_native_threads)
            worker_env.update(multiproc_env(VAR / "run" / "prometheus"))  # the worker's /metrics
            if wants_embedded_triton():
                triton = stack.enter_context(embedded_triton(triton_ports, triton_timeout_s))
                url = triton.http_url if settings.triton_protocol == "http" else triton.grpc_url
                settings = replace(settings, triton_url=url)
                worker_env[env_name("triton_url")] = url
            else:
                log.info("using the external Triton at %s", settings.triton_url)
            container = build(settings)
            stack.callback(container.close)
            worker = stack.enter_context(
                celery_worker(workers or settings.worker_concurrency, pool, worker_env)
            )
            api = build_server(container, settings, metrics_address=settings.metrics_addr)
            api.start()
            stack.callback(api.stop)
            pages = start_report_pages(container, settings)
            if pages is not None:
                stack.callback(pages.stop)
            key = dev_api_key(container, settings)
            _print_banner(settings, key, pages)
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


def serve_api(settings: Settings) -> int:
    """Only the gRPC API, for scale-out: Triton and the Celery workers run elsewhere."""
    from service.api.app import build_server
    from service.bootstrap import build

    prepare(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    container = build(settings)
    api = build_server(container, settings, metrics_address=settings.metrics_addr)
    pages = None
    try:
        api.start()
        pages = start_report_pages(container, settings)
        log.info(
            "gRPC API on %s (Triton %s, broker %s)",
            settings.grpc_addr,
            settings.triton_url,
            settings.broker_url.split("@")[-1],
        )
        while True:
            time.sleep(1.0)
    except _Stop as why:
        log.info("%s: stopping", why)
    finally:
        if pages is not None:
            pages.stop()
        api.stop()
        container.close()
    return 0


def _print_banner(settings: Settings, key: str | None, pages: PageServer | None = None) -> None:
    lines = [f"iDetex validation API on {settings.grpc_addr} (gRPC, reflection and grpc.health.v1 enabled)"]
    if pages is not None:
        lines.append(f"report pages on {pages.url}/reports/<job_id> (the link is in each reply)")
    if key:
        lines.append(f"dev API key (also in {DEV_KEY_FILE}): {key}")
    script = Path(sys.executable).parent / "idetex"
    with contextlib.suppress(ValueError):
        script = script.relative_to(Path.cwd())
    addr = "" if settings.grpc_addr == Settings().grpc_addr else f" --addr {settings.grpc_addr}"
    lines.append(f"try:  {script} check photo.jpg{addr}")
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)
