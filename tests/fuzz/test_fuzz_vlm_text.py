"""Fuzz the MLLM-output parser (service/domain/vlm_text.py) with text a model might emit.

tests/unit/test_vlm_text.py checks the parser's invariants on short texts built from grounding
tokens; this target runs the same invariants for FUZZ_SECONDS on wider input: any Unicode,
long runs of one token (regular-expression backtracking), mutated real Qwen2-VL-ViDA answers
from the challenge fixtures, nested and unbalanced tokens. Each example must finish within
FUZZ_EXAMPLE_TIMEOUT_S: a catastrophic backtrack is a hang, and a finding.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import strategies as st

from service.domain.taxonomy import DISTORTIONS, GRADES
from service.domain.vlm_text import (
    canonical_name,
    clean,
    parse_choice,
    parse_description,
    parse_grounding,
    parse_region_answer,
    plain_text,
    split_label,
)
from tests.fuzz.fuzzing import EXAMPLE_TIMEOUT_S, FUZZ_SECONDS, fuzz

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "vida-mipi-baseline"
TOKENS = [
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<|im_end|>",
    "(",
    ")",
    "[",
    "]",
    ",",
    "\n",
    " ",
    "severe ",
    "moderate ",
    "slight ",
    "Thus, the quality of the image is ",
    "The key distortions are ",
    "Answer: ",
    "option ",
    *DISTORTIONS,
    *GRADES,
]


@cache
def real_answers() -> tuple[str, ...]:
    """Model texts from the challenge fixtures (every string value in their JSON files)."""
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and len(value) > 20:
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted(CORPUS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return tuple(texts[:2000]) or ("Thus, the quality of the image is good.",)


def _splice(text: str, at: float, insert: str, drop: int) -> str:
    i = int(at * len(text))
    return text[:i] + insert + text[i + drop :]


numbers = st.integers(-(10**12), 10**12).map(str) | st.sampled_from(["1e309", "nan", "-0", "0x10", "٣"])
pieces = st.one_of(st.sampled_from(TOKENS), numbers, st.text(max_size=8))
token_soup = st.lists(pieces, max_size=200).map("".join)
long_runs = st.builds(lambda t, n: t * n, st.sampled_from([*TOKENS, "a", "(1,", "0,"]), st.integers(1, 5000))
mutated_answers = st.builds(
    _splice,
    st.deferred(lambda: st.sampled_from(real_answers())),
    st.floats(0, 1),
    token_soup,
    st.integers(0, 200),
)
texts = st.one_of(token_soup, long_runs, mutated_answers, st.text(max_size=2000))


def check_parser(text: str) -> str:
    """The invariants of tests/unit/test_vlm_text.py on one text; an outcome label."""
    parsed = parse_description(text)
    assert parsed.grade is None or parsed.grade in GRADES
    mentions = (*parsed.mentions, *parsed.keys, *parse_grounding(text), *parse_region_answer(text))
    for m in mentions:
        x1, y1, x2, y2 = m.box
        assert 0 <= x1 <= x2 <= 1000 and 0 <= y1 <= y2 <= 1000, m
        assert m.distortion is None or m.distortion in DISTORTIONS
    for options in (0, 1, 4, 26):
        choice = parse_choice(text, options)
        assert choice is None or 0 <= choice < options
    assert isinstance(clean(text), str) and isinstance(plain_text(text), str)
    name = canonical_name(text[:200])
    assert name is None or name in DISTORTIONS
    distortion, _severity = split_label(text[:200])
    assert distortion is None or distortion in DISTORTIONS
    return "graded" if parsed.grade else ("grounded" if mentions else "plain")


@pytest.mark.timeout(FUZZ_SECONDS + 10 * EXAMPLE_TIMEOUT_S + 120)
def test_fuzz_vlm_text_never_crashes_or_hangs():
    """Any model text parses to boxes inside 0..1000, known names and grades, each in time."""
    assert fuzz("vlm_text", texts, check_parser).examples > 0
