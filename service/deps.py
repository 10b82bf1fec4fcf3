"""The ports and knobs the service layer needs; bootstrap.build wires the real adapters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.adapters.blobs import BlobStore
from service.adapters.inference import Inference
from service.adapters.pixels import NoHandoff, PixelHandoff
from service.adapters.s3catalogue import S3Catalogue
from service.adapters.unit_of_work import UnitOfWork
from service.adapters.vision import LocalSceneAnalyzer
from service.adapters.vlm import NoVisionLanguageModel, VisionLanguageModel
from service.adapters.webhook import WebhookSender
from service.domain.aspects import ASPECT_SIDE
from service.domain.imaging import ImageLimits
from service.domain.scene import SceneAnalyzer


def _no_s3() -> Any:
    raise RuntimeError("no S3 client configured")


@dataclass
class Deps:
    """The ports and knobs the handlers need; bootstrap.build wires the real ones."""

    uow: Callable[[], UnitOfWork]
    blobs: BlobStore
    inference: Inference
    model_version: Callable[[], str]
    limits: ImageLimits
    api_key_pepper: str
    webhook_sender: WebhookSender
    webhook_allow_private: bool = False
    webhook_allow_networks: tuple[Any, ...] = ()  # ip networks allowed although private
    # delay before each delivery attempt (Standard Webhooks: 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
    webhook_schedule_s: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    broker_ready: Callable[[], bool] = lambda: True
    postprocess_params: Any = None
    poll_interval_s: float = 0.02
    # long side a large JPEG decodes to for a job with no scene analysis (service.pipeline.decode_side):
    # the aspect scores' grey copy, the largest thing such a job measures
    work_side: int = ASPECT_SIDE
    max_attempts: int = 8
    pixels: PixelHandoff = field(default_factory=NoHandoff)
    timeout_errors: tuple[type[BaseException], ...] = ()
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    vlm: VisionLanguageModel = field(default_factory=NoVisionLanguageModel)
    # product mask / text overlays / faces for the marketplace checks (bootstrap: the ONNX models)
    scene: SceneAnalyzer = field(default_factory=LocalSceneAnalyzer)
    s3: S3Catalogue = field(default_factory=lambda: S3Catalogue(_no_s3))
    # (merchant, job, issued at) -> signed (report page, annotated image) links; ("", "") without pages
    report_links: Callable[[str, str, float], tuple[str, str]] = lambda merchant, job, issued: ("", "")
    model_choice: str = "default"  # default | mllm | both: the global choice
    profile_model_choice: dict[str, str] = field(default_factory=dict)  # per marketplace profile

    def choose_model(self, merchant_choice: str | None, profile: str) -> str:
        """The merchant's own choice, else its profile's, else the global one."""
        return merchant_choice or self.profile_model_choice.get(profile) or self.model_choice
