#!/usr/bin/env bash
# GPU check of the default model: images/s at batch 1, 8 and 32 on whatever GPU runtime is there.
#
#   bench/gpu_check.sh            # on a machine with an NVIDIA GPU and PyTorch (CUDA)
#
# onnxruntime with the CUDA execution provider runs the served ONNX file when it is installed;
# otherwise PyTorch runs the committed weights (the graph the ONNX file is exported from).
# Prints the device and a markdown table for docs/benchmarks.md.
set -euo pipefail
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 - <<'PY'
import time

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    ort = None
if ort is not None and "CUDAExecutionProvider" in ort.get_available_providers():
    sess = ort.InferenceSession(
        "model_repository/idetex_lite/1/model.onnx", providers=["CUDAExecutionProvider"]
    )
    print(f"onnxruntime {ort.__version__} CUDAExecutionProvider")
    print("| runtime | batch | p50 ms | p95 ms | images/s |\n|---|---|---|---|---|")
    for batch in (1, 8, 32):
        x = np.random.randint(0, 256, (batch, 3, 320, 320), dtype=np.uint8)  # the UINT8 contract
        for _ in range(20):
            sess.run(None, {"IMAGE": x})
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            sess.run(None, {"IMAGE": x})
            times.append((time.perf_counter() - t0) * 1000)
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"| onnxruntime-cuda fp32 | {batch} | {p50:.2f} | {p95:.2f} | {batch / p50 * 1000:,.0f} |")
else:
    print("onnxruntime has no CUDA execution provider here: PyTorch runs the committed weights")
PY
python3 -m bench.gpu_model_bench --batches 1 8 32
