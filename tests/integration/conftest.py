"""Integration fixtures: real databases, a real broker and a real Celery worker process.

- `database_url`: a migrated SQLite file, and also a fresh PostgreSQL schema (dropped at the
  end) when TEST_DATABASE_URL is set: tests using it run once per database.
- `broker_url`: kombu's SQLAlchemy transport on a SQLite file, or TEST_BROKER_URL (Redis, RabbitMQ).
- `worker_env` / `start_worker`: `celery -A workers.celery_app worker` in a subprocess, pointed at
  those, at a temp blob folder and at the session's real Triton (root conftest); each worker
  consumes its own queue so runs sharing a broker never take each other's messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.adapters.db import migrate
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _database_params() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


@pytest.fixture(scope="session", params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database URL for this session (SQLite; PostgreSQL when configured)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'idetex.db'}"
        migrate(url)
        yield url
        return
    base = make_url(os.environ["TEST_DATABASE_URL"])
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TEST_BROKER_URL, else the embedded SQLite broker in a temp folder."""
    return (
        os.environ.get("TEST_BROKER_URL")
        or f"sqla+sqlite:///{tmp_path_factory.mktemp('broker') / 'broker.db'}"
    )


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        """The settings the worker runs with, for building the test's own Container."""
        return Settings.from_env(self.env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """Pids of the pool processes (prefork), from /proc."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _start_worker(
    env: dict[str, str], log_path: Path, pool: str = "solo", timeout_s: float = 60.0
) -> WorkerProcess:
    command = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        f"--pool={pool}", "--concurrency=1", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, **env, "PYTHONPATH": python_path}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    worker = WorkerProcess(process, log_path, env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited with {process.returncode}:\n{worker.log()}")
        if " ready." in worker.log():
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"celery worker not ready after {timeout_s}s:\n{worker.log()}")


@dataclass
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 API on loopback: moto in server mode (the worker and the test talk to it over HTTP)."""
    from moto.server import ThreadedMotoServer

    from service.adapters.triton_server import find_free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = find_free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield S3Server(f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture(scope="session")
def worker_env(database_url: str, broker_url: str, blob_dir: Path, s3_server: S3Server) -> dict[str, str]:
    """Environment of a worker on this session's database, broker, blobs and S3 (no Triton yet)."""
    return {
        "IDETEX_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "IDETEX_S3_REGION": "us-east-1",
        "IDETEX_AUDIT_LEASE_S": "3",
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "IDETEX_DATABASE_URL": database_url,
        "IDETEX_BROKER_URL": broker_url,
        "IDETEX_BLOB_URL": blob_dir.as_uri(),
        "IDETEX_TASK_QUEUE": f"test-{uuid.uuid4().hex[:12]}",
        "IDETEX_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",  # the loopback receiver, nothing else private
        "IDETEX_WEBHOOK_TIMEOUT_S": "3",
        # the Standard Webhooks schedule compressed: immediately, then 0.5 s, 0.5 s, 0.5 s
        "IDETEX_WEBHOOK_SCHEDULE_S": "0,0.5,0.5,0.5",
        "IDETEX_WEBHOOK_SWEEP_INTERVAL_S": "0.5",
    }


@pytest.fixture(scope="session")
def start_worker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Start a worker with the given environment; every worker started is stopped at session end."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], pool: str = "solo") -> WorkerProcess:
        log_path = tmp_path_factory.mktemp("worker") / "worker.log"
        worker = _start_worker(env, log_path, pool)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        _delete_queue(worker.env["IDETEX_BROKER_URL"], worker.env["IDETEX_TASK_QUEUE"])


def _delete_queue(broker_url: str, queue: str) -> None:
    """Leave no per-session queue behind on a shared Redis or RabbitMQ."""
    if broker_url.startswith(("sqla+", "sqlalchemy+")):
        return  # a temp file, gone with the temp folder
    if broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(broker_url)
        keys = list(client.scan_iter(match=f"*{queue}*"))  # the queue, its bindings (names are unique)
        if keys:
            client.delete(*keys)
        client.close()
        return
    with Connection(broker_url, connect_timeout=5) as conn:
        with contextlib.suppress(Exception):  # absent (never declared): nothing to clean
            conn.default_channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            conn.default_channel.exchange_delete(queue)  # the queue's own direct exchange


@pytest.fixture(scope="session")
def celery_worker(
    start_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], triton_grpc_url: str
) -> WorkerProcess:
    """A real worker serving this session's queue with the session's real Triton."""
    return start_worker({**worker_env, "IDETEX_TRITON_URL": triton_grpc_url})
