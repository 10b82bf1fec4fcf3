"""`idetex predict`: every image of a folder through Triton, as the `Prediction.to_json` list.

decode_image -> to_model_input -> Inference.infer (batched) -> postprocess, the very
path the worker takes, so the eval numbers are the service's numbers. Without a
Triton URL, a Triton from the nvidia-pytriton wheel is started on free ports.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np

from service.domain.errors import DomainError
from service.domain.imaging import DecodedImage, ImageLimits, decode_image
from service.domain.prediction import Prediction

IMAGE_SUFFIXES: Final = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif"}
)
MODEL_REPOSITORY: Final = Path(__file__).resolve().parent.parent / "model_repository"


@dataclass(frozen=True)
class PredictSummary:
    images: int
    predicted: int
    skipped: tuple[str, ...]
    seconds: float


def image_files(folder: Path) -> list[Path]:
    """The image files under `folder` (recursively), sorted by relative path."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@contextlib.contextmanager
def embedded_triton(log_path: Path | None = None, timeout_s: float = 300.0) -> Iterator[str]:
    """Start Triton from the wheel on free ports; yield its gRPC address."""
    from service.adapters.triton_server import TritonServer

    server = TritonServer(MODEL_REPOSITORY, log_path=log_path)
    server.start()
    try:
        server.wait_ready(timeout_s)
        yield server.grpc_url
    finally:
        server.stop()


def predict_batch(inference: Any, images: Sequence[DecodedImage], params: Any = None) -> list[Prediction]:
    """One Triton call for the batch; one Prediction per image in its original frame."""
    from service.iqa.postprocess import postprocess
    from service.iqa.preprocess import stack, to_model_input

    batch = stack([to_model_input(im.rgb) for im in images])
    outputs = inference.infer(batch)
    predictions = []
    for i, im in enumerate(images):
        item = {name: np.asarray(value)[i] for name, value in outputs.items()}
        if params is None:
            predictions.append(postprocess(item, im.width, im.height))
        else:
            predictions.append(postprocess(item, im.width, im.height, params=params))
    return predictions


def predict_folder(
    folder: Path,
    out: Path,
    inference: Any,
    *,
    batch_size: int = 8,
    params: Any = None,
    progress: TextIO | None = None,
) -> PredictSummary:
    """Predict every image under `folder` and write the JSON list to `out`."""
    progress = progress or sys.stderr  # looked up per call: the caller may have redirected it
    files = image_files(folder)
    limits = ImageLimits()
    items: list[dict[str, Any]] = []
    skipped: list[str] = []
    started = time.monotonic()
    pending: list[tuple[str, DecodedImage]] = []

    def flush() -> None:
        predictions = predict_batch(inference, [im for _, im in pending], params)
        items.extend(p.to_json(image=name) for (name, _), p in zip(pending, predictions, strict=True))
        done = len(items) + len(skipped)
        rate = len(items) / max(time.monotonic() - started, 1e-9)
        print(f"[{done}/{len(files)}] {pending[-1][0]}  {rate:.1f} img/s", file=progress, flush=True)
        pending.clear()

    for path in files:
        name = path.relative_to(folder).as_posix()
        try:
            pending.append((name, decode_image(path.read_bytes(), limits)))
        except DomainError as err:
            skipped.append(name)
            print(f"skip {name}: {err.code} {err.message}", file=progress, flush=True)
            continue
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(items, indent=1) + "\n")
    return PredictSummary(len(files), len(items), tuple(skipped), time.monotonic() - started)


def run(
    images: Path,
    out: Path,
    triton_url: str | None = None,
    protocol: str = "grpc",
    batch_size: int = 8,
    params_path: str = "",
    progress: TextIO | None = None,
) -> PredictSummary:
    """`idetex predict`: connect to `triton_url`, or start an embedded Triton for the run."""
    from service.adapters.inference import TritonGrpcInference, TritonHttpInference

    progress = progress or sys.stderr

    params = None
    if params_path:
        from service.iqa.postprocess import load_params

        params = load_params(params_path)
    with contextlib.ExitStack() as stack:
        if triton_url is None:
            print("starting Triton from the nvidia-pytriton wheel ...", file=progress, flush=True)
            log_path = Path("var/logs/predict-triton.log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            triton_url = stack.enter_context(embedded_triton(log_path))
            protocol = "grpc"
        client = TritonHttpInference(triton_url) if protocol == "http" else TritonGrpcInference(triton_url)
        summary = predict_folder(images, out, client, batch_size=batch_size, params=params, progress=progress)
    print(
        f"{summary.predicted}/{summary.images} images predicted in {summary.seconds:.1f} s -> {out}",
        file=progress,
    )
    return summary
