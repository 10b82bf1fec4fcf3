"""The real Triton (nvidia-pytriton wheel) serves idetex_lite per the model contract."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from service.adapters.inference import (
    Inference,
    OnnxRuntimeInference,
    TritonGrpcInference,
    TritonHttpInference,
)
from service.adapters.triton_server import TritonServer, TritonStartupError, find_free_port
from service.iqa.contract import INPUT_DATATYPE, INPUT_NAME, MODEL_NAME, OUTPUTS
from service.iqa.errors import InferenceUnavailable, InvalidModelInput
from tests.support.photos import photo_batch

pytestmark = pytest.mark.integration

ADAPTERS = {"grpc": TritonGrpcInference, "http": TritonHttpInference}


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return photo_batch(8)


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request, triton_grpc_url, triton_http_url) -> Inference:
    url = triton_grpc_url if request.param == "grpc" else triton_http_url
    return ADAPTERS[request.param](url)


def assert_within_contract(outputs: dict[str, np.ndarray], batch: int) -> None:
    for name, (_, shape) in OUTPUTS.items():
        assert outputs[name].dtype == np.float32, name
        assert outputs[name].shape == (batch, *shape), name
        assert np.isfinite(outputs[name]).all(), name
    for name in ("DIST_MAPS", "PRESENCE", "KEY", "GRADE_PROBS"):
        assert (outputs[name] >= 0).all() and (outputs[name] <= 1).all(), name
    assert ((outputs["SEVERITY_MAPS"] >= 0) & (outputs["SEVERITY_MAPS"] <= 2)).all()
    np.testing.assert_allclose(outputs["GRADE_PROBS"].sum(axis=1), 1.0, atol=1e-4)
    assert ((outputs["SCORE"] >= 1) & (outputs["SCORE"] <= 5)).all()


def raw_infer(url: str, array: np.ndarray, datatype: str = INPUT_DATATYPE) -> None:
    client = grpcclient.InferenceServerClient(url)
    tensor = grpcclient.InferInput(INPUT_NAME, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    client.infer(MODEL_NAME, [tensor])


def batch_stats(url: str) -> tuple[int, int]:
    """(images inferred, model executions) so far, from Triton's statistics."""
    stats = grpcclient.InferenceServerClient(url).get_inference_statistics(MODEL_NAME, as_json=True)
    model = stats["model_stats"][0]
    return int(model.get("inference_count", 0)), int(model.get("execution_count", 0))


def test_server_reports_the_contract_metadata(triton_http_url):
    """The served model is ready and its metadata lists exactly the contract's names, dtypes and shapes."""
    client = httpclient.InferenceServerClient(triton_http_url)
    assert client.is_server_ready() and client.is_model_ready(MODEL_NAME, "1")
    metadata = client.get_model_metadata(MODEL_NAME, "1")
    assert metadata["inputs"] == [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, 3, 320, 320]}]
    served = {o["name"]: (o["datatype"], tuple(o["shape"])) for o in metadata["outputs"]}
    assert served == {name: (dtype, (-1, *shape)) for name, (dtype, shape) in OUTPUTS.items()}
    assert client.get_model_config(MODEL_NAME)["max_batch_size"] == 8


@pytest.mark.parametrize("batch", [1, 8])
def test_adapter_returns_outputs_within_contract_ranges(adapter, photos, batch):
    """A batch of real photos gives every output with the contract's shape, dtype and value range."""
    assert photos.dtype == np.uint8
    assert_within_contract(adapter.infer(photos[:batch]), batch)


def test_served_outputs_equal_the_onnx_file_run_in_process(triton_server, triton_grpc_url, photos):
    """Triton's Python backend answers the uint8 batch with onnxruntime's own numbers for that file."""
    onnx_path = Path(triton_server.model_repository) / MODEL_NAME / "1" / "model.onnx"
    local = OnnxRuntimeInference(onnx_path).infer(photos[:3])
    served = TritonGrpcInference(triton_grpc_url).infer(photos[:3])
    for name in OUTPUTS:
        np.testing.assert_allclose(served[name], local[name], atol=1e-5)


def test_grpc_and_http_agree(triton_grpc_url, triton_http_url, photos):
    """Both protocols return the same numbers for the same images."""
    by_grpc = TritonGrpcInference(triton_grpc_url).infer(photos[:3])
    by_http = TritonHttpInference(triton_http_url).infer(photos[:3])
    for name in OUTPUTS:
        np.testing.assert_allclose(by_grpc[name], by_http[name], atol=1e-5)


def test_batches_larger_than_the_maximum_are_split(triton_grpc_url, photos):
    """Eleven images go out as 8 + 3 and come back in order, equal to one-by-one results."""
    images = np.concatenate([photos, photos[:3]])
    adapter = TritonGrpcInference(triton_grpc_url)
    together = adapter.infer(images)
    assert_within_contract(together, 11)
    for i in (0, 7, 8, 10):
        alone = adapter.infer(images[i : i + 1])
        np.testing.assert_allclose(together["SCORE"][i], alone["SCORE"][0], atol=1e-4)
        np.testing.assert_allclose(together["DIST_MAPS"][i], alone["DIST_MAPS"][0], atol=1e-4)


def test_concurrent_requests_get_their_own_answers(triton_grpc_url, photos):
    """Requests merged by the dynamic batcher are answered each with its own image's outputs."""
    adapter = TritonGrpcInference(triton_grpc_url)
    expected = [adapter.infer(photos[i : i + 1]) for i in range(len(photos))]
    before = batch_stats(triton_grpc_url)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: adapter.infer(photos[i : i + 1]), range(len(photos))))
    for want, got in zip(expected, answers, strict=True):
        for name in OUTPUTS:
            np.testing.assert_allclose(got[name], want[name], atol=1e-4)
    inferences, executions = (a - b for a, b in zip(batch_stats(triton_grpc_url), before, strict=True))
    assert inferences == len(photos) and executions < inferences  # some requests were run together


def test_a_bad_request_fails_only_itself(triton_grpc_url, photos):
    """An FP32 request (the old contract) sent alongside good ones fails alone, naming UINT8."""
    bad = photos[:1].astype(np.float32) / 255.0
    adapter = TritonGrpcInference(triton_grpc_url)

    def send(i: int) -> str:
        try:
            if i == 3:
                raw_infer(triton_grpc_url, bad, "FP32")
            else:
                assert_within_contract(adapter.infer(photos[i : i + 1]), 1)
            return "ok"
        except InferenceServerException as exc:
            return exc.message()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert "UINT8" in results[3]
    assert results[:3] + results[4:] == ["ok"] * 7


@pytest.mark.parametrize(
    ("array", "datatype", "message"),
    [
        (np.zeros((1, 3, 64, 64), np.uint8), "UINT8", "unexpected shape"),
        (np.zeros((1, 320, 320, 3), np.uint8), "UINT8", "unexpected shape"),
        (np.full((1, 3, 320, 320), 0.5, np.float32), "FP32", "expects .UINT8."),
        (np.zeros((1, 3, 320, 320), np.float64), "FP64", "expects .UINT8."),
        (np.zeros((9, 3, 320, 320), np.uint8), "UINT8", "batch.size must be <= 8"),
    ],
    ids=["wrong-shape", "channels-last", "fp32", "fp64", "batch-too-large"],
)
def test_malformed_request_is_refused_and_the_server_keeps_serving(
    triton_grpc_url, photos, array, datatype, message
):
    """A malformed tensor gets a clear error and the next good request still succeeds."""
    with pytest.raises(InferenceServerException, match=message):
        raw_infer(triton_grpc_url, array, datatype)
    assert_within_contract(TritonGrpcInference(triton_grpc_url).infer(photos[:1]), 1)


def test_adapter_refuses_a_bad_tensor_before_sending(adapter):
    """The adapter raises InvalidModelInput for FP32 (the old contract) without calling the server."""
    with pytest.raises(InvalidModelInput, match="must be UINT8"):
        adapter.infer(np.zeros((1, 3, 320, 320), np.float32))


def test_adapter_reports_readiness_and_version(adapter):
    """A served model is ready and reports version 1."""
    assert adapter.is_ready()
    assert adapter.model_version() == "1"


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_unknown_model_is_unavailable(kind, triton_grpc_url, triton_http_url, photos):
    """Asking for a model the server has not loaded raises InferenceUnavailable, not a crash."""
    url = triton_grpc_url if kind == "grpc" else triton_http_url
    adapter = ADAPTERS[kind](url, model_name="no_such_model")
    assert not adapter.is_ready()
    with pytest.raises(InferenceUnavailable):
        adapter.infer(photos[:1])


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_adapter_raises_unavailable_when_nothing_listens(kind, photos):
    """With no server on the port, infer and model_version raise InferenceUnavailable."""
    adapter = ADAPTERS[kind](f"127.0.0.1:{find_free_port()}", timeout_s=5)
    assert not adapter.is_ready()
    with pytest.raises(InferenceUnavailable):
        adapter.infer(photos[:1])
    with pytest.raises(InferenceUnavailable):
        adapter.model_version()


def test_adapter_raises_unavailable_after_the_server_stops(triton_server, tmp_path, photos):
    """A second real server answers, then after stop() the same adapter raises InferenceUnavailable."""
    with TritonServer(triton_server.model_repository, log_path=tmp_path / "log.txt") as server:
        adapter = TritonGrpcInference(server.grpc_url, timeout_s=5)
        assert_within_contract(adapter.infer(photos[:1]), 1)
    with pytest.raises(InferenceUnavailable):
        adapter.infer(photos[:1])


def test_the_model_config_name_option_selects_a_config(triton_server, tmp_path):
    """model_config_name="gpu" serves configs/gpu.pbtxt, which needs the onnxruntime backend."""
    server = TritonServer(
        Path(triton_server.model_repository), model_config_name="gpu", log_path=tmp_path / "l"
    )
    server.start()
    try:
        with pytest.raises(TritonStartupError, match="onnxruntime"):
            server.wait_ready(timeout=120)
    finally:
        server.stop()


def test_a_closed_adapter_reconnects_on_next_use(adapter, photos):
    """close() drops the client; the next infer makes a new one and succeeds."""
    adapter.infer(photos[:1])
    adapter.close()
    assert_within_contract(adapter.infer(photos[:1]), 1)
