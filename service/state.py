"""The service's state for the metrics gauges: queue depth and audit progress, read from SQL."""

from __future__ import annotations

from service.deps import Deps
from service.observability.metrics import ServiceState


def service_state(deps: Deps) -> ServiceState:
    """Jobs PENDING/RUNNING and the running audits' objects per status, all merchants."""
    with deps.uow() as uow:
        jobs = uow.repo.active_job_counts()
        running, objects = uow.repo.running_audit_counts()
    return ServiceState(jobs=jobs, audits_running=running, audit_objects=objects)
