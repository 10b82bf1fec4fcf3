"""Export a training checkpoint to the served ONNX file and the committed weights.

    python -m training.export --ckpt var/train/last.pt --out model_repository/idetex_lite/1/model.onnx

The checkpoint's weights are rounded to float16 once; the same rounded weights
are written to ``training/weights/idetex_lite.pt`` (float16 state dict, the
committed PyTorch copy) and exported to ONNX (opset 17, float32, dynamic batch,
input/output names from service.iqa.contract), so the two stay bit-comparable.
The ONNX file must stay under 20 MB. A parity check runs the PyTorch model and
onnxruntime on random inputs and on real images and prints the largest absolute
difference per output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from service.iqa.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAMES
from training.model import IdetexLite

MAX_ONNX_BYTES = 20 * 1024 * 1024
OPSET = 17
DEFAULT_WEIGHTS = Path("training/weights/idetex_lite.pt")


class ExportError(RuntimeError):
    """The exported model is too large or does not match PyTorch."""


def load_checkpoint_state(ckpt: Path) -> dict[str, torch.Tensor]:
    blob = torch.load(ckpt, map_location="cpu", weights_only=False)
    state = blob["model"] if isinstance(blob, dict) and "model" in blob else blob
    return {k: v for k, v in state.items()}


def half_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to float16 (integer buffers such as num_batches_tracked unchanged)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def model_from_state(state: Mapping[str, torch.Tensor]) -> IdetexLite:
    """Float32 eval-mode model from a (possibly float16) state dict; keys must match exactly."""
    model = IdetexLite()
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True
    )
    return model.eval()


def load_weights(path: Path = DEFAULT_WEIGHTS) -> IdetexLite:
    """The committed float16 weights as a float32 eval-mode model."""
    return model_from_state(torch.load(path, map_location="cpu", weights_only=True))


def export_onnx(model: IdetexLite, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE)
    dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (dummy,),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    size = out.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise ExportError(f"{out} is {size / 1e6:.1f} MB, over the {MAX_ONNX_BYTES / 1e6:.0f} MB limit")
    return size


def real_inputs(data: Path, count: int) -> np.ndarray | None:
    """Centre crops of the first val shard, or None when there is none."""
    shards = sorted((data / "val").glob("shard_*.npz"))
    if not shards:
        return None
    with np.load(shards[0]) as z:
        images = z["images"][:count, 16:336, 16:336]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def parity(model: IdetexLite, onnx_path: Path, inputs: np.ndarray) -> dict[str, float]:
    """Largest |torch - onnxruntime| per output on the given float32 [N,3,320,320] batch."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(zip(OUTPUT_NAMES, sess.run(list(OUTPUT_NAMES), {INPUT_NAME: inputs}), strict=True))
    with torch.no_grad():
        want = dict(zip(OUTPUT_NAMES, (t.numpy() for t in model(torch.from_numpy(inputs))), strict=True))
    return {k: float(np.abs(got[k] - want[k]).max()) for k in OUTPUT_NAMES}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, default=Path("var/train/last.pt"))
    p.add_argument("--out", type=Path, default=Path("model_repository/idetex_lite/1/model.onnx"))
    p.add_argument("--weights-out", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument(
        "--data", type=Path, default=Path("var/data"), help="val shards for the real-input parity check"
    )
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    state = half_state(load_checkpoint_state(args.ckpt))
    args.weights_out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.weights_out)
    model = model_from_state(state)
    size = export_onnx(model, args.out)
    print(
        f"exported {args.out} ({size / 1e6:.2f} MB), "
        f"weights {args.weights_out} ({args.weights_out.stat().st_size / 1e6:.2f} MB)"
    )
    rng = np.random.default_rng(0)
    batches = {"random": rng.random((3, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)}
    real = real_inputs(args.data, 4)
    if real is not None:
        batches["real"] = real
    worst = 0.0
    for name, batch in batches.items():
        diffs = parity(model, args.out, batch)
        worst = max(worst, *diffs.values())
        print(f"parity {name} (n={len(batch)}): " + json.dumps({k: f"{v:.2e}" for k, v in diffs.items()}))
    if worst > args.tolerance:
        raise ExportError(f"onnxruntime differs from PyTorch by {worst:.2e} > {args.tolerance:.0e}")


if __name__ == "__main__":
    main()
