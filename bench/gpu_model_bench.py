"""Latency of the committed weights on a CUDA GPU, in PyTorch (needs torch with CUDA).

    python -m bench.gpu_model_bench [--batches 1 8 64] [--iters 200]

For a GPU machine without a GPU Triton build: the network the ONNX file is exported
from, channels-last, fp32 and bf16 autocast, 320x320 input. Prints a markdown table
(docs/benchmarks.md, "The model on a GPU").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from service.iqa.contract import INPUT_SIZE
from training.export import load_weights


def time_calls(
    call: Callable[[torch.Tensor], object], x: torch.Tensor, iters: int, warmup: int = 20
) -> tuple[float, float]:
    """p50 and p95 in ms of call(x), each call synchronised."""
    for _ in range(warmup):
        call(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        call(x)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark measures the model on a GPU")
    model = load_weights().cuda().eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| precision | batch | p50 ms | p95 ms | images/s |\n|---|---|---|---|---|")
    for precision in ("fp32", "bf16"):
        for batch in args.batches:
            x = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, device="cuda")
            x = x.contiguous(memory_format=torch.channels_last)

            def forward(inp: torch.Tensor, bf16: bool = precision == "bf16") -> object:
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                    return model(inp)

            p50, p95 = time_calls(forward, x, args.iters)
            print(f"| {precision} | {batch} | {p50:.2f} | {p95:.2f} | {batch / p50 * 1000:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
