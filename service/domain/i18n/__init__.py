"""The message catalogue: every merchant-facing sentence, in English and German.

Reports are built and stored in English (service.domain.guidance, .compliance, .verdict render
their text with `render("en", ...)`); service.domain.localize renders a stored report into another
language when an answer is built. A language is one module here with the same keys and the same
`{placeholders}` as en.py (tests/unit/test_i18n.py checks both).

Language tags are BCP-47-ish: the primary subtag decides ("de-AT", "de_CH" -> "de"); empty means
English; anything else is InvalidRequest(field "language", reason UNSUPPORTED_LANGUAGE).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Final

from service.domain.errors import InvalidRequest
from service.domain.i18n import de, en

DEFAULT_LANGUAGE: Final = "en"
CATALOGUES: Final[dict[str, Mapping[str, str]]] = {"en": en.MESSAGES, "de": de.MESSAGES}
LANGUAGES: Final[tuple[str, ...]] = tuple(CATALOGUES)
UNSUPPORTED_LANGUAGE: Final = "UNSUPPORTED_LANGUAGE"


def resolve_language(tag: str | None, field: str = "language") -> str:
    """The catalogue language for a request's language tag; empty -> "en"."""
    value = (tag or "").strip().replace("_", "-").lower()
    if not value:
        return DEFAULT_LANGUAGE
    primary = value.split("-", 1)[0]
    if primary in CATALOGUES and re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{1,8})*", value):
        return primary
    raise InvalidRequest(
        field,
        UNSUPPORTED_LANGUAGE,
        f"unsupported language {tag!r}; supported: {', '.join(LANGUAGES)} (empty means {DEFAULT_LANGUAGE})",
    )


def placeholders(template: str) -> set[str]:
    """The `{names}` a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def has(language: str, key: str) -> bool:
    return key in CATALOGUES[language]


def text(language: str, key: str) -> str:
    """The template (or fixed text) for `key`; KeyError for a key the language lacks."""
    return CATALOGUES[language][key]


def render(language: str, key: str, *, sentence: bool = False, **params: object) -> str:
    """`key`'s template in `language` with `params` filled in; `sentence` capitalises the first letter."""
    result = text(language, key).format_map({k: str(v) for k, v in params.items()})
    return result[:1].upper() + result[1:] if sentence else result


def word(language: str, group: str, english: str) -> str:
    """A closed-set word (group "severity", "grade", "type", "side") in `language`; unknown ones as is."""
    return CATALOGUES[language].get(f"{group}.{english}", english)


def number(language: str, value: str) -> str:
    """A formatted number or measurement ("72.5", "40%", "1.5 MB") in the language's convention."""
    if language != "de":
        return value
    value = re.sub(r"(\d)\.(\d)", r"\1,\2", value)
    return re.sub(r"(\d)%", r"\1 %", value)


__all__ = [
    "CATALOGUES",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "has",
    "number",
    "placeholders",
    "render",
    "resolve_language",
    "text",
    "word",
]
