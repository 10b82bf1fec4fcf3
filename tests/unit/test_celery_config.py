"""The Celery configuration carries the reliability options the workers depend on."""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES

from service.adapters.publisher import DELIVER_WEBHOOK, PROCESS_IMAGE
from service.settings import Settings
from workers.celery_app import celery_config, create_app


def test_reliability_options_are_on():
    """Late acks, requeue on worker loss, prefetch 1, time limits and JSON only."""
    config = celery_config(Settings())
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    assert config["task_serializer"] == "json" and config["accept_content"] == ["json"]


def test_retry_limits_come_from_settings():
    """Image tasks retry as the settings say; webhook tasks never retry through Celery (the
    service schedules each next attempt on the Standard Webhooks schedule)."""
    s = Settings(task_max_retries=3, task_retry_backoff_max_s=9)
    annotations = celery_config(s)["task_annotations"]
    assert annotations[PROCESS_IMAGE] == {"max_retries": 3, "retry_backoff_max": 9}
    assert annotations[DELIVER_WEBHOOK] == {"max_retries": 0}


def test_the_embedded_broker_polls_quickly_and_create_engine_gets_only_engine_options():
    """The SQL broker's poll interval reaches the transport; only engine options reach create_engine."""
    config = celery_config(Settings(broker_polling_interval_s=0.005))
    assert config["broker_transport_options"] == {"polling_interval": 0.005, "connect_args": {"timeout": 30}}
    assert TRANSPORT_ALIASES["sqla"] == "workers.sqla_broker:Transport"


def test_redis_gets_a_visibility_timeout_beyond_the_hard_time_limit():
    """A late-acked Redis message is not redelivered while its task may still be running."""
    config = celery_config(Settings(broker_url="redis://127.0.0.1:6379/0", task_time_limit_s=100))
    assert config["broker_transport_options"]["visibility_timeout"] > 100


def test_the_app_reads_its_settings_lazily():
    """create_app does not read the configuration until it is used; tasks register by name."""
    app = create_app(Settings(task_queue="q-test"))
    assert app.conf.task_default_queue == "q-test"
    app.loader.import_default_modules()
    assert {PROCESS_IMAGE, DELIVER_WEBHOOK} <= set(app.tasks)
