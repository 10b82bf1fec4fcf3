"""Per-merchant policy overrides: typed and checked keys, merged into the profile, stored in SQL,
applied when the worker builds the report, recorded in it."""

from __future__ import annotations

import pytest

from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.errors import InvalidRequest, NotFound
from service.domain.imaging import decode_image
from service.domain.policy import KEYS, apply_overrides, format_value, parse_assignments, parse_value
from service.domain.prediction import Prediction
from service.domain.profiles import get_profile
from service.domain.report import Report, build_report
from tests.imagefactory import gradient, jpeg_bytes, product_on_white
from tests.support.api_stack import running_api


def test_values_are_typed_by_the_key_they_set():
    """Numbers, booleans, `none` for an optional rule, comma-separated grade and severity sets."""
    assert parse_assignments(
        [
            "min_product_fill=0.8",
            "min_long_side=1200",
            "min_jpeg_quality=none",
            "white_background=no",
            "reject_grades=poor, bad",
            "warn_key_severities=",
        ]
    ) == {
        "min_product_fill": 0.8,
        "min_long_side": 1200,
        "min_jpeg_quality": None,
        "white_background": False,
        "reject_grades": ["bad", "poor"],
        "warn_key_severities": [],
    }


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ("min_fill=0.8", "policy.min_fill", "UNKNOWN_KEY"),
        ("min_product_fill=1.5", "policy.min_product_fill", "OUT_OF_RANGE"),
        ("min_product_fill=lots", "policy.min_product_fill", "NOT_A_NUMBER"),
        ("min_long_side=12.5", "policy.min_long_side", "NOT_A_NUMBER"),
        ("min_jpeg_quality=101", "policy.min_jpeg_quality", "OUT_OF_RANGE"),
        ("max_file_bytes=-1", "policy.max_file_bytes", "OUT_OF_RANGE"),
        ("white_background=maybe", "policy.white_background", "NOT_A_BOOLEAN"),
        ("white_background=none", "policy.white_background", "NOT_A_BOOLEAN"),
        ("reject_grades=awful", "policy.reject_grades", "BAD_VALUE"),
        ("min_product_fill", "policy", "BAD_ASSIGNMENT"),
    ],
)
def test_bad_keys_and_values_are_refused_with_a_clear_reason(item, field, reason):
    with pytest.raises(InvalidRequest) as caught:
        parse_assignments([item])
    assert (caught.value.field, caught.value.reason) == (field, reason)
    assert caught.value.message


def test_an_unknown_key_error_lists_the_known_ones():
    with pytest.raises(InvalidRequest) as caught:
        parse_value("min_fill", "0.8")
    assert all(key in caught.value.message for key in ("min_product_fill", "reject_grades"))


def test_overrides_merge_into_the_profile_and_its_verdict_policy():
    """Only the named keys change; no overrides give the very same profile."""
    amazon = get_profile("amazon_main")
    merged = apply_overrides(
        amazon, {"min_product_fill": 0.8, "reject_grades": ["bad"], "min_long_side": None}
    )
    assert (merged.min_product_fill, merged.min_long_side, merged.white_background) == (0.8, None, True)
    assert merged.policy.reject_grades == frozenset({"bad"})
    assert merged.policy.reject_any_severe == amazon.policy.reject_any_severe
    assert apply_overrides(amazon, {}) is amazon
    assert format_value(0.8) == "0.8" and format_value(["bad", "poor"]) == "bad,poor"
    assert format_value(None) == "none" and format_value(True) == "true"
    assert set(KEYS) >= {"min_long_side", "max_file_bytes", "min_white_border_fraction", "warn_grades"}


def test_an_override_changes_the_verdict_and_the_report_records_it():
    """A 1200 px product on white passes amazon_main; min_long_side=2000 rejects it, and says so."""
    image = decode_image(jpeg_bytes(product_on_white(1200, 1000, 0.9), quality=92))
    clean = Prediction(1200, 1000, (), 9, 4.6)
    assert build_report(clean, image, "amazon_main", "m").verdict == "accept"
    strict = build_report(clean, image, "amazon_main", "m", overrides={"min_long_side": 2000})
    assert strict.verdict == "reject"
    assert "required rule failed: IMG_LOW_RESOLUTION" in strict.verdict_reasons
    assert strict.policy_overrides == {"min_long_side": 2000}
    assert Report.from_json(strict.to_json()) == strict


def test_a_relaxed_grade_policy_accepts_what_the_default_rejects():
    image = decode_image(jpeg_bytes(gradient(640, 480)))
    poor = Prediction(640, 480, (), 2, 2.0)
    assert build_report(poor, image, "default", "m").verdict == "reject"
    relaxed = {"reject_grades": [], "warn_grades": ["poor"]}
    assert build_report(poor, image, "default", "m", overrides=relaxed).verdict == "warn"


def test_policies_are_stored_per_merchant_and_profile_and_used_by_the_worker(tmp_path):
    """set-policy merges, unsets and clears; the next job's report is built and answered under it."""
    with running_api(tmp_path) as stack:
        c, acme = stack.container, stack.merchants["acme"]
        assert c.set_policy(acme, "amazon_main", {"min_product_fill": 0.8}) == {"min_product_fill": 0.8}
        both = c.set_policy(acme, "AMAZON_MAIN", parse_assignments(["min_long_side=2000"]))
        assert both == {"min_product_fill": 0.8, "min_long_side": 2000}
        assert c.set_policy(acme, "amazon_main", unset=["min_product_fill"]) == {"min_long_side": 2000}
        assert c.policies(acme) == {"amazon_main": {"min_long_side": 2000}}
        assert c.policies(stack.merchants["globex"]) == {}
        with pytest.raises(NotFound):
            c.set_policy("no-such-merchant", "amazon_main", {"min_long_side": 1})
        with pytest.raises(InvalidRequest):
            c.set_policy(acme, "amazon_main", {"min_long_side": -3})

        image = jpeg_bytes(product_on_white(1200, 1000, 0.9), quality=92)
        request = pb.ValidateRequest(image=image, profile="amazon_main", mode=pb.MODE_SYNC)
        strict = stack.stub.Validate(request, timeout=10, metadata=stack.auth("acme"))
        assert dict(strict.report.policy_overrides) == {"min_long_side": "2000"}
        failed = {ch.code for ch in strict.report.compliance if ch.passed == pb.CHECK_RESULT_FAIL}
        assert "IMG_LOW_RESOLUTION" in failed and strict.report.verdict == pb.VERDICT_REJECT

        other = stack.stub.Validate(request, timeout=10, metadata=stack.auth("globex"))
        assert dict(other.report.policy_overrides) == {}
        assert "IMG_LOW_RESOLUTION" not in {
            ch.code for ch in other.report.compliance if ch.passed == pb.CHECK_RESULT_FAIL
        }

        assert c.set_policy(acme, "amazon_main", clear=True) == {}
        assert c.policies(acme) == {}
        again = stack.stub.Validate(request, timeout=10, metadata=stack.auth("acme"))
        assert again.job_id != strict.job_id, "a report built under an old policy is not reused"
        assert dict(again.report.policy_overrides) == {}
