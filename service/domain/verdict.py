"""accept / warn / reject under a profile's VerdictPolicy, with the reasons that decided it."""

from __future__ import annotations

from collections.abc import Iterable

from service.domain import i18n
from service.domain.findings import ComplianceCheck, ReportDistortion, Verdict
from service.domain.profiles import VerdictPolicy


def decide(
    policy: VerdictPolicy,
    grade: str,
    distortions: Iterable[ReportDistortion],
    checks: Iterable[ComplianceCheck],
) -> tuple[Verdict, tuple[str, ...]]:
    """Return the verdict and its reasons (empty for accept).

    reject: a failed required rule, a reject grade, a key distortion of a reject severity
    (or any severe one when the policy says so). warn: a failed recommendation, a warn
    grade, a key distortion of a warn severity. Unchecked rules (passed None) count for neither.
    """
    rejects: list[str] = []
    warns: list[str] = []
    for c in checks:
        if c.passed is not False:
            continue
        if c.required and policy.reject_on_required_failure:
            rejects.append(i18n.render("en", "verdict.required_failed", code=c.code))
        elif not c.required and policy.warn_on_recommended_failure:
            warns.append(i18n.render("en", "verdict.recommended_failed", code=c.code))
        else:
            warns.append(i18n.render("en", "verdict.rule_failed", code=c.code))
    if grade in policy.reject_grades:
        rejects.append(i18n.render("en", "verdict.grade", grade=grade))
    elif grade in policy.warn_grades:
        warns.append(i18n.render("en", "verdict.grade", grade=grade))
    for d in distortions:
        if d.expected:  # what the profile asks for, e.g. Amazon's white background
            continue
        if d.key and d.severity in policy.reject_key_severities:
            rejects.append(_about(d, "verdict.key_distortion"))
        elif not d.key and policy.reject_any_severe and d.severity == "severe":
            rejects.append(_about(d, "verdict.severe_distortion"))
        elif d.key and d.severity in policy.warn_key_severities:
            warns.append(_about(d, "verdict.key_distortion"))
    if rejects:
        return "reject", tuple(rejects)
    if warns:
        return "warn", tuple(warns)
    return "accept", ()


def _about(d: ReportDistortion, key: str) -> str:
    """A reason naming a distortion: "key distortion: moderate motion blur in the lower right corner"."""
    return i18n.render(
        "en", key, severity=d.severity, distortion=i18n.word("en", "type", d.type), region=d.region
    )
