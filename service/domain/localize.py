"""Render a stored (English) report into another catalogue language when an answer is built.

Reports are stored in English: the text the API answered before languages existed, what
webhooks, audits and the SQL queries see. Every English sentence in a report was rendered from
a catalogue template (service/domain/i18n/en.py), so its parameters are read back by matching
the template (closed sets - severities, taxonomy types, regions, grades - match only their
own words) and the same key is rendered in the target language. Text that matches no template
(a report from an older version, a rule added without a translation) stays English.

The four-step description stays English in every language: it is the iDetex/ViDA model
format that the challenge's scorer and the grounded parser read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from typing import Final

from service.domain import i18n
from service.domain.findings import ComplianceCheck, Guidance, ReportDistortion
from service.domain.guidance import DISTORTION_CODES, OVERALL_QUALITY_CODE
from service.domain.report import Report
from service.domain.taxonomy import DISTORTIONS, GRADES, SEVERITIES

MESSAGE_VARIANTS: Final = ("measured", "none", "not_checked", "not_jpeg")
VERDICT_KEYS: Final = (
    "verdict.required_failed",
    "verdict.recommended_failed",
    "verdict.rule_failed",
    "verdict.grade",
    "verdict.key_distortion",
    "verdict.severe_distortion",
)


def _words(group: str, keys: tuple[str, ...] | list[str]) -> dict[str, str]:
    """English word -> its catalogue suffix, e.g. "motion blur" -> "Motion blur"."""
    return {i18n.text("en", f"{group}.{k}"): k for k in keys}


_EN = i18n.CATALOGUES["en"]
_REGIONS: Final = {v: k.removeprefix("region.") for k, v in _EN.items() if k.startswith("region.")}
_SEVERITIES: Final = _words("severity", list(SEVERITIES))
_GRADES: Final = _words("grade", list(GRADES))
_TYPES: Final = _words("type", list(DISTORTIONS))


def _alternatives(words: dict[str, str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_KINDS: Final = {
    "severity": _alternatives(_SEVERITIES),
    "grade": _alternatives(_GRADES),
    "distortion": _alternatives(_TYPES),
    "region": _alternatives(_REGIONS),
    "code": r"[A-Z][A-Z0-9_]*",
}


@cache
def _pattern(key: str) -> re.Pattern[str]:
    """The English template of `key` as a regex with one named group per placeholder."""
    parts = re.split(r"\{(\w+)\}", i18n.text("en", key))
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_KINDS.get(part, '.+?')})"
        for i, part in enumerate(parts)
    )
    return re.compile(regex)


def parse(key: str, english: str) -> dict[str, str] | None:
    """The parameters `english` was rendered with from `key`'s template, or None if it was not."""
    if not i18n.has("en", key):
        return None
    match = _pattern(key).fullmatch(english)
    return None if match is None else match.groupdict()


def _value(language: str, name: str, value: str) -> str:
    """A parsed English parameter in `language`."""
    if name == "severity":
        return i18n.word(language, "severity", _SEVERITIES.get(value, value))
    if name == "grade":
        return i18n.word(language, "grade", _GRADES.get(value, value))
    if name == "distortion":
        return i18n.word(language, "type", _TYPES.get(value, value))
    if name == "region":
        return region(language, value)
    if name == "code":
        return value
    if name == "sides":  # "top 12 px, left 12 px"
        return re.sub(r"\b(top|bottom|left|right)\b", lambda m: i18n.word(language, "side", m[1]), value)
    return i18n.number(language, value)


def translate(
    language: str, keys: tuple[str, ...] | list[str], english: str, *, sentence: bool = False
) -> str:
    """`english` re-rendered in `language` from the first of `keys` whose template it matches,
    else `english` as is."""
    probe = english[:1].lower() + english[1:] if sentence else english
    for key in keys:
        params = parse(key, probe)
        if params is not None and i18n.has(language, key):
            values = {k: _value(language, k, v) for k, v in params.items()}
            return i18n.render(language, key, sentence=sentence, **values)
    return english


def region(language: str, english: str) -> str:
    key = _REGIONS.get(english)
    return english if key is None else i18n.text(language, f"region.{key}")


def localize_check(check: ComplianceCheck, language: str) -> ComplianceCheck:
    code = check.code
    fix_key = f"{code}.fix"
    return replace(
        check,
        rule=translate(language, [f"{code}.rule"], check.rule),
        message=translate(language, [f"{code}.{v}" for v in MESSAGE_VARIANTS], check.message),
        fix=i18n.text(language, fix_key) if i18n.has(language, fix_key) else check.fix,
    )


def localize_distortion(d: ReportDistortion, language: str) -> ReportDistortion:
    code = DISTORTION_CODES.get(d.type)
    impact_key = "distortion.expected.impact" if d.expected else f"{code}.impact"
    impact = i18n.text(language, impact_key) if i18n.has(language, impact_key) else d.impact
    return replace(d, region=region(language, d.region), impact=impact)


def localize_guidance(g: Guidance, language: str, checks: dict[str, ComplianceCheck]) -> Guidance:
    fix_key = f"{g.code}.fix"
    fix = i18n.text(language, fix_key) if i18n.has(language, fix_key) else g.fix
    message = g.message
    if g.code == OVERALL_QUALITY_CODE:
        message = translate(language, [f"{g.code}.message"], g.message)
    elif g.code in checks:
        check = checks[g.code]
        if (
            i18n.render("en", "guidance.compliance.message", message=check.message, rule=check.rule)
            == g.message
        ):
            local = localize_check(check, language)
            message = i18n.render(
                language, "guidance.compliance.message", message=local.message, rule=local.rule
            )
    elif g.distortion in DISTORTION_CODES:
        # a code with its own wording (IMG_FACE_BLURRED: a blur on a face), else the distortion's
        code = g.code if i18n.has("en", f"{g.code}.problem") else DISTORTION_CODES[g.distortion]
        params = parse("guidance.distortion.message", g.message[:1].lower() + g.message[1:])
        if params is not None and params["problem"] == i18n.text("en", f"{code}.problem"):
            message = i18n.render(
                language,
                "guidance.distortion.message",
                sentence=True,
                severity=_value(language, "severity", params["severity"]),
                problem=i18n.text(language, f"{code}.problem"),
                region=region(language, params["region"]),
                impact=i18n.text(language, f"{code}.impact"),
            )
    return replace(g, message=message, fix=fix)


def localize_report(report: Report, language: str) -> Report:
    """`report` with its merchant-facing text in `language` (a key of i18n.CATALOGUES)."""
    if language == "en":
        return report
    checks = {c.code: c for c in report.compliance}
    return replace(
        report,
        distortions=tuple(localize_distortion(d, language) for d in report.distortions),
        guidance=tuple(localize_guidance(g, language, checks) for g in report.guidance),
        compliance=tuple(localize_check(c, language) for c in report.compliance),
        verdict_reasons=tuple(translate(language, VERDICT_KEYS, r) for r in report.verdict_reasons),
    )
