"""The composition root: wiring without I/O, and the model version used for deduplication."""

from __future__ import annotations

import numpy as np

from service.adapters.inference import Inference
from service.adapters.publisher import InMemoryPublisher
from service.bootstrap import FALLBACK_MODEL_VERSION, CachedModelVersion, build
from service.domain.errors import InferenceUnavailable
from service.settings import Settings


class VersionOnly(Inference):
    def __init__(self) -> None:
        self.asked = 0
        self.down = False

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return not self.down

    def model_version(self) -> str:
        self.asked += 1
        if self.down:
            raise InferenceUnavailable("down")
        return "3"


def test_the_version_is_asked_once_and_cached():
    """Triton is asked for the version once per TTL, not on every call."""
    inference = VersionOnly()
    version = CachedModelVersion(inference, ttl_s=60)
    assert [version(), version(), version()] == ["3", "3", "3"]
    assert inference.asked == 1


def test_without_triton_the_contract_version_stands_in_and_is_not_cached():
    """While Triton is down the fallback is used; the real version is picked up once it is back."""
    inference = VersionOnly()
    inference.down = True
    version = CachedModelVersion(inference)
    assert version() == FALLBACK_MODEL_VERSION
    inference.down = False
    assert version() == "3"


def test_a_retrained_model_file_changes_the_version(tmp_path):
    """The local model file's fingerprint is part of the version, so new weights mean new reports."""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights-1")
    first = CachedModelVersion(VersionOnly(), model)()
    model.write_bytes(b"weights-2")
    second = CachedModelVersion(VersionOnly(), model)()
    assert first.startswith("3+") and second.startswith("3+") and first != second


def test_build_touches_no_database_broker_or_triton(tmp_path):
    """build() only wires: the database file is not created and no server is contacted."""
    db = tmp_path / "state" / "idetex.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        triton_url="127.0.0.1:9",
        blob_url=(tmp_path / "blobs").as_uri(),
    )
    container = build(settings, publisher=InMemoryPublisher())
    try:
        assert not db.exists()
        assert not (tmp_path / "broker.db").exists()
        assert container.readiness()["triton"] is False
    finally:
        container.close()
