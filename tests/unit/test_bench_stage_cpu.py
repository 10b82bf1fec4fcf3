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


def _run_result() -> dict:
    """A pipeline_bench result as its JSON holds it: one round, 50 raw and 25 pipeline images/s."""
    raw = {
        "images": 100,
        "throughput": 50.0,
        "p50_ms": 20.0,
        "p95_ms": 25.0,
        "cpu_ms_per_image": {"total": 30.0},
    }
    pipe_cpu = {"api": 10.0, "celery-pool": 24.0, "triton-stub": 28.0, "tritonserver": 1.0, "total": 72.0}
    pipe = {
        "images": 100,
        "throughput": 25.0,
        "p50_ms": 900.0,
        "p95_ms": 1500.0,
        "cpu_ms_per_image": pipe_cpu,
    }
    sync = {"images": 100, "p50_ms": 50.0, "p95_ms": 60.0}
    one_round = {
        "raw": raw,
        "pipeline": pipe,
        "ratio": 0.5,
        "raw_before_sync": raw,
        "sync": sync,
        "sync_p95_minus_raw_p95_ms": 35.0,
    }
    return {
        "rounds": [one_round],
        "raw_triton": raw,
        "pipeline_async": pipe,
        "raw_triton_4_in_flight": {"images": 100, "throughput": 60.0, "streams": 4},
        "raw_triton_before_sync": raw,
        "sync_validate": sync,
        "ratio_throughput_pipeline_vs_raw": 0.5,
        "ratio_pipeline_vs_raw_4_in_flight": 25.0 / 60.0,
        "sync_p95_minus_raw_p95_ms": 35.0,
        "job_steps_cpu_ms": {
            **dict.fromkeys(FLOOR_STEPS, 2.0),
            "floor": 14.0,
            "onnxruntime (1 thread)": 23.0,
        },
        "ceiling": {"cores": 2, "inference_cpu_ms": 29.0, "ratio": ceiling_ratio(2, 29.0, 14.0, 50.0)},
        "worker_rss_mib_start": 400.0,
        "worker_rss_mib_after": 401.0,
        "rss_images": 1000,
    }


def test_the_report_states_the_ceiling_at_the_utilisation_the_pipeline_reached(tmp_path, capsys):
    """25 images/s at 72 ms of CPU each keep 2 cores 90% busy; inference 29 ms + floor 14 ms then
    allow 2000 / 43 = 46.5 images/s at full use, 0.93x of raw's 50, and 0.84x at 90%; the rest of
    the 72 ms (29 ms) is the service's own overhead. --from-json prints the same tables again."""
    import json

    from bench import pipeline_bench

    result = _run_result()
    assert pipeline_bench.busy_share(result["pipeline_async"], 2) == pytest.approx(0.9)
    text = pipeline_bench.markdown(result)
    assert "at most **0.93x**" in text
    assert "90% busy" in text and "**0.84x**" in text
    assert "overhead: 29.0 ms" in text
    saved = tmp_path / "pipeline.json"
    saved.write_text(json.dumps(result))
    assert pipeline_bench.main(["--from-json", str(saved)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()
