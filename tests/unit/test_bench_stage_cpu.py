"""The floor benchmark: the job's own steps timed alone, and the ceiling they put on the ratio."""

from __future__ import annotations

import pytest

from bench.stage_cpu import FLOOR_STEPS, ceiling_ratio, markdown, measure, payloads


def test_the_ceiling_is_the_cores_over_inference_plus_floor_against_raw():
    """2 cores, 25 ms inference + 15 ms floor: at most 50 images/s; raw at 50/s gives 1.0x."""
    assert ceiling_ratio(2, 25.0, 15.0, 50.0) == pytest.approx(1.0)
    assert ceiling_ratio(2, 25.0, 15.0, 62.5) == pytest.approx(0.8)
    assert ceiling_ratio(2, 25.0, 25.0, 50.0) < ceiling_ratio(2, 25.0, 15.0, 50.0)


def test_the_ceiling_refuses_a_zero_measurement():
    with pytest.raises(ValueError):
        ceiling_ratio(2, 0.0, 0.0, 50.0)
    with pytest.raises(ValueError):
        ceiling_ratio(2, 25.0, 15.0, 0.0)


def test_every_step_costs_cpu_and_the_floor_is_their_sum():
    steps = measure(payloads(2), rounds=1)
    for step in (*FLOOR_STEPS, "onnxruntime (1 thread)"):
        assert steps[step] > 0, step
    assert steps["floor"] == pytest.approx(sum(steps[k] for k in FLOOR_STEPS), abs=0.05)
    table = markdown(steps)
    assert all(step in table for step in FLOOR_STEPS)
    assert f"{steps['floor']:.2f}" in table
