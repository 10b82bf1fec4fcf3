"""A Triton that accepts connections but never answers (hung, SIGSTOPped) is 'not ready' within
the probe timeout, so health and sync Validate are never held by it (found by bench.chaos)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from service.adapters.inference import TritonGrpcInference, TritonHttpInference
from service.domain.errors import InferenceUnavailable


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A listening socket nobody reads: the kernel completes the handshake, then nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize("adapter", [TritonGrpcInference, TritonHttpInference])
def test_a_silent_triton_is_not_ready_within_the_probe_timeout(silent_server: str, adapter):
    """is_ready() answers False after about probe_timeout_s, not after the inference timeout."""
    inference = adapter(silent_server, timeout_s=30.0, probe_timeout_s=0.5)
    start = time.monotonic()
    assert inference.is_ready() is False
    assert time.monotonic() - start < 3.0
    inference.close()


@pytest.mark.parametrize("adapter", [TritonGrpcInference, TritonHttpInference])
def test_asking_a_silent_triton_for_its_version_is_unavailable_quickly(silent_server: str, adapter):
    """model_version() raises InferenceUnavailable within a few probe timeouts."""
    inference = adapter(silent_server, timeout_s=30.0, probe_timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(InferenceUnavailable):
        inference.model_version()
    assert time.monotonic() - start < 3.0
    inference.close()
