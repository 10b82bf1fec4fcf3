"""Time-boxed hypothesis fuzzing: run a property for FUZZ_SECONDS, each example under a timeout.

`make fuzz` sets FUZZ_SECONDS=600 (ten minutes per target); the normal suite runs a few
seconds per target. Each example runs on a helper thread and must finish within
FUZZ_EXAMPLE_TIMEOUT_S (a hang in C code cannot be interrupted, but it fails the run).
A failing example is shrunk by hypothesis, kept in its example database (.hypothesis/)
and replayed first by the next run; fixed findings become regression tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "3"))
EXAMPLE_TIMEOUT_S = float(os.environ.get("FUZZ_EXAMPLE_TIMEOUT_S", "10"))
BATCH = 200  # examples per hypothesis run; runs repeat until the time is up


class Hang(AssertionError):
    """An example ran past FUZZ_EXAMPLE_TIMEOUT_S."""


@dataclass
class Tally:
    target: str
    examples: int = 0
    runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    slowest_s: float = 0.0

    def count(self, outcome: str, seconds: float) -> None:
        self.examples += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.slowest_s = max(self.slowest_s, seconds)

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items(), key=lambda kv: -kv[1])[:8])
        return (
            f"fuzz {self.target}: {self.examples} examples in {self.runs} runs, 0 crashes, 0 hangs; "
            f"slowest {self.slowest_s:.3f} s; outcomes: {top}"
        )


class Runner:
    """Runs `check(example) -> outcome label` on a helper thread with a per-example timeout."""

    def __init__(self, target: str) -> None:
        self.tally = Tally(target)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"fuzz-{target}")

    def __call__(self, check: Callable[[Any], str], example: Any) -> str:
        start = time.monotonic()
        future = self._pool.submit(check, example)
        try:
            outcome = future.result(timeout=EXAMPLE_TIMEOUT_S)
        except FutureTimeout:
            raise Hang(f"example ran past {EXAMPLE_TIMEOUT_S} s: {example!r:.300}") from None
        self.tally.count(outcome, time.monotonic() - start)
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def run_for(seconds: float, run_batch: Callable[[], None], tally: Tally) -> None:
    """Call the hypothesis-decorated `run_batch` again and again until `seconds` have passed."""
    end = time.monotonic() + seconds
    while True:
        run_batch()
        tally.runs += 1
        if time.monotonic() >= end:
            return


def fuzz(target: str, examples: st.SearchStrategy[Any], check: Callable[[Any], str]) -> Tally:
    """Feed `examples` to `check` for FUZZ_SECONDS, BATCH at a time, each under the timeout;
    prints and returns the tally. A failing example fails the calling test."""
    runner = Runner(target)

    @settings(
        max_examples=BATCH,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(examples)
    def batch(example: Any) -> None:
        runner(check, example)

    try:
        run_for(FUZZ_SECONDS, batch, runner.tally)
    finally:
        runner.close()
    print(runner.tally.summary())
    return runner.tally
