"""A merchant's policy overrides, stored in SQL, change the verdict a real Celery worker gives
the same photo through the real Triton (tests/integration/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.bootstrap import Container, build
from service.domain.policy import parse_assignments
from service.handlers import SubmitImage
from tests import imagefactory
from tests.support.photos import photo_paths

pytestmark = pytest.mark.integration

WAIT_S = 120.0


@pytest.fixture(scope="module")
def api(celery_worker: Any) -> Iterator[Container]:
    container = build(celery_worker.settings)
    yield container
    container.close()


def _photo() -> bytes:
    paths = photo_paths(1)
    if paths:
        return Path(paths[0]).read_bytes()
    return imagefactory.jpeg_bytes(imagefactory.product_on_white(900, 700))


def test_a_merchants_override_changes_the_verdict_through_the_real_pipeline(
    api: Container, celery_worker: Any
):
    """Same photo, profile default: a strict merchant (min_long_side=100000) gets reject for
    IMG_LOW_RESOLUTION, a relaxed one (no grade or severity rejects or warns) gets accept, and
    each report records the overrides it was built under."""
    photo = _photo()
    strict, _ = api.create_merchant("Strict shop")
    relaxed, _ = api.create_merchant("Relaxed shop")
    plain, _ = api.create_merchant("Plain shop")
    api.set_policy(strict, "default", parse_assignments(["min_long_side=100000"]))
    quiet = ["reject_grades=", "warn_grades=", "reject_key_severities=", "warn_key_severities="]
    api.set_policy(relaxed, "default", parse_assignments(quiet))

    reports = {}
    for merchant in (strict, relaxed, plain):
        job = api.submit(SubmitImage(merchant_id=merchant, product_id="sku-policy", image=photo))
        view = api.wait_for_report(merchant, job.job_id, WAIT_S)
        assert view.status == "DONE" and view.report is not None, (
            f"{view.status} {view.error_code} {view.error_message}\n{celery_worker.log()}"
        )
        reports[merchant] = view.report

    assert reports[strict].verdict == "reject"
    assert "required rule failed: IMG_LOW_RESOLUTION" in reports[strict].verdict_reasons
    assert reports[strict].policy_overrides == {"min_long_side": 100000}
    assert reports[relaxed].verdict == "accept", reports[relaxed].verdict_reasons
    assert reports[relaxed].policy_overrides == {
        k: [] for k in ("reject_grades", "warn_grades", "reject_key_severities", "warn_key_severities")
    }
    assert reports[plain].policy_overrides == {}
    assert reports[plain].verdict in {"accept", "warn", "reject"}
    assert {reports[strict].verdict, reports[relaxed].verdict} - {reports[plain].verdict}
    assert reports[strict].grade == reports[plain].grade  # the same model answer, another policy
