"""The Celery app, configured from Settings on first use (nothing is read or opened at import).

    celery -A workers.celery_app worker --pool=prefork -c 2 --loglevel=INFO

Reliability: late acks, requeue when a worker dies mid-task, prefetch of one, soft and
hard time limits, JSON only. Brokers: the embedded SQLAlchemy transport
(`sqla+sqlite:///var/broker.db`, no server), Redis or RabbitMQ.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from service.adapters.publisher import DELIVER_WEBHOOK, PROCESS_IMAGE
from service.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # results live in the database, not in a result backend
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_default_queue": settings.task_queue,
        "enable_utc": True,
        "task_annotations": {
            PROCESS_IMAGE: {
                "max_retries": settings.task_max_retries,
                "retry_backoff_max": settings.task_retry_backoff_max_s,
            },
            # no Celery retries: service.webhooks schedules each next attempt itself
            DELIVER_WEBHOOK: {"max_retries": 0},
        },
    }
    if settings.broker_url.startswith(("sqla+", "sqlalchemy+")):
        from workers import sqla_broker

        sqla_broker.register()  # cheap idle polls on SQLite; honours polling_interval
        options: dict[str, Any] = {"polling_interval": settings.broker_polling_interval_s}
        if "+sqlite:" in settings.broker_url:
            options["connect_args"] = {"timeout": 30}  # wait for SQLite's write lock
        config["broker_transport_options"] = options
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        # a message not acked within this many seconds is delivered again (late acks)
        config["broker_transport_options"] = {"visibility_timeout": settings.task_time_limit_s * 4}
    return config


def create_app(settings: Settings | None = None, *, set_as_current: bool = False) -> Celery:
    """A Celery app whose configuration is computed from `settings` (or the environment) lazily."""
    app = Celery("idetex", include=["workers.tasks"], set_as_current=set_as_current)
    app.add_defaults(lambda: celery_config(settings or Settings.from_env()))
    return app


app = create_app(set_as_current=True)
