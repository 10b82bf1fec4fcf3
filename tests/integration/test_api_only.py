"""`idetex api`: the API process alone, as scale-out deployments (deploy/) run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.adapters.triton_server import find_free_port

IDETEX = Path(sys.executable).parent / "idetex"


def test_api_only_reports_not_serving_without_triton_and_stops_on_sigterm(tmp_path):
    """With no Triton reachable the API runs but health says NOT_SERVING; SIGTERM ends it cleanly."""
    addr = f"127.0.0.1:{find_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDETEX_")}
    env |= {"IDETEX_GRPC_ADDR": addr, "IDETEX_TRITON_URL": f"127.0.0.1:{find_free_port()}"}
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([str(IDETEX), "api"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        status = None
        with grpc.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while status is None and time.monotonic() < deadline:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                except grpc.RpcError:
                    time.sleep(0.3)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (tmp_path / "var" / "idetex.db").exists(), "the API migrates its database at start"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("idetex api did not stop on SIGTERM")
        finally:
            log.close()
