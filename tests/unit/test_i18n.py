"""The message catalogue: every code in every language with the same placeholders; language
tags; a stored English report rendered into German at answer time."""

from __future__ import annotations

import itertools

import pytest

from service.domain import i18n
from service.domain.errors import InvalidRequest
from service.domain.findings import ComplianceCheck
from service.domain.guidance import COMPLIANCE_CODES, DISTORTION_CODES, GUIDANCE_CODES, OVERALL_QUALITY_CODE
from service.domain.imaging import decode_image
from service.domain.localize import localize_report
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.regions import describe_region
from service.domain.report import build_report
from service.domain.taxonomy import DISTORTIONS, GRADES, SEVERITIES
from tests import imagefactory as f

OTHER_LANGUAGES = [lang for lang in i18n.LANGUAGES if lang != "en"]


def test_there_are_at_least_two_languages():
    """English and at least one more (German)."""
    assert "en" in i18n.LANGUAGES and "de" in i18n.LANGUAGES


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_language_has_every_key_with_the_same_placeholders(language):
    """Same keys as English, and each template names exactly the English template's placeholders."""
    en, other = i18n.CATALOGUES["en"], i18n.CATALOGUES[language]
    assert set(other) == set(en), f"missing: {set(en) - set(other)}; extra: {set(other) - set(en)}"
    for key, template in en.items():
        assert i18n.placeholders(other[key]) == i18n.placeholders(template), key
        assert other[key].strip(), key


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_guidance_code_has_its_message_and_fix_in_every_language(language):
    """Distortion codes: problem, impact, fix; rule codes: rule, a measurement, fix; overall: message, fix."""
    for code in GUIDANCE_CODES:
        assert i18n.has(language, f"{code}.fix"), code
    for code in DISTORTION_CODES.values():
        assert i18n.has(language, f"{code}.problem") and i18n.has(language, f"{code}.impact"), code
    for code in COMPLIANCE_CODES:
        assert i18n.has(language, f"{code}.rule"), code
        variants = ("measured", "none", "not_checked", "not_jpeg")
        assert any(i18n.has(language, f"{code}.{v}") for v in variants), code
    assert i18n.has(language, f"{OVERALL_QUALITY_CODE}.message")
    for group, words in (("severity", SEVERITIES), ("grade", GRADES), ("type", DISTORTIONS)):
        for word in words:
            assert i18n.has(language, f"{group}.{word}"), (group, word)


def test_every_region_phrase_is_in_the_catalogue():
    """Whatever describe_region says (9 grid cells, spans, whole image) has a catalogue entry."""
    english = {v for k, v in i18n.CATALOGUES["en"].items() if k.startswith("region.")}
    said = {describe_region((0, 0, 0, 0), 0, 0)}
    edges = (0, 10, 45, 55, 90, 100)
    for x1, x2, y1, y2 in itertools.product(edges, repeat=4):
        if x2 > x1 and y2 > y1:
            said.add(describe_region((x1, y1, x2, y2), 100, 100))
    assert said <= english, said - english


@pytest.mark.parametrize(
    ("tag", "language"),
    [("", "en"), ("en", "en"), ("de", "de"), ("DE", "de"), ("de-AT", "de"), ("de_CH", "de"), ("en-GB", "en")],
)
def test_language_tags_resolve_by_their_primary_subtag(tag, language):
    assert i18n.resolve_language(tag) == language


@pytest.mark.parametrize("tag", ["fr", "xx", "german", "de!", "d"])
def test_an_unsupported_language_is_invalid_and_lists_the_supported_ones(tag):
    with pytest.raises(InvalidRequest) as caught:
        i18n.resolve_language(tag)
    err = caught.value
    assert (err.field, err.reason) == ("language", "UNSUPPORTED_LANGUAGE")
    assert all(lang in err.message for lang in i18n.LANGUAGES)


def _reports():
    """Reports that exercise every kind of sentence: distortions, every rule, verdict reasons."""
    grey = decode_image(
        f.png_bytes(f.with_border(f.product_on_white(600, 500, 0.5, background=(200, 200, 200))))
    )
    white = decode_image(f.jpeg_bytes(f.product_on_white(1200, 1000, 0.9), quality=70))
    blank = decode_image(f.png_bytes(f.solid(640, 480)))
    found = (
        DetectedDistortion("Motion blur", "moderate", 0.8, (400, 300, 600, 500), key=True),
        DetectedDistortion("Noise", "severe", 0.7, (0, 0, 600, 500)),
        DetectedDistortion("Underexposure", "slight", 0.6, (0, 0, 100, 100), key=True),
    )
    reports = []
    for image, profile in itertools.product((grey, white, blank), ("amazon_main", "ebay", "google_merchant")):
        w, h = image.width, image.height
        reports.append(build_report(Prediction(w, h, found, 3, 2.2), image, profile, "m"))
        reports.append(build_report(Prediction(w, h, (), 1, 1.5), image, profile, "m"))
    return reports


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_a_stored_english_report_renders_fully_in_another_language(language):
    """Every guidance message and fix, rule, measurement, verdict reason, impact and region is
    translated (nothing falls back to English); codes, boxes, grades and the verdict are unchanged."""
    reports = _reports()
    assert {c.code for r in reports for c in r.compliance} == set(COMPLIANCE_CODES)
    assert {g.code for r in reports for g in r.guidance} >= {OVERALL_QUALITY_CODE, "IMG_MOTION_BLUR"}
    for report in reports:
        local = localize_report(report, language)
        assert (local.verdict, local.grade, local.profile) == (report.verdict, report.grade, report.profile)
        assert local.description == report.description  # the ViDA model format stays English
        for en, loc in zip(report.guidance, local.guidance, strict=True):
            assert (loc.code, loc.box, loc.severity) == (en.code, en.box, en.severity)
            assert loc.message != en.message and loc.fix != en.fix, en
        for en_c, loc_c in zip(report.compliance, local.compliance, strict=True):
            assert loc_c.rule != en_c.rule and loc_c.fix != en_c.fix, en_c
            assert loc_c.message != en_c.message, en_c
        for en_r, loc_r in zip(report.verdict_reasons, local.verdict_reasons, strict=True):
            assert loc_r != en_r
        for en_d, loc_d in zip(report.distortions, local.distortions, strict=True):
            assert loc_d.region != en_d.region and loc_d.impact != en_d.impact


def test_german_guidance_reads_as_german():
    """Spot check of the German wording, numbers with a decimal comma."""
    image = decode_image(f.png_bytes(f.product_on_white(600, 500, 0.5, background=(200, 200, 200))))
    found = (DetectedDistortion("Motion blur", "moderate", 0.8, (400, 300, 600, 500), key=True),)
    report = localize_report(
        build_report(Prediction(600, 500, found, 3, 2.2), image, "amazon_main", "m"), "de"
    )
    messages = {g.code: g.message for g in report.guidance}
    assert messages["IMG_MOTION_BLUR"].startswith("Bewegungsunschärfe (mittel) in der unteren rechten Ecke: ")
    assert (
        "Die längste Seite misst 600 px (längste Seite mindestens 1000 px" in messages["IMG_BELOW_ZOOM_SIZE"]
    )
    assert "Pflichtregel nicht erfüllt: IMG_NOT_WHITE_BACKGROUND" in report.verdict_reasons
    assert i18n.number("de", "72.5 MB, 40%") == "72,5 MB, 40 %"


def test_english_is_returned_as_stored_and_unknown_text_stays_english():
    """en is the stored report itself; a check whose text matches no template keeps its words."""
    image = decode_image(f.png_bytes(f.product_on_white(600, 500, 0.5)))
    report = build_report(Prediction(600, 500, (), 3, 2.2), image, "ebay", "m")
    assert localize_report(report, "en") is report
    odd = ComplianceCheck("IMG_FUTURE_RULE", "some new rule", False, "measured 3", "do this")
    from service.domain.localize import localize_check

    assert localize_check(odd, "de") == odd
