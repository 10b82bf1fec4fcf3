"""CPU per image of the work every job does, alone in one process: the floor under the pipeline.

    python -m bench.stage_cpu [--images 40] [--rounds 2]

The same functions the API and the worker call (service.pipeline, service.domain), timed with
the process CPU clock, single-threaded (OpenCV 1 thread, as in the worker) on 1024 px JPEGs of
`tests/fixtures/photos`, each with distinct bytes:

- api check: the API's sha256 of an async upload and its decode at 1/8 scale (pipeline.CHECK_SIDE);
- decode: the worker's decode at the working size (pipeline.decode_side for the profile), with
  the sha256 the job row carries;
- model input, postprocess, measurements (statistics, marketplace checks, the scene analysis
  the profile asks for), annotated copy (canvas, boxes, JPEG), report (built and serialised);
- onnxruntime, 1 intra-op thread, in process: the model itself, for reference (not in the floor).

No gRPC, database, broker, Celery or Triton client is involved: everything the service adds on
top of these steps is overhead that a faster request path could remove; these steps are not.

`ceiling_ratio` turns the floor into the best pipeline / raw Triton throughput ratio possible
on a machine: every core busy all the time, doing only inference and these steps.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from bench.photos import base_images, variants
from service.bootstrap import make_scene_analyzer
from service.domain.annotate import annotate_canvas, canvas
from service.domain.imaging import decode_image
from service.domain.profiles import get_profile
from service.domain.report import build_report, measure_image
from service.iqa.contract import INPUT_NAME, OUTPUT_NAMES
from service.iqa.postprocess import postprocess
from service.iqa.preprocess import to_model_input
from service.pipeline import CHECK_SIDE, decode_side
from service.settings import Settings

MODEL = Path(__file__).resolve().parent.parent / "model_repository" / "idetex_lite" / "1" / "model.onnx"
# the steps that make up the floor, in the order a job runs them
FLOOR_STEPS = (
    "api check",
    "decode",
    "model input",
    "postprocess",
    "measurements",
    "annotated copy",
    "report",
)
REFERENCE = "onnxruntime (1 thread)"


def ceiling_ratio(cores: int, inference_cpu_ms: float, floor_ms: float, raw_images_per_s: float) -> float:
    """The pipeline / raw throughput ratio if `cores` cores did nothing but inference
    (`inference_cpu_ms` per image, as Triton spent it in the pipeline) and the floor steps."""
    if inference_cpu_ms + floor_ms <= 0 or raw_images_per_s <= 0:
        raise ValueError("CPU per image and raw throughput must be positive")
    return cores * 1000.0 / (inference_cpu_ms + floor_ms) / raw_images_per_s


class StepClock:
    """Process CPU seconds spent in each named step."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.process_time()
        yield
        self.spent[name] = self.spent.get(name, 0.0) + time.process_time() - start


def measure(
    payloads: list[bytes], rounds: int = 2, profile: str = "", model: Path = MODEL
) -> dict[str, float]:
    """CPU ms per image of each step (the median of `rounds` rounds over `payloads`), plus
    "floor" (the sum of FLOOR_STEPS) and "onnxruntime (1 thread)"."""
    import onnxruntime as ort

    cv2.setNumThreads(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    scene = make_scene_analyzer()
    name = get_profile(profile).name
    side = decode_side(name, {}, Settings().work_side)
    per_round: list[dict[str, float]] = []
    for _ in range(rounds):
        clock = StepClock()
        for data in payloads:
            with clock.step("api check"):
                sha = _api_check(data)
            with clock.step("decode"):
                image = decode_image(data, max_side=side, sha256=sha)
            with clock.step("model input"):
                batch = to_model_input(image.rgb)[None, ...]
            with clock.step(REFERENCE):
                values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
            outputs = {n: np.asarray(v)[0] for n, v in zip(OUTPUT_NAMES, values, strict=True)}
            with clock.step("postprocess"):
                prediction = postprocess(outputs, image.width, image.height)
            with clock.step("measurements"):
                measures = measure_image(image, name, None, scene)
            with clock.step("annotated copy"):
                annotate_canvas(canvas(image.rgb), prediction)
            with clock.step("report"):
                build_report(prediction, image, name, "bench", measures).to_json()
        per_round.append({k: v * 1000 / len(payloads) for k, v in clock.spent.items()})
    steps = {k: float(np.median([r[k] for r in per_round])) for k in per_round[0]}
    steps["floor"] = sum(steps[k] for k in FLOOR_STEPS)
    return {k: round(v, 2) for k, v in steps.items()}


def _api_check(data: bytes) -> str:
    """What the API does with an async upload's bytes before storing them: hash and check-decode."""
    sha = hashlib.sha256(data).hexdigest()
    decode_image(data, max_side=CHECK_SIDE, sha256=sha)
    return sha


def payloads(n: int) -> list[bytes]:
    """`n` JPEGs of the benchmark photos, each with distinct bytes (as pipeline_bench sends)."""
    return variants(base_images(), n)


def markdown(steps: dict[str, float]) -> str:
    lines = ["| step (one process, 1 thread) | CPU ms per image |", "|---|---|"]
    lines += [f"| {k} | {steps[k]:.2f} |" for k in FLOOR_STEPS]
    lines += [
        f"| **floor: all of the above** | **{steps['floor']:.2f}** |",
        f"| onnxruntime, 1 intra-op thread (the model, for reference) | {steps[REFERENCE]:.2f} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=40, help="images per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("var/bench/stage_cpu.json"))
    args = parser.parse_args(argv)
    steps = measure(payloads(args.images), args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(steps, indent=2))
    print(markdown(steps))
    print(f"JSON: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
