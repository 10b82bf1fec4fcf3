"""Per-merchant overrides of a marketplace profile's thresholds and verdict policy.

Pure: text from the CLI (`min_product_fill=0.8`) is checked and typed by `parse_overrides`;
`apply_overrides` gives the profile a merchant's reports are built under. The overridable keys
are the MarketplaceProfile fields (thresholds and rule switches) and the VerdictPolicy fields,
so a threshold added to a profile can be overridden without a change here.

Values: integers and decimals as written; `none` (or `off`) switches an optional rule off;
booleans as true/false (yes/no, on/off, 1/0); grade and severity sets comma-separated
(`reject_grades=bad` or `reject_grades=` for none).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

from service.domain.errors import InvalidRequest
from service.domain.profiles import FORMATS, MarketplaceProfile, VerdictPolicy
from service.domain.taxonomy import GRADES, SEVERITIES

NOT_OVERRIDABLE: Final = frozenset({"name", "title", "policy"})
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})
_OFF: Final = frozenset({"none", "off", "null"})
# (low, high) bounds of numeric keys; keys not listed only need to be >= 0
BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "min_long_side": (1, 100_000),
    "recommended_long_side": (1, 100_000),
    "min_white_border_fraction": (0.0, 1.0),
    "min_product_fill": (0.0, 1.0),
    "min_jpeg_quality": (1, 100),
    "max_megapixels": (0.01, 10_000.0),
    "max_file_bytes": (1, 2**40),
}
# the words a set-valued VerdictPolicy field may hold
SET_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "reject_grades": GRADES,
    "warn_grades": GRADES,
    "reject_key_severities": SEVERITIES,
    "warn_key_severities": SEVERITIES,
    "allowed_formats": FORMATS,
}


def _kinds(cls: type) -> dict[str, tuple[type, bool]]:
    """field -> (base type, optional) for the overridable fields of a dataclass."""
    hints = typing.get_type_hints(cls)
    kinds: dict[str, tuple[type, bool]] = {}
    for f in dataclasses.fields(cls):
        if f.name in NOT_OVERRIDABLE:
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        kinds[f.name] = (typing.get_origin(base) or base, optional)
    return kinds


PROFILE_KEYS: Final = _kinds(MarketplaceProfile)
POLICY_KEYS: Final = _kinds(VerdictPolicy)
KEYS: Final[tuple[str, ...]] = (*PROFILE_KEYS, *POLICY_KEYS)


def _bad(key: str, reason: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"policy.{key}", reason, message)


def parse_value(key: str, text: str) -> Any:
    """`text` as the typed value of `key` (JSON-compatible: int, float, bool, None or a sorted list)."""
    if key not in PROFILE_KEYS and key not in POLICY_KEYS:
        raise _bad(key, "UNKNOWN_KEY", f"unknown policy key {key!r}; known: {', '.join(KEYS)}")
    base, optional = PROFILE_KEYS.get(key) or POLICY_KEYS[key]
    raw = text.strip().lower()
    if optional and raw in _OFF:
        return None
    if base is bool:
        if raw in _TRUE | _FALSE:
            return raw in _TRUE
        raise _bad(key, "NOT_A_BOOLEAN", f"{key} takes true or false, not {text!r}")
    if base is frozenset:
        words = [w.strip() for w in raw.split(",") if w.strip()]
        allowed = SET_WORDS[key]
        unknown = [w for w in words if w not in allowed]
        if unknown:
            raise _bad(key, "BAD_VALUE", f"{key} takes a comma-separated list of {', '.join(allowed)}")
        return sorted(set(words), key=allowed.index)
    return _number(key, base, raw, text, optional)


def _number(key: str, base: type, raw: str, text: str, optional: bool) -> int | float:
    off = " (or none to switch the rule off)" if optional else ""
    try:
        value: int | float = int(raw) if base is int else float(raw)
    except ValueError:
        kind = "a whole number" if base is int else "a number"
        raise _bad(key, "NOT_A_NUMBER", f"{key} takes {kind}{off}, not {text!r}") from None
    low, high = BOUNDS.get(key, (0, math.inf))
    if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
        raise _bad(key, "OUT_OF_RANGE", f"{key} must be between {low:g} and {high:g}, not {text!r}")
    return value


def parse_assignments(assignments: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """["min_product_fill=0.8", ...] -> {"min_product_fill": 0.8, ...}; every error names its key."""
    parsed: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest("policy", "BAD_ASSIGNMENT", f"expected KEY=VALUE, got {item!r}")
        parsed[key.strip()] = parse_value(key.strip(), value)
    return parsed


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Stored overrides validated again (as read back from SQL): the same types and bounds."""
    return {key: parse_value(key, format_value(value)) for key, value in overrides.items()}


def format_value(value: Any) -> str:
    """The text form of a typed value, as `parse_value` reads it and the API shows it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | frozenset | set):
        return ",".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def apply_overrides(profile: MarketplaceProfile, overrides: Mapping[str, Any] | None) -> MarketplaceProfile:
    """`profile` with the merchant's overrides applied; unchanged (the same object) without any."""
    if not overrides:
        return profile
    values = check_overrides(overrides)
    own: dict[str, Any] = {
        k: frozenset(v) if isinstance(v, list) else v for k, v in values.items() if k in PROFILE_KEYS
    }
    policy: dict[str, Any] = {
        k: frozenset(v) if isinstance(v, list) else v for k, v in values.items() if k in POLICY_KEYS
    }
    return dataclasses.replace(profile, **own, policy=dataclasses.replace(profile.policy, **policy))
