"""Session fixtures shared by all suites: the real Triton server from the nvidia-pytriton wheel.

`triton_server` serves a temporary copy of `model_repository/` on free ports. It uses the
exported `idetex_lite/1/model.onnx` when present, else a tiny model with the same contract
(tests.support.dev_onnx) so that serving can be tested before training has finished.
Skipped only when the wheel's tritonserver binary is absent. Startup timeout:
IDETEX_TRITON_START_TIMEOUT seconds (default 300; the CPU may be shared with training).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.adapters.triton_server import TritonNotInstalled, TritonServer, find_distribution
from service.iqa.contract import MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]


def serving_repository(target: Path) -> Path:
    """Copy model_repository/ to `target`, adding a contract-conformant dev model if none is exported."""
    shutil.copytree(REPO_ROOT / "model_repository", target)
    onnx_path = target / MODEL_NAME / "1" / "model.onnx"
    if not onnx_path.is_file():
        try:
            from tests.support.dev_onnx import build_dev_onnx

            build_dev_onnx(onnx_path)
        except ImportError as exc:
            pytest.fail(f"no exported {onnx_path.name} and no train extra (onnx, torch) for a dev one: {exc}")
    return target


@pytest.fixture(scope="session")
def triton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """The real tritonserver serving idetex_lite (CPU config); yields the running server."""
    try:
        find_distribution()
    except TritonNotInstalled as exc:
        pytest.skip(f"real Triton unavailable: {exc}")
    work = tmp_path_factory.mktemp("triton")
    server = TritonServer(serving_repository(work / "repository"), log_path=work / "tritonserver.log")
    server.start()
    try:
        server.wait_ready(timeout=float(os.environ.get("IDETEX_TRITON_START_TIMEOUT", "300")))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def triton_grpc_url(triton_server: TritonServer) -> str:
    """host:port of the session Triton's gRPC endpoint."""
    return triton_server.grpc_url


@pytest.fixture(scope="session")
def triton_http_url(triton_server: TritonServer) -> str:
    """host:port of the session Triton's HTTP endpoint."""
    return triton_server.http_url
