"""Adapters wrapped with metrics, chosen by the composition root (service.bootstrap)."""

from __future__ import annotations

import time

import numpy as np

from service.adapters.inference import Inference, Outputs
from service.domain.errors import InferenceUnavailable
from service.observability import metrics


class TimedInference(Inference):
    """The Triton adapter with each `infer` call timed in idetex_inference_seconds{outcome}."""

    def __init__(self, inner: Inference) -> None:
        self.inner = inner

    def infer(self, images: np.ndarray) -> Outputs:
        start = time.perf_counter()
        outcome = "error"
        try:
            outputs = self.inner.infer(images)
            outcome = "ok"
            return outputs
        except InferenceUnavailable:
            outcome = "unavailable"
            raise
        finally:
            metrics.INFERENCE_SECONDS.labels(outcome).observe(time.perf_counter() - start)

    def is_ready(self) -> bool:
        return self.inner.is_ready()

    def model_version(self) -> str:
        return self.inner.model_version()

    def close(self) -> None:
        self.inner.close()
