"""accept / warn / reject under a profile's VerdictPolicy, with the reasons that decided it."""

from __future__ import annotations

from collections.abc import Iterable

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
            rejects.append(f"required rule failed: {c.code}")
        elif not c.required and policy.warn_on_recommended_failure:
            warns.append(f"recommendation not met: {c.code}")
        else:
            warns.append(f"rule failed: {c.code}")
    if grade in policy.reject_grades:
        rejects.append(f"quality grade is {grade}")
    elif grade in policy.warn_grades:
        warns.append(f"quality grade is {grade}")
    for d in distortions:
        if d.expected:  # what the profile asks for, e.g. Amazon's white background
            continue
        what = f"{d.severity} {d.type.lower()} {d.region}"
        if d.key and d.severity in policy.reject_key_severities:
            rejects.append(f"key distortion: {what}")
        elif not d.key and policy.reject_any_severe and d.severity == "severe":
            rejects.append(f"severe distortion: {what}")
        elif d.key and d.severity in policy.warn_key_severities:
            warns.append(f"key distortion: {what}")
    if rejects:
        return "reject", tuple(rejects)
    if warns:
        return "warn", tuple(warns)
    return "accept", ()
