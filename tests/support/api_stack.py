"""An in-process API stack for tests: the real Container and gRPC server on local adapters.

SQLite in a temp folder, local blob files, and two fakes that subclass our ports:
`ContractInference` (contract-shaped model outputs, switchable readiness) and
`ThreadWorkerPublisher` (runs each queued job on a thread, like a worker would;
`hold()` keeps jobs queued until `release()`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from service.adapters.db import migrate
from service.adapters.inference import Inference
from service.adapters.publisher import PROCESS_IMAGE, TaskMessage, TaskPublisher
from service.api.app import ApiServer, build_server
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.bootstrap import Container, build
from service.domain.errors import InferenceUnavailable
from service.settings import Settings
from tests.support.contract_outputs import underexposed_top_left


class ContractInference(Inference):
    """Outputs shaped like the model contract: moderate underexposure in the top-left quarter, grade fair."""

    def __init__(self) -> None:
        self.ready = True
        self.calls = 0

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if not self.ready:
            raise InferenceUnavailable("fake Triton is down")
        self.calls += 1
        return underexposed_top_left(images.shape[0])

    def is_ready(self) -> bool:
        return self.ready

    def model_version(self) -> str:
        return "idetex_lite:test"


class ThreadWorkerPublisher(TaskPublisher):
    """Runs each PROCESS_IMAGE message with `container.process_job` on its own thread."""

    def __init__(self) -> None:
        self.container: Container | None = None
        self.sent: list[TaskMessage] = []
        self._gate = threading.Event()
        self._gate.set()
        self._threads: list[threading.Thread] = []

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def publish(self, message: TaskMessage) -> None:
        self.sent.append(message)
        if message.name == PROCESS_IMAGE:
            thread = threading.Thread(target=self._run, args=(message.args[0],), daemon=True)
            self._threads.append(thread)
            thread.start()

    def is_ready(self) -> bool:
        return True

    def _run(self, job_id: str) -> None:
        self._gate.wait()
        assert self.container is not None
        with contextlib.suppress(InferenceUnavailable):  # a real worker would retry later
            self.container.process_job(job_id, final_attempt=False)

    def join(self, timeout_s: float = 10.0) -> None:
        self.release()
        for thread in self._threads:
            thread.join(timeout_s)


@dataclass
class ApiStack:
    settings: Settings
    container: Container
    inference: ContractInference
    publisher: ThreadWorkerPublisher
    api: ApiServer
    channel: grpc.Channel
    stub: pb_grpc.ValidationServiceStub
    keys: dict[str, str] = field(default_factory=dict)  # merchant name -> api key
    merchants: dict[str, str] = field(default_factory=dict)  # merchant name -> id

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.api.port}"

    def auth(self, merchant: str = "acme") -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.keys[merchant]),)


def stack_settings(tmp: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp}/idetex.db",
        broker_url="memory://",
        blob_url=f"file://{tmp}/blobs",
        grpc_addr="127.0.0.1:0",
        grpc_max_workers=8,
        sync_timeout_s=10.0,
        sync_poll_interval_s=0.01,
    )
    return replace(base, **overrides)


@contextlib.contextmanager
def running_api(
    tmp: Path,
    *,
    container_factory: Any = None,
    inference: Any = None,
    **overrides: Any,
) -> Iterator[ApiStack]:
    """Migrate a fresh SQLite, build the real Container on the fakes, serve it on a free port."""
    settings = stack_settings(tmp, **overrides)
    (tmp / "blobs").mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url)
    inference = inference or ContractInference()
    publisher = ThreadWorkerPublisher()
    container = build(settings, inference=inference, publisher=publisher)
    if container_factory is not None:
        container = container_factory(container)
    publisher.container = container
    api = build_server(container, settings, address="127.0.0.1:0", health_interval_s=0.05)
    api.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{api.port}")
    stack = ApiStack(
        settings, container, inference, publisher, api, channel, pb_grpc.ValidationServiceStub(channel)
    )
    for name in ("acme", "globex"):
        merchant_id, key = container.create_merchant(name)
        stack.merchants[name], stack.keys[name] = merchant_id, key
    try:
        yield stack
    finally:
        publisher.join()
        channel.close()
        api.stop(grace_s=0.5)
        container.close()
