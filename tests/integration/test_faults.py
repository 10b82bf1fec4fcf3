"""Faults the pipeline must survive without losing a job (the long forms: `make chaos`).

- a broker that lost its messages (a Redis restart without persistence): the stale-job
  sweeper queues the PENDING jobs again and they finish;
- a database that drops away under the API (PostgreSQL only): UNAVAILABLE (never INTERNAL),
  health NOT_SERVING, then SERVING again by itself when the database is back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kombu import Connection
from sqlalchemy.engine import make_url

from service.adapters.triton_server import find_free_port
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.bootstrap import build
from service.handlers import SubmitImage
from service.settings import Settings
from tests import imagefactory

pytestmark = pytest.mark.integration

IDETEX = Path(sys.executable).parent / "idetex"
WAIT_S = 120.0


def _purge(broker_url: str, queue: str) -> int:
    """Drop every message waiting in `queue`, as a broker restart without persistence does."""
    with Connection(broker_url, connect_timeout=5) as conn:
        simple = conn.SimpleQueue(queue)
        dropped = simple.clear()
        simple.close()
        return int(dropped or 0)


def test_jobs_whose_messages_the_broker_lost_are_queued_again_and_finish(
    start_worker: Any, worker_env: dict[str, str], triton_grpc_url: str
):
    """Messages dropped while no worker ran: the sweeper requeues the PENDING jobs; all end DONE."""
    env = {
        **worker_env,
        "IDETEX_TASK_QUEUE": worker_env["IDETEX_TASK_QUEUE"] + "-lost",
        "IDETEX_TRITON_URL": triton_grpc_url,
        "IDETEX_STALE_PENDING_S": "2",
        "IDETEX_STALE_CHECK_INTERVAL_S": "1",
    }
    container = build(Settings.from_env(env))
    worker = None
    try:
        merchant_id, _ = container.create_merchant("Lost messages shop")
        job_ids = [
            container.submit(
                SubmitImage(
                    merchant_id=merchant_id,
                    image=imagefactory.jpeg_bytes(imagefactory.gradient(320 + i, 240)),
                )
            ).job_id
            for i in range(3)
        ]
        assert _purge(env["IDETEX_BROKER_URL"], env["IDETEX_TASK_QUEUE"]) == 3
        time.sleep(2.5)  # older than IDETEX_STALE_PENDING_S
        worker = start_worker(env)
        views = [container.wait_for_report(merchant_id, job_id, WAIT_S) for job_id in job_ids]
        assert [v.status for v in views] == ["DONE"] * 3, worker.log()
        assert "requeueing job" in worker.log()
    finally:
        if worker is not None:
            worker.stop()  # its seconds-long sweeper would requeue other tests' jobs
        container.close()


class TcpCut:
    """A TCP forwarder to a server that the test can cut (every connection dropped, new ones
    refused: the server looks down) and restore, like a database restart seen by a client."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = find_free_port()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept(); stops listening
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _health(stub: health_pb2_grpc.HealthStub) -> int | None:
    try:
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
    except grpc.RpcError:
        return None


def _wait_health(
    stub: health_pb2_grpc.HealthStub, wanted: int, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 60
    while _health(stub) != wanted:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"health never became {wanted}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


def test_a_database_outage_answers_unavailable_then_recovers_by_itself(
    tmp_path: Path, database_url: str, broker_url: str, triton_grpc_url: str
):
    """PostgreSQL drops away under the API: health NOT_SERVING and Validate UNAVAILABLE (never
    INTERNAL, never a hang); when it is back the same process serves again without a restart."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs a server database to cut (TEST_DATABASE_URL)")
    cut = TcpCut((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=cut.port).render_as_string(hide_password=False)
    settings = Settings.from_env({"IDETEX_DATABASE_URL": database_url, "IDETEX_BROKER_URL": broker_url})
    container = build(settings)
    _, key = container.create_merchant("Outage shop")
    container.close()
    addr = f"127.0.0.1:{find_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDETEX_")}
    env |= {
        "IDETEX_GRPC_ADDR": addr,
        "IDETEX_TRITON_URL": triton_grpc_url,
        "IDETEX_DATABASE_URL": proxied,
        "IDETEX_BROKER_URL": broker_url,
        "IDETEX_TASK_QUEUE": f"outage-{os.getpid()}",  # no worker: the accepted job just waits
    }
    log_path = tmp_path / "api.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([str(IDETEX), "api"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    image = imagefactory.jpeg_bytes(imagefactory.gradient(64, 64))
    try:
        with grpc.insecure_channel(addr) as channel, ValidationClient(addr, key) as client:
            stub = health_pb2_grpc.HealthStub(channel)
            _wait_health(stub, health_pb2.HealthCheckResponse.SERVING, proc, log_path)
            cut.cut()
            with pytest.raises(grpc.RpcError) as caught:
                client.validate_bytes(image, mode=pb.MODE_ASYNC, timeout_s=20)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
            _wait_health(stub, health_pb2.HealthCheckResponse.NOT_SERVING, proc, log_path)
            cut.restore()
            _wait_health(stub, health_pb2.HealthCheckResponse.SERVING, proc, log_path)
            accepted = client.validate_bytes(image, mode=pb.MODE_ASYNC, timeout_s=20)
            assert accepted.job_id and accepted.status == pb.JOB_STATUS_PENDING
    finally:
        cut.cut()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
