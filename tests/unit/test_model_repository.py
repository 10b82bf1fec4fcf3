"""model_repository/idetex_lite: both configs parse as Triton ModelConfig and serve the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from service.iqa.contract import INPUT_NAME, INPUT_SIZE, MAX_BATCH, MODEL_NAME, OUTPUTS

MODEL_DIR = Path(__file__).resolve().parents[2] / "model_repository" / MODEL_NAME
CONFIGS = {"cpu": MODEL_DIR / "config.pbtxt", "gpu": MODEL_DIR / "configs" / "gpu.pbtxt"}


def load(name: str) -> mc.ModelConfig:
    return text_format.Parse(CONFIGS[name].read_text(), mc.ModelConfig())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_declares_exactly_the_contract_signature(name):
    """Name, max batch, UINT8 input and FP32 outputs (names, dims without batch) equal the contract."""
    config = load(name)
    assert config.name == MODEL_NAME
    assert config.max_batch_size == MAX_BATCH
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        (INPUT_NAME, mc.TYPE_UINT8, [3, INPUT_SIZE, INPUT_SIZE])
    ]
    assert {o.name: (o.data_type, tuple(o.dims)) for o in config.output} == {
        name: (mc.TYPE_FP32, shape) for name, (_, shape) in OUTPUTS.items()
    }
    assert config.HasField("dynamic_batching")
    assert list(config.version_policy.specific.versions) == [1]


def test_cpu_config_runs_the_python_backend_on_cpu_with_two_threads():
    """The default config uses the Python backend on KIND_CPU; onnxruntime gets 2 intra-op threads."""
    config = load("cpu")
    assert config.backend == "python" and not config.platform
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert config.parameters["INTRA_OP_THREADS"].string_value == "2"


def test_gpu_config_runs_onnxruntime_with_tensorrt_fp16():
    """The gpu config uses the onnxruntime platform on KIND_GPU with the TensorRT accelerator in FP16."""
    config = load("gpu")
    assert config.platform == "onnxruntime_onnx" and config.default_model_filename == "model.onnx"
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert {w.batch_size for w in config.model_warmup} == {1, MAX_BATCH}
    assert {w.inputs[INPUT_NAME].data_type for w in config.model_warmup} == {mc.TYPE_UINT8}


def test_the_python_model_sits_in_version_one():
    """Version 1 holds model.py (CPU); the exported model.onnx goes beside it."""
    assert (MODEL_DIR / "1" / "model.py").is_file()


def test_the_committed_onnx_takes_a_uint8_image():
    """The committed model.onnx declares IMAGE as UINT8 [batch, 3, 320, 320], as the configs do."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(MODEL_DIR / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type) == (INPUT_NAME, "tensor(uint8)")
    assert image.shape[1:] == [3, INPUT_SIZE, INPUT_SIZE] and not isinstance(image.shape[0], int)
