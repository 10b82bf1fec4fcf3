"""The inference port and its adapters: Triton over gRPC, Triton over HTTP, onnxruntime in-process.

Contract (service/iqa/contract.py): `infer` takes UINT8 [N, 3, 320, 320] RGB 0..255 (the model
casts and divides by 255 itself) and returns every contract output as FP32 [N, ...]; batches
larger than MAX_BATCH are split.
Vendor errors are translated here: InferenceUnavailable when the server cannot be reached
or the model is not loaded (worth retrying), InferenceFailed when the server answered
with an error or a broken result. A bad input raises InvalidModelInput before anything is sent.

Triton clients are created lazily, once per process and thread, so a Celery worker that
forks after building its composition root gets its own connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from service.iqa.contract import (
    INPUT_DATATYPE,
    INPUT_NAME,
    MAX_BATCH,
    MODEL_NAME,
    MODEL_VERSION,
    OUTPUT_NAMES,
)
from service.iqa.errors import InferenceFailed, InferenceUnavailable, ModelSignatureMismatch
from service.iqa.validate import validate_image_batch, validate_outputs, validate_signature

Outputs = dict[str, np.ndarray]

# Phrases in Triton's answers meaning "not there (yet)" or "too slow now", not "your request is wrong".
_UNAVAILABLE_HINTS = (
    "unavailable",
    "not ready",
    "unknown model",
    "is not found",
    "failed to connect",
    "deadline",
)


class Inference(ABC):
    """Runs the detailed-IQA model on a batch of pre-processed images."""

    @abstractmethod
    def infer(self, images: np.ndarray) -> Outputs:
        """UINT8 [N, 3, 320, 320] RGB 0..255 -> {output name: FP32 [N, ...]} for every contract output."""

    @abstractmethod
    def is_ready(self) -> bool:
        """True when `infer` can be expected to succeed now; never raises."""

    @abstractmethod
    def model_version(self) -> str:
        """The served model's version (e.g. "1"); raises InferenceUnavailable if it cannot be asked."""

    def close(self) -> None:  # noqa: B027 (optional hook: most adapters hold nothing to close)
        """Release connections; the adapter stays usable and reconnects on next use."""


def split_batches(images: np.ndarray, max_batch: int = MAX_BATCH) -> list[np.ndarray]:
    """Consecutive slices of at most `max_batch` images."""
    return [images[i : i + max_batch] for i in range(0, images.shape[0], max_batch)]


def merge_outputs(parts: list[Outputs]) -> Outputs:
    """Concatenate per-slice outputs along the batch axis."""
    return {name: np.concatenate([part[name] for part in parts]) for name in OUTPUT_NAMES}


PROBE_TIMEOUT_S = 2.0  # readiness and metadata calls: a hung Triton must not hold health or a sync call


class _TritonInference(Inference):
    """Shared logic of the gRPC and HTTP adapters; subclasses name the tritonclient module."""

    protocol: str = ""

    def __init__(
        self,
        url: str,
        *,
        model_name: str = MODEL_NAME,
        model_version: str = MODEL_VERSION,
        timeout_s: float = 30.0,
        max_batch: int = MAX_BATCH,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.version = model_version
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.probe_timeout_s = probe_timeout_s
        self._local = threading.local()

    # -------------------------------------------------------------- port

    def infer(self, images: np.ndarray) -> Outputs:
        validate_image_batch(images, max_batch=None)
        parts = [
            self._infer_once(np.ascontiguousarray(chunk)) for chunk in split_batches(images, self.max_batch)
        ]
        return merge_outputs(parts)

    def is_ready(self) -> bool:
        """Within probe_timeout_s: a Triton that accepts connections but does not answer (hung,
        stopped, overloaded) is not ready, and the caller (health, a sync Validate) is not held."""
        try:
            return bool(self._ready(self._client()))
        except Exception:  # any failure to ask means "not ready"
            return False

    def model_version(self) -> str:
        metadata = self._call(self._metadata)
        versions = _field(metadata, "versions") or [self.version]
        return str(versions[-1])

    def close(self) -> None:
        """Close this thread's client, if any; the next call makes a new one."""
        client = getattr(self._local, "client", None)
        self._local.__dict__.clear()
        if client is not None:  # closing a broken connection must not mask the caller's own error
            with contextlib.suppress(Exception):
                client.close()

    # -------------------------------------------------------------- helpers

    def _infer_once(self, batch: np.ndarray) -> Outputs:
        module = self._module()
        tensor = module.InferInput(INPUT_NAME, list(batch.shape), INPUT_DATATYPE)
        tensor.set_data_from_numpy(batch)
        requested = [module.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        result = self._call(lambda c: self._send(c, tensor, requested))
        outputs = {name: result.as_numpy(name) for name in OUTPUT_NAMES}
        if any(value is None for value in outputs.values()):
            raise InferenceFailed(f"Triton answered without {[n for n, v in outputs.items() if v is None]}")
        try:
            validate_outputs(outputs, batch.shape[0])
        except ModelSignatureMismatch as exc:
            raise InferenceFailed(f"Triton answered outside the model contract: {exc}") from exc
        return outputs

    def _send(self, client: Any, tensor: Any, requested: list[Any]) -> Any:
        raise NotImplementedError

    def _ready(self, client: Any) -> bool:
        raise NotImplementedError

    def _metadata(self, client: Any) -> Any:
        raise NotImplementedError

    def _call(self, action: Any) -> Any:
        """Run `action(client)`, translating tritonclient and socket errors into our errors."""
        from tritonclient.utils import InferenceServerException

        try:
            return action(self._client())
        except InferenceServerException as exc:
            text = f"{exc.status() or ''} {exc.message()}".strip()
            if any(hint in text.lower() for hint in _UNAVAILABLE_HINTS):
                raise InferenceUnavailable(f"Triton at {self.url} ({self.protocol}): {text}") from exc
            raise InferenceFailed(
                f"Triton at {self.url} ({self.protocol}) refused the request: {text}"
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise InferenceUnavailable(f"Triton at {self.url} ({self.protocol}) unreachable: {exc}") from exc

    def _client(self) -> Any:
        """This thread's client, created on first use in this process (safe across fork)."""
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.client = self._make_client()
            self._local.pid = pid
        return self._local.client

    def _module(self) -> Any:
        raise NotImplementedError

    def _make_client(self) -> Any:
        raise NotImplementedError


class TritonGrpcInference(_TritonInference):
    """The production adapter: Triton's gRPC endpoint (default port 8001)."""

    protocol = "grpc"

    def _module(self) -> Any:
        import tritonclient.grpc as module

        return module

    def _make_client(self) -> Any:
        return self._module().InferenceServerClient(self.url)

    def _send(self, client: Any, tensor: Any, requested: list[Any]) -> Any:
        return client.infer(
            self.model_name,
            [tensor],
            model_version=self.version,
            outputs=requested,
            client_timeout=self.timeout_s,
        )

    def _ready(self, client: Any) -> bool:
        return bool(client.is_model_ready(self.model_name, self.version, client_timeout=self.probe_timeout_s))

    def _metadata(self, client: Any) -> Any:
        return client.get_model_metadata(self.model_name, self.version, client_timeout=self.probe_timeout_s)


class TritonHttpInference(_TritonInference):
    """The second adapter: Triton's HTTP/REST endpoint (default port 8000), binary tensor data."""

    protocol = "http"

    def _module(self) -> Any:
        import tritonclient.http as module

        return module

    def _make_client(self) -> Any:
        return self._module().InferenceServerClient(
            self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
        )

    def _send(self, client: Any, tensor: Any, requested: list[Any]) -> Any:
        return client.infer(self.model_name, [tensor], model_version=self.version, outputs=requested)

    def _probe_client(self) -> Any:
        """A second client per thread whose timeouts are probe_timeout_s (HTTP has no per-call one)."""
        pid = os.getpid()
        if getattr(self._local, "probe_pid", None) != pid:
            self._local.probe = self._module().InferenceServerClient(
                self.url, connection_timeout=self.probe_timeout_s, network_timeout=self.probe_timeout_s
            )
            self._local.probe_pid = pid
        return self._local.probe

    def _ready(self, client: Any) -> bool:
        return bool(self._probe_client().is_model_ready(self.model_name, self.version))

    def _metadata(self, client: Any) -> Any:
        return self._probe_client().get_model_metadata(self.model_name, self.version)


class OnnxRuntimeInference(Inference):
    """The local adapter: the same model.onnx run in-process (CLI, evaluation, tests without Triton).

    It feeds the validated uint8 batch to onnxruntime as is, like Triton's Python backend does.
    """

    def __init__(self, model_path: Path, *, threads: int = 2, version: str = MODEL_VERSION) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        self.version = version
        self._session: Any = None

    def infer(self, images: np.ndarray) -> Outputs:
        validate_image_batch(images, max_batch=None)
        session = self._load()
        parts = []
        for chunk in split_batches(images):
            values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: chunk})
            parts.append(dict(zip(OUTPUT_NAMES, values, strict=True)))
        return merge_outputs(parts)

    def is_ready(self) -> bool:
        return self.model_path.is_file()

    def model_version(self) -> str:
        return self.version

    def _load(self) -> Any:
        if self._session is None:
            if not self.model_path.is_file():
                raise InferenceUnavailable(f"no model at {self.model_path}")
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
            try:
                validate_signature(
                    [(i.name, i.shape) for i in session.get_inputs()],
                    [(o.name, o.shape) for o in session.get_outputs()],
                    input_type=session.get_inputs()[0].type,
                )
            except ModelSignatureMismatch as exc:
                raise InferenceFailed(f"{self.model_path} does not match the model contract: {exc}") from exc
            self._session = session
        return self._session


def _field(message: Any, name: str) -> Any:
    """Read a field from an HTTP (dict) or gRPC (protobuf) metadata answer."""
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)
