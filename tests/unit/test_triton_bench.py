"""The benchmark's own measuring helpers (the benchmark itself needs a server)."""

from __future__ import annotations

import os

from bench.triton_bench import markdown, measure, process_tree, rss_bytes


def test_process_tree_starts_with_the_root_and_rss_is_positive():
    """Our own process is found in /proc with a non-zero resident size."""
    tree = process_tree(os.getpid())
    assert tree[0] == os.getpid()
    assert rss_bytes(tree) > 10 * 2**20


def test_measure_reports_percentiles_and_throughput():
    """Timings of a call give ordered p50 <= p95 and images/s scaled by the batch."""
    row = measure(lambda: sum(range(10_000)), batch=8, iterations=20, warmup=2)
    assert 0 < row["p50_ms"] <= row["p95_ms"]
    assert row["images_per_s"] > 8


def test_markdown_has_one_row_per_measurement():
    """The table lists every protocol/batch row and the memory line."""
    rows = [
        {"protocol": p, "batch": b, "p50_ms": 1, "p95_ms": 2, "mean_ms": 1, "images_per_s": 3}
        for p in "ab"
        for b in (1, 8)
    ]
    text = markdown(
        {
            "image": "x",
            "preprocess_ms": 1,
            "model": "m",
            "rows": rows,
            "peak_rss_mib": 5,
            "processes": 2,
            "startup_s": 1,
            "loadavg": "0.1",
        }
    )
    assert text.count("\n| ") == 5 and "peak RSS (tritonserver + 1 stub process(es)): 5 MiB" in text
