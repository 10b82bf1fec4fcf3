"""Task publisher port: hands a task message to the broker (Celery), by task name.

The unit of work collects messages and publishes them only after its commit, so a
worker never sees a job id the database does not have yet.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

PROCESS_IMAGE = "idetex.process_image"
DELIVER_WEBHOOK = "idetex.deliver_webhook"
AUDIT_STEP = "idetex.audit_step"


@dataclass(frozen=True)
class TaskMessage:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float = 0.0  # seconds before a worker may run it (short delays only)


class TaskPublisher(abc.ABC):
    @abc.abstractmethod
    def publish(self, message: TaskMessage) -> None:
        """Send one message to the broker."""

    @abc.abstractmethod
    def is_ready(self) -> bool:
        """True when the broker accepts connections."""


class CeleryPublisher(TaskPublisher):
    """Publishes through a Celery app by task name (the API never imports the task code)."""

    def __init__(self, app: Any, connect_timeout_s: float = 2.0) -> None:
        self.app = app
        self.connect_timeout_s = connect_timeout_s

    def publish(self, message: TaskMessage) -> None:
        self.app.send_task(
            message.name, args=list(message.args), kwargs=message.kwargs, countdown=message.countdown or None
        )

    def is_ready(self) -> bool:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=self.connect_timeout_s)
                if conn.transport_cls in ("sqla", "sqlalchemy"):
                    # a virtual transport "connects" without touching its database: query it
                    from sqlalchemy import text

                    conn.default_channel.session.execute(text("SELECT 1"))
            return True
        except Exception:  # any broker or transport error means not ready
            return False


class InMemoryPublisher(TaskPublisher):
    """Keeps messages in a list: the local adapter for tests and one-process tools."""

    def __init__(self) -> None:
        self.sent: list[TaskMessage] = []

    def publish(self, message: TaskMessage) -> None:
        self.sent.append(message)

    def is_ready(self) -> bool:
        return True
