"""Verdicts per profile: reject on hard failures, warn on soft ones, accept otherwise."""

from __future__ import annotations

import pytest

from service.domain.findings import ComplianceCheck, ReportDistortion
from service.domain.profiles import PROFILES
from service.domain.verdict import decide


def dist(severity: str = "moderate", key: bool = True, type_: str = "Motion blur") -> ReportDistortion:
    return ReportDistortion(type_, severity, (0, 0, 10, 10), 0.9, key, "in the upper left corner", "impact")


def check(passed: bool | None, required: bool = True, code: str = "IMG_LOW_RESOLUTION") -> ComplianceCheck:
    return ComplianceCheck(code, "rule", passed, "message", "fix", required)


ALL = sorted(PROFILES)


@pytest.mark.parametrize("profile", ALL)
def test_clean_good_image_is_accepted(profile):
    """Grade good, no key distortions, all rules passed -> accept with no reasons."""
    policy = PROFILES[profile].policy
    assert decide(policy, "good", [dist("slight", key=False)], [check(True)]) == ("accept", ())


@pytest.mark.parametrize("profile", ALL)
@pytest.mark.parametrize("grade", ["bad", "poor"])
def test_bad_and_poor_grades_are_rejected(profile, grade):
    """A bad or poor grade rejects under every profile."""
    verdict, reasons = decide(PROFILES[profile].policy, grade, [], [])
    assert verdict == "reject" and reasons == (f"quality grade is {grade}",)


@pytest.mark.parametrize("profile", ALL)
def test_fair_grade_warns(profile):
    """A fair grade warns."""
    assert decide(PROFILES[profile].policy, "fair", [], [])[0] == "warn"


@pytest.mark.parametrize("profile", ALL)
def test_severe_key_distortion_rejects_and_moderate_warns(profile):
    """A severe key distortion rejects; a moderate key distortion warns, even with grade excellent."""
    policy = PROFILES[profile].policy
    verdict, reasons = decide(policy, "excellent", [dist("severe")], [])
    assert verdict == "reject" and "severe motion blur in the upper left corner" in reasons[0]
    assert decide(policy, "excellent", [dist("moderate")], [])[0] == "warn"


def test_severe_non_key_distortion_rejects_only_on_amazon():
    """amazon_main rejects any severe distortion; the others ignore non-key ones."""
    severe_side_issue = [dist("severe", key=False)]
    assert decide(PROFILES["amazon_main"].policy, "good", severe_side_issue, [])[0] == "reject"
    for name in ("default", "ebay", "google_merchant"):
        assert decide(PROFILES[name].policy, "good", severe_side_issue, [])[0] == "accept"


@pytest.mark.parametrize("profile", ALL)
def test_failed_required_rule_rejects_and_failed_recommendation_warns(profile):
    """Required rule failed -> reject; recommended rule failed -> warn."""
    policy = PROFILES[profile].policy
    verdict, reasons = decide(policy, "excellent", [], [check(False)])
    assert verdict == "reject" and reasons == ("required rule failed: IMG_LOW_RESOLUTION",)
    soft = check(False, required=False, code="IMG_BELOW_ZOOM_SIZE")
    assert decide(policy, "excellent", [], [soft]) == (
        "warn",
        ("recommendation not met: IMG_BELOW_ZOOM_SIZE",),
    )


@pytest.mark.parametrize("profile", ALL)
def test_unchecked_rules_count_for_nothing(profile):
    """passed=None neither passes nor fails: the verdict ignores it."""
    assert decide(PROFILES[profile].policy, "good", [], [check(None)])[0] == "accept"


def test_reject_reasons_take_precedence_over_warnings():
    """With both, the verdict is reject and only the reject reasons are listed."""
    verdict, reasons = decide(PROFILES["ebay"].policy, "fair", [dist("moderate")], [check(False)])
    assert verdict == "reject"
    assert reasons == ("required rule failed: IMG_LOW_RESOLUTION",)
