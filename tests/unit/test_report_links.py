"""Signed report links: one merchant's one job until the expiry, nothing else."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from service.domain.report_links import BadLink, annotated_url, report_url, verify

SECRET = "s" * 32


def params_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_link_verifies_for_its_job_until_it_expires():
    """The grant names the merchant and job; at the expiry second the link stops working."""
    url = report_url("http://h:8080/", SECRET, "m-1", "job-1", expires=1000)
    assert urlsplit(url).path == "/reports/job-1"
    grant = verify(SECRET, "job-1", params_of(url), now=999.0)
    assert (grant.merchant_id, grant.job_id, grant.expires) == ("m-1", "job-1", 1000)
    with pytest.raises(BadLink) as err:
        verify(SECRET, "job-1", params_of(url), now=1000.0)
    assert err.value.reason == "EXPIRED"


def test_page_and_image_links_share_one_signature():
    """The annotated image's link carries the same grant, under /annotated.jpg."""
    page = report_url("http://h", SECRET, "m", "j", 50)
    image = annotated_url("http://h", SECRET, "m", "j", 50)
    assert urlsplit(image).path == "/reports/j/annotated.jpg"
    assert params_of(page) == params_of(image)


@pytest.mark.parametrize(
    ("job_id", "change", "reason"),
    [
        ("other-job", {}, "BAD_SIGNATURE"),  # a link moved to another job
        ("job-1", {"m": "m-2"}, "BAD_SIGNATURE"),  # another merchant claimed
        ("job-1", {"exp": "99999"}, "BAD_SIGNATURE"),  # expiry pushed out
        ("job-1", {"sig": "A" * 43}, "BAD_SIGNATURE"),
        ("job-1", {"exp": "soon"}, "MALFORMED"),
        ("job-1", {"sig": ""}, "MISSING"),
    ],
)
def test_tampered_links_are_refused(job_id, change, reason):
    """Changing any part of a link, or using it for another job, breaks it."""
    params = params_of(report_url("http://h", SECRET, "m-1", "job-1", 1000)) | change
    with pytest.raises(BadLink) as err:
        verify(SECRET, job_id, params, now=0.0)
    assert err.value.reason == reason


def test_another_secret_does_not_verify():
    params = params_of(report_url("http://h", SECRET, "m", "j", 1000))
    with pytest.raises(BadLink):
        verify("t" * 32, "j", params, now=0.0)
