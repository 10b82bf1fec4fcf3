"""The stack each e2e module drives: `idetex serve` started the way `make run` starts it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.stack import RunningStack, StackError, running_stack

START_TIMEOUT_S = float(os.environ.get("IDETEX_E2E_START_TIMEOUT", "400"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack per module (test_stack.py ends its own with Ctrl-C)."""
    try:
        with running_stack(tmp_path_factory.mktemp("stack"), workers=1, timeout_s=START_TIMEOUT_S) as s:
            yield s
    except StackError as exc:
        pytest.fail(str(exc))
