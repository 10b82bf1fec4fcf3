"""Export a training checkpoint to the served ONNX file and the committed weights.

    python -m training.export --ckpt var/train/last.pt --out model_repository/idetex_lite/1/model.onnx

The checkpoint's weights are rounded to float16 once; the same rounded weights
are written to ``training/weights/idetex_lite.pt`` (float16 state dict, the
committed PyTorch copy) and exported to ONNX (opset 17, float32 weights, dynamic
batch, input/output names from service.iqa.contract), so the two stay bit-comparable.
The PyTorch model takes float RGB in [0, 1]; the exported graph takes the contract's
UINT8 ``IMAGE`` (RGB 0..255) and starts with Cast to float and Div by 255
(``with_uint8_input``), so a quarter of the bytes travel to Triton and the outputs are
bit for bit those of the float graph on ``x.astype(float32) / 255``.
The ONNX file must stay under 20 MB. A parity check runs the PyTorch model (on x / 255)
and onnxruntime (on the uint8 x) on random and on real images and prints the largest
absolute difference per output.

    python -m training.export --uint8-input model.onnx

rewrites an older export whose ``IMAGE`` is FP32 in place (outputs unchanged).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from service.iqa.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAMES
from training.model import IdetexLite

if TYPE_CHECKING:
    import onnx

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


FLOAT_INPUT = f"{INPUT_NAME}_unit"  # the float graph's input, RGB in [0, 1], once IMAGE is uint8
_CAST_OUTPUT = f"{INPUT_NAME}_float"  # uint8 0..255 as float32
_SCALE = f"{INPUT_NAME}_scale"  # the float32 scalar 255


def with_uint8_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose FP32 input `IMAGE` (RGB in [0, 1]) becomes UINT8 (RGB 0..255).

    The old input is renamed to FLOAT_INPUT and fed by Cast(to=FLOAT) then Div by a float32
    scalar initializer 255: float32(k) / float32(255) exactly as numpy's
    ``x.astype(np.float32) / 255`` computes it (a division, not a multiplication by a rounded
    reciprocal), so every output is bit for bit the float graph's. Same shape (the dynamic
    batch axis included), opset and everything else. Raises ValueError unless `model` has
    exactly one input, `IMAGE`, of type FLOAT.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise ValueError(f"expected the single input {INPUT_NAME!r}, got {[i.name for i in graph.input]}")
    old = graph.input[0]
    if old.type.tensor_type.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(old.type.tensor_type.elem_type)
        raise ValueError(f"{INPUT_NAME} must be FLOAT to be converted, got {kind}")
    taken = _tensor_names(graph)
    clashes = sorted({FLOAT_INPUT, _CAST_OUTPUT, _SCALE} & taken)
    if clashes:
        raise ValueError(f"the graph already has tensors named {clashes}")
    if INPUT_NAME in {o.name for o in graph.output}:
        raise ValueError(f"{INPUT_NAME} is also a graph output")
    _rename_uses(graph, INPUT_NAME, FLOAT_INPUT)
    for info in graph.value_info:
        if info.name == INPUT_NAME:
            info.name = FLOAT_INPUT

    image = onnx.ValueInfoProto()
    image.CopyFrom(old)
    image.type.tensor_type.elem_type = TensorProto.UINT8
    del graph.input[:]
    graph.input.append(image)
    graph.initializer.append(numpy_helper.from_array(np.array(255.0, dtype=np.float32), _SCALE))
    head = [
        helper.make_node(
            "Cast", [INPUT_NAME], [_CAST_OUTPUT], name=f"{INPUT_NAME}/Cast", to=TensorProto.FLOAT
        ),
        helper.make_node("Div", [_CAST_OUTPUT, _SCALE], [FLOAT_INPUT], name=f"{INPUT_NAME}/Div255"),
    ]
    nodes = [*head, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def _tensor_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names.update(t.name for t in graph.initializer)
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs):
                names |= _tensor_names(sub)
    return names - {""}


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Point every node input named `old` at `new`, in subgraphs too (they may read outer tensors)."""
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs):
                _rename_uses(sub, old, new)


def export_onnx(model: IdetexLite, out: Path) -> int:
    """Write the contract's ONNX (UINT8 IMAGE, see with_uint8_input) to `out`; return its size."""
    import onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE)
    dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with tempfile.TemporaryDirectory() as work, torch.no_grad():
        traced = Path(work) / "float_input.onnx"  # the traced graph, IMAGE still float in [0, 1]
        torch.onnx.export(
            model,
            (dummy,),
            str(traced),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
        float_model = onnx.load(str(traced))
    return save_checked(with_uint8_input(float_model), out)


def save_checked(model: onnx.ModelProto, out: Path) -> int:
    """onnx.checker, then write `model` to `out`; ExportError if over MAX_ONNX_BYTES."""
    import onnx

    onnx.checker.check_model(model)
    size = model.ByteSize()
    if size > MAX_ONNX_BYTES:
        raise ExportError(f"{out} would be {size / 1e6:.1f} MB, over the {MAX_ONNX_BYTES / 1e6:.0f} MB limit")
    onnx.save(model, str(out))
    return out.stat().st_size


def convert_to_uint8_input(path: Path) -> int:
    """Rewrite an export whose IMAGE is FP32 in place with with_uint8_input; return the new size."""
    import onnx

    return save_checked(with_uint8_input(onnx.load(str(path))), path)


def real_inputs(data: Path, count: int) -> np.ndarray | None:
    """Centre crops of the first val shard as uint8 [N, 3, 320, 320], or None when there is none."""
    shards = sorted((data / "val").glob("shard_*.npz"))
    if not shards:
        return None
    with np.load(shards[0]) as z:
        images = z["images"][:count, 16:336, 16:336]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.uint8)


def parity(model: IdetexLite, onnx_path: Path, inputs: np.ndarray) -> dict[str, float]:
    """Largest |torch - onnxruntime| per output: onnxruntime on the uint8 [N,3,320,320] batch,
    PyTorch on the same pixels as float32 / 255."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(zip(OUTPUT_NAMES, sess.run(list(OUTPUT_NAMES), {INPUT_NAME: inputs}), strict=True))
    unit = torch.from_numpy(inputs.astype(np.float32) / np.float32(255.0))
    with torch.no_grad():
        want = dict(zip(OUTPUT_NAMES, (t.numpy() for t in model(unit)), strict=True))
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
    p.add_argument(
        "--uint8-input",
        type=Path,
        metavar="ONNX",
        help="only rewrite this older export (FP32 IMAGE) in place to take UINT8, then stop",
    )
    args = p.parse_args(argv)
    if args.uint8_input:
        size = convert_to_uint8_input(args.uint8_input)
        print(f"{args.uint8_input}: {INPUT_NAME} is now UINT8 ({size / 1e6:.2f} MB)")
        return
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
    batches = {"random": rng.integers(0, 256, (3, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)}
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
