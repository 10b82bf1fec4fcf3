"""One typed settings object, read from the environment once.

Every variable is listed in docs/configuration.md. Development defaults run the
whole stack on one machine (SQLite, the SQLAlchemy broker on SQLite, local blob
files); `IDETEX_ENVIRONMENT=production` refuses to start with the default secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from ipaddress import ip_network
from typing import Literal

MiB = 1024 * 1024
DEV_PEPPER = "dev-pepper-not-secret"
DEV_REPORT_LINK_SECRET = "dev-report-link-secret-not-secret"

Environment = Literal["development", "production"]
TritonProtocol = Literal["grpc", "http"]


# which model answers: the default CPU model, the MLLM, or both (MLLM text, default model's boxes)
MODEL_CHOICES = ("default", "mllm", "both")


class SettingsError(ValueError):
    """An environment variable has an invalid value, or production runs with a default secret."""


@dataclass(frozen=True)
class Settings:
    environment: Environment = "development"
    database_url: str = "sqlite:///var/idetex.db"
    broker_url: str = "sqla+sqlite:///var/broker.db"
    broker_polling_interval_s: float = 0.002
    triton_url: str = "127.0.0.1:8001"
    triton_protocol: TritonProtocol = "grpc"
    triton_timeout_s: float = 10.0
    postprocess_params: str = ""
    blob_url: str = "file://var/blobs"
    pixel_handoff: bool = True
    s3_endpoint_url: str = ""
    s3_region: str = ""
    grpc_addr: str = "127.0.0.1:50051"
    grpc_max_workers: int = 16
    unary_limit_bytes: int = 4 * MiB
    upload_limit_bytes: int = 64 * MiB
    max_pixels: int = 100_000_000
    min_side: int = 16
    api_key_pepper: str = DEV_PEPPER
    sync_timeout_s: float = 10.0
    sync_poll_interval_s: float = 0.02
    task_queue: str = "idetex"
    worker_concurrency: int = 2
    worker_native_threads: int = 1
    work_side: int = 512  # long side the worker decodes large JPEGs to when no scene analysis runs
    vlm_url: str = ""
    vlm_model: str = "idetex_vlm"
    vlm_family: str = "qwen2-vl"
    vlm_timeout_s: float = 120.0
    model_choice: str = "default"
    profile_model_choice: str = ""  # "amazon_main=mllm,ebay=both": per marketplace profile
    task_max_retries: int = 5
    task_retry_backoff_max_s: int = 60
    task_soft_time_limit_s: int = 120
    task_time_limit_s: int = 150
    stale_pending_s: int = 3600
    stale_check_interval_s: int = 60
    webhook_timeout_s: float = 5.0
    webhook_schedule_s: str = "0,5,300,1800,7200,18000,36000,36000"
    webhook_sweep_interval_s: float = 10.0
    audit_window: int = 64
    audit_lease_s: float = 120.0
    webhook_allow_private: bool = False
    webhook_allow_networks: str = ""  # "127.0.0.1/32,10.20.0.0/16": private networks webhooks may reach
    http_addr: str = "127.0.0.1:8080"  # the HTML report pages; "off" turns the HTTP server off
    report_base_url: str = ""  # what signed report links start with; default http://<http_addr>
    report_link_secret: str = DEV_REPORT_LINK_SECRET
    report_link_ttl_s: int = 7 * 24 * 3600
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one JSON object per line, with job_id and merchant_id)
    metrics_addr: str = "127.0.0.1:9464"  # the API's Prometheus /metrics; "off" turns it off
    worker_metrics_addr: str = "127.0.0.1:9465"  # a Celery worker's /metrics (all its pool processes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read IDETEX_* variables (DATABASE_URL / BROKER_URL as fallbacks); validate."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None and f.name in _FALLBACKS:
                raw = env.get(_FALLBACKS[f.name])
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, type(getattr(cls, f.name)))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def webhook_schedule(self) -> tuple[float, ...]:
        """IDETEX_WEBHOOK_SCHEDULE_S as the delay before each attempt (its length: the attempts)."""
        try:
            delays = tuple(float(v) for v in self.webhook_schedule_s.split(",") if v.strip())
        except ValueError:
            delays = ()
        if not delays or any(d < 0 for d in delays):
            raise SettingsError(
                f"{env_name('webhook_schedule_s')} must be comma-separated non-negative seconds, "
                f"got {self.webhook_schedule_s!r}"
            )
        return delays

    def profile_choices(self) -> dict[str, str]:
        """IDETEX_PROFILE_MODEL_CHOICE as {profile: choice}."""
        out: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in self.profile_model_choice.split(","))):
            profile, sep, choice = (x.strip() for x in part.partition("="))
            if not sep or not profile or choice not in MODEL_CHOICES:
                raise SettingsError(
                    f"{env_name('profile_model_choice')}: expected profile=choice pairs "
                    f"({', '.join(MODEL_CHOICES)}), got {part!r}"
                )
            out[profile] = choice
        return out

    def http_listen_addr(self) -> str:
        """IDETEX_HTTP_ADDR, or "" when the report pages' HTTP server is off ("off")."""
        return "" if self.http_addr.strip().lower() in ("", "off") else self.http_addr.strip()

    def report_links_base(self) -> str:
        """Where merchants open report pages: IDETEX_REPORT_BASE_URL, else http://<IDETEX_HTTP_ADDR>;
        "" when neither is set (no links in replies)."""
        if self.report_base_url:
            return self.report_base_url.rstrip("/")
        return f"http://{self.http_listen_addr()}" if self.http_listen_addr() else ""

    def validate(self) -> None:
        """Raise SettingsError for values that cannot work, and for default secrets in production."""
        if self.environment not in ("development", "production"):
            raise SettingsError(f"{env_name('environment')} must be development or production")
        if self.triton_protocol not in ("grpc", "http"):
            raise SettingsError(f"{env_name('triton_protocol')} must be grpc or http")
        if self.unary_limit_bytes > self.upload_limit_bytes:
            raise SettingsError("the unary limit cannot exceed the upload limit")
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise SettingsError("the soft task time limit must be below the hard one")
        if self.model_choice not in MODEL_CHOICES:
            raise SettingsError(f"{env_name('model_choice')} must be one of {', '.join(MODEL_CHOICES)}")
        self.profile_choices()  # raises for a malformed map
        self.webhook_schedule()
        try:
            [ip_network(p.strip(), strict=False) for p in self.webhook_allow_networks.split(",") if p.strip()]
        except ValueError as exc:
            raise SettingsError(f"{env_name('webhook_allow_networks')}: {exc}") from exc
        if not 320 <= self.work_side <= 8192:
            raise SettingsError(f"{env_name('work_side')} must be 320..8192 px (the model sees 320)")
        if self.report_link_ttl_s <= 0:
            raise SettingsError(f"{env_name('report_link_ttl_s')} must be a positive number of seconds")
        if self.vlm_family not in ("qwen2-vl", "internvl"):
            raise SettingsError(f"{env_name('vlm_family')} must be qwen2-vl or internvl")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{env_name('log_format')} must be text or json")
        for name in ("metrics_addr", "worker_metrics_addr"):
            value = getattr(self, name)
            host, sep, port = value.rpartition(":")
            if value != "off" and not (sep and host and port.isdigit() and int(port) < 65536):
                raise SettingsError(f"{env_name(name)} must be host:port or off, got {value!r}")
        if self.environment == "production":
            if self.api_key_pepper == DEV_PEPPER or len(self.api_key_pepper) < 16:
                raise SettingsError(
                    f"production needs {env_name('api_key_pepper')}: a secret of at least 16 characters"
                )
            if self.webhook_allow_private:
                raise SettingsError(f"{env_name('webhook_allow_private')} is for development only")
            weak = self.report_link_secret == DEV_REPORT_LINK_SECRET or len(self.report_link_secret) < 16
            if self.report_links_base() and weak:
                raise SettingsError(
                    f"production needs {env_name('report_link_secret')}: a secret of at least 16 characters"
                )


_FALLBACKS = {"database_url": "DATABASE_URL", "broker_url": "BROKER_URL"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(field_name: str) -> str:
    """The environment variable that sets a field: IDETEX_<FIELD>."""
    return "IDETEX_" + field_name.upper()


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(raw)
            return low in _TRUE
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{env_name(name)}={raw!r} is not a valid {kind.__name__}") from exc
    return raw.strip()
