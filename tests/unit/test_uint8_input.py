"""training.export.with_uint8_input: the graph takes UINT8 pixels and computes what the float graph did."""

from __future__ import annotations

import numpy as np
import pytest

from service.iqa.contract import INPUT_NAME

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="training.export needs the 'train' extra")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from training.export import with_uint8_input  # noqa: E402

SIDE = 16


def float_model() -> onnx.ModelProto:
    """A small float network shaped like the exported one: ImageNet normalisation first, then a head."""
    rng = np.random.default_rng(3)

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(np.float32), name)

    inits = [
        const("mean", np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)),
        const("std", np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)),
        const("w", rng.standard_normal((4, 3, 3, 3)) * 0.5),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normalised"]),
        helper.make_node("Conv", ["normalised", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["conv"], ["MAPS"]),
        helper.make_node("GlobalAveragePool", [INPUT_NAME], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["MEAN"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [
            helper.make_tensor_value_info("MAPS", TensorProto.FLOAT, ["batch", 4, SIDE, SIDE]),
            helper.make_tensor_value_info("MEAN", TensorProto.FLOAT, ["batch", 3]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, x: np.ndarray, level: ort.GraphOptimizationLevel) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return list(session.run(None, {INPUT_NAME: x}))


def pixels() -> np.ndarray:
    """Every value 0..255 in every channel, then random images: uint8 [5, 3, 16, 16]."""
    every = np.arange(256, dtype=np.uint8).reshape(1, 1, SIDE, SIDE).repeat(3, axis=1)
    every[0, 1] = every[0, 1, ::-1]
    rng = np.random.default_rng(0)
    return np.concatenate([every, rng.integers(0, 256, (4, 3, SIDE, SIDE), dtype=np.uint8)])


@pytest.mark.parametrize(
    "level",
    [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL],
    ids=["unoptimised", "optimised"],
)
def test_uint8_graph_gives_exactly_the_float_graph_outputs(level):
    """Outputs on uint8 x equal the float graph's on x.astype(float32) / 255 bit for bit (diff 0)."""
    old = float_model()
    new = with_uint8_input(old)
    x = pixels()
    want = run(old, x.astype(np.float32) / np.float32(255.0), level)
    got = run(new, x, level)
    for a, b in zip(want, got, strict=True):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert np.array_equal(a, b), float(np.abs(a - b).max())


def test_the_new_input_is_uint8_with_the_same_shape_and_cast_then_divide_come_first():
    """IMAGE is UINT8 [batch, 3, H, W]; Cast(to=FLOAT) and Div by a float32 scalar 255 feed the old input."""
    old = float_model()
    new = with_uint8_input(old)
    onnx.checker.check_model(new, full_check=True)
    (image,) = new.graph.input
    assert image.name == INPUT_NAME and image.type.tensor_type.elem_type == TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == ["batch", 3, SIDE, SIDE]
    cast, div = new.graph.node[:2]
    assert (cast.op_type, list(cast.input)) == ("Cast", [INPUT_NAME])
    assert helper.get_attribute_value(cast.attribute[0]) == TensorProto.FLOAT
    assert div.op_type == "Div" and div.input[0] == cast.output[0]
    scale = {i.name: numpy_helper.to_array(i) for i in new.graph.initializer}[div.input[1]]
    assert scale.dtype == np.float32 and scale.shape == () and scale == 255.0
    renamed = div.output[0]
    assert renamed != INPUT_NAME
    readers = [n for n in new.graph.node[2:] if n.op_type in ("Sub", "GlobalAveragePool")]
    assert [n.input[0] for n in readers] == [renamed, renamed]
    assert all(INPUT_NAME not in n.input for n in new.graph.node[1:])
    assert new.opset_import == old.opset_import and new.ir_version == old.ir_version


def test_the_argument_is_left_unchanged():
    """A pure function: the float model still takes FLOAT afterwards."""
    old = float_model()
    before = old.SerializeToString()
    with_uint8_input(old)
    assert old.SerializeToString() == before


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (with_uint8_input(float_model()), "must be FLOAT"),
        (helper.make_model(helper.make_graph([], "empty", [], [])), "single input"),
    ],
    ids=["already-uint8", "no-image"],
)
def test_a_model_that_cannot_be_converted_is_refused(model, message):
    """Converting twice, or a graph without the IMAGE input, raises ValueError."""
    with pytest.raises(ValueError, match=message):
        with_uint8_input(model)


def if_model() -> onnx.ModelProto:
    """A float graph whose `If` branches read IMAGE from the outer scope (no node outside them does)."""
    then_graph = helper.make_graph(
        [helper.make_node("ReduceMean", [INPUT_NAME], ["then_out"], axes=[1, 2, 3], keepdims=0)],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, ["batch"])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("ReduceMax", [INPUT_NAME], ["else_out"], axes=[1, 2, 3], keepdims=0)],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, ["batch"])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["SCORE"], then_branch=then_graph, else_branch=else_graph)],
        "branches",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("SCORE", TensorProto.FLOAT, ["batch"])],
        [numpy_helper.from_array(np.array(True), "flag")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_subgraphs_reading_the_input_read_the_converted_pixels():
    """An outer-scope read of IMAGE inside a branch is pointed at the converted tensor too: the
    graph still checks, runs on UINT8 and gives the float graph's output bit for bit."""
    old = if_model()
    new = with_uint8_input(old)
    onnx.checker.check_model(new, full_check=True)
    branch_inputs = [
        name for attr in new.graph.node[-1].attribute for node in attr.g.node for name in node.input
    ]
    assert INPUT_NAME not in branch_inputs and len(set(branch_inputs)) == 1
    x = pixels()
    level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    (want,) = run(old, x.astype(np.float32) / np.float32(255.0), level)
    (got,) = run(new, x, level)
    assert np.array_equal(want, got)
