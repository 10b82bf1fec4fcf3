"""The served ONNX file computes what the committed PyTorch weights compute."""

from pathlib import Path

import numpy as np
import pytest

from service.iqa.contract import INPUT_NAME, OUTPUT_NAMES, OUTPUTS
from service.iqa.postprocess import postprocess_batch
from service.iqa.preprocess import stack, to_model_input

torch = pytest.importorskip(
    "torch", reason="torch is only in the 'train' extra; parity needs the PyTorch model"
)
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
ONNX = ROOT / "model_repository/idetex_lite/1/model.onnx"
WEIGHTS = ROOT / "training/weights/idetex_lite.pt"


def synthetic_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A structured RGB image: gradients, a dark block, a bright block and some noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=-1) * 200
    img[height // 4 : height // 2, width // 5 : width // 2] *= 0.2
    img[height // 2 :, width // 2 :] = 250
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def runs():
    """onnxruntime on uint8 pixels and torch on the same pixels / 255, random and image-like."""
    from training.export import load_weights

    torch.set_num_threads(2)
    model = load_weights(WEIGHTS)
    sess = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    photos = [synthetic_photo(480, 640, 1), synthetic_photo(900, 300, 2)]
    batch = np.concatenate(
        [rng.integers(0, 256, (2, 3, 320, 320), dtype=np.uint8), stack([to_model_input(p) for p in photos])]
    )
    got = dict(zip(OUTPUT_NAMES, sess.run(list(OUTPUT_NAMES), {INPUT_NAME: batch}), strict=True))
    unit = torch.from_numpy(batch.astype(np.float32) / np.float32(255.0))
    with torch.no_grad():
        want = dict(zip(OUTPUT_NAMES, (t.numpy() for t in model(unit)), strict=True))
    return got, want, sess


def test_onnx_matches_pytorch_within_1e_4_per_output(runs):
    """Every output of onnxruntime is within 1e-4 of PyTorch on the same inputs."""
    got, want, _ = runs
    for name in OUTPUT_NAMES:
        assert got[name].shape == want[name].shape
        assert np.abs(got[name] - want[name]).max() < 1e-4, name


def test_postprocessed_predictions_are_the_same(runs):
    """Boxes, types, severities, key flags and grades agree; confidences agree to 1e-4."""
    got, want, _ = runs
    sizes = [(320, 320), (320, 320), (640, 480), (300, 900)]
    for a, b in zip(postprocess_batch(got, sizes), postprocess_batch(want, sizes), strict=True):
        assert a.fine_index == b.fine_index and a.score == pytest.approx(b.score, abs=1e-4)
        assert [(d.distortion, d.severity, d.box, d.key) for d in a.distortions] == [
            (d.distortion, d.severity, d.box, d.key) for d in b.distortions
        ]
        assert [d.confidence for d in a.distortions] == pytest.approx(
            [d.confidence for d in b.distortions], abs=1e-4
        )


def test_onnx_file_follows_the_contract_and_the_size_limit(runs):
    """Input/output names, UINT8 input, per-item shapes and a dynamic batch as in contract.py; <= 20 MB."""
    _, _, sess = runs
    assert ONNX.stat().st_size <= 20 * 1024 * 1024
    (inp,) = sess.get_inputs()
    assert (
        inp.name == INPUT_NAME and list(inp.shape[1:]) == [3, 320, 320] and not isinstance(inp.shape[0], int)
    )
    assert inp.type == "tensor(uint8)"
    assert [o.name for o in sess.get_outputs()] == list(OUTPUT_NAMES)
    for o in sess.get_outputs():
        assert tuple(o.shape[1:]) == OUTPUTS[o.name][1]
    one = sess.run(["SCORE"], {INPUT_NAME: np.zeros((1, 3, 320, 320), np.uint8)})[0]
    assert one.shape == (1, 1) and 1.0 <= float(one[0, 0]) <= 5.0
