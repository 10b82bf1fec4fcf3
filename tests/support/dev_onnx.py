"""A tiny ONNX network with exactly the model contract's signature, for serving tests.

It is not a quality model: it exists so the Triton path can be tested before (or without)
the trained `model.onnx`. Built with the `onnx` helper API as a float graph, then given the
contract's UINT8 input by the exporter's own `training.export.with_uint8_input`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.iqa.contract import GRID, INPUT_NAME, INPUT_SIZE, NUM_TYPES, OUTPUTS


def build_dev_onnx(path: Path, seed: int = 0) -> Path:
    """Write a contract-conformant ONNX model (UINT8 IMAGE, dynamic batch) to `path` and return it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from training.export import with_uint8_input

    rng = np.random.default_rng(seed)
    stride = INPUT_SIZE // GRID

    def init(name: str, shape: tuple[int, ...], scale: float = 0.5) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def const(name: str, value: float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=np.float32), name)

    inits = [
        init("w_dist", (NUM_TYPES, 3, 1, 1)),
        init("w_sev", (NUM_TYPES, 3, 1, 1)),
        init("w_key", (3, NUM_TYPES)),
        init("w_grade", (3, 10)),
        init("w_score", (3, 1)),
        const("two", 2.0),
        const("four", 4.0),
        const("one", 1.0),
    ]
    n = helper.make_node
    nodes = [
        n("AveragePool", [INPUT_NAME], ["pooled"], kernel_shape=[stride, stride], strides=[stride, stride]),
        n("Conv", ["pooled", "w_dist"], ["dist_logits"]),
        n("Sigmoid", ["dist_logits"], ["DIST_MAPS"]),
        n("Conv", ["pooled", "w_sev"], ["sev_logits"]),
        n("Sigmoid", ["sev_logits"], ["sev_unit"]),
        n("Mul", ["sev_unit", "two"], ["SEVERITY_MAPS"]),
        n("GlobalMaxPool", ["DIST_MAPS"], ["presence4"]),
        n("Flatten", ["presence4"], ["PRESENCE"], axis=1),
        n("GlobalAveragePool", ["pooled"], ["gap4"]),
        n("Flatten", ["gap4"], ["gap"], axis=1),
        n("MatMul", ["gap", "w_key"], ["key_logits"]),
        n("Sigmoid", ["key_logits"], ["KEY"]),
        n("MatMul", ["gap", "w_grade"], ["grade_logits"]),
        n("Softmax", ["grade_logits"], ["GRADE_PROBS"], axis=1),
        n("MatMul", ["gap", "w_score"], ["score_logits"]),
        n("Sigmoid", ["score_logits"], ["score_unit"]),
        n("Mul", ["score_unit", "four"], ["score_span"]),
        n("Add", ["score_span", "one"], ["SCORE"]),
    ]
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])]
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape])
        for name, (_, shape) in OUTPUTS.items()
    ]
    graph = helper.make_graph(nodes, "idetex_lite_dev", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="idetex-dev")
    model.ir_version = 8
    model = with_uint8_input(model)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
