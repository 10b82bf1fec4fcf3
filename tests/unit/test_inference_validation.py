"""Pure checks of model inputs, outputs and signatures against the model contract."""

from __future__ import annotations

import numpy as np
import pytest

from service.adapters.inference import merge_outputs, split_batches
from service.iqa.contract import INPUT_NAME, OUTPUTS
from service.iqa.errors import InvalidModelInput, ModelSignatureMismatch
from service.iqa.validate import validate_image_batch, validate_outputs, validate_signature


def images(n: int = 2, value: int = 128) -> np.ndarray:
    return np.full((n, 3, 320, 320), value, np.uint8)


def contract_outputs(batch: int) -> dict[str, np.ndarray]:
    return {name: np.zeros((batch, *shape), np.float32) for name, (_, shape) in OUTPUTS.items()}


Signature = list[tuple[str, list[int | str | None]]]
CONTRACT_INPUTS: Signature = [(INPUT_NAME, ["N", 3, 320, 320])]
CONTRACT_OUTPUTS: Signature = [(name, ["N", *shape]) for name, (_, shape) in OUTPUTS.items()]


def test_a_contract_batch_is_accepted_unchanged():
    """UINT8 [N, 3, 320, 320] passes and is returned as is; every value 0..255 is a pixel."""
    batch = images()
    batch[0, 0, 0, :256] = np.arange(256, dtype=np.uint8)
    assert validate_image_batch(batch) is batch


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.full((1, 3, 320, 320), 0.5, np.float32), r"must be UINT8 \(uint8 RGB 0..255\), got float32"),
        (np.zeros((1, 3, 320, 320), np.float64), "UINT8"),
        (np.zeros((1, 3, 320, 320), np.int8), "UINT8"),
        (np.zeros((1, 3, 320, 320), np.uint16), "UINT8"),
        (np.zeros((3, 320, 320), np.uint8), "shape"),
        (np.zeros((1, 320, 320, 3), np.uint8), "shape"),
        (np.zeros((1, 3, 224, 224), np.uint8), "shape"),
        (np.zeros((0, 3, 320, 320), np.uint8), "empty"),
        (images(9), "exceeds the maximum of 8"),
    ],
    ids=["fp32", "fp64", "int8", "uint16", "no-batch", "channels-last", "wrong-size", "empty", "too-many"],
)
def test_a_broken_batch_is_refused_with_a_reason(batch, message):
    """A dtype other than uint8, a wrong shape or batch raise InvalidModelInput saying why."""
    with pytest.raises(InvalidModelInput, match=message):
        validate_image_batch(batch)


def test_the_batch_limit_can_be_lifted():
    """max_batch=None lets adapters validate a large batch before splitting it."""
    validate_image_batch(images(11), max_batch=None)


def test_a_non_array_is_refused():
    """A list of numbers is not a tensor."""
    with pytest.raises(InvalidModelInput, match="numpy array"):
        validate_image_batch([[0]])  # type: ignore[arg-type]


def test_complete_outputs_pass():
    """All six contract outputs, FP32, batch first, pass."""
    validate_outputs(contract_outputs(3), batch=3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("SCORE"), "lack"),
        (lambda o: o.update(KEY=np.zeros((3, 10), np.float64)), "FP32"),
        (lambda o: o.update(DIST_MAPS=np.zeros((3, 10, 10, 10), np.float32)), "shape"),
        (lambda o: o.update(SCORE=np.zeros((2, 1), np.float32)), "shape"),
    ],
    ids=["missing", "dtype", "grid", "batch"],
)
def test_broken_outputs_are_a_signature_mismatch(change, message):
    """A missing output, wrong dtype or wrong shape raises ModelSignatureMismatch."""
    outputs = contract_outputs(3)
    change(outputs)
    with pytest.raises(ModelSignatureMismatch, match=message):
        validate_outputs(outputs, batch=3)


def test_the_contract_signature_passes_with_a_dynamic_batch():
    """A symbolic ('N') or unknown (None) input batch passes; outputs may report a fixed one."""
    validate_signature(CONTRACT_INPUTS, CONTRACT_OUTPUTS)
    validate_signature(CONTRACT_INPUTS, CONTRACT_OUTPUTS, input_type="tensor(uint8)")
    validate_signature([(INPUT_NAME, [None, 3, 320, 320])], [(n, [1, *s[1:]]) for n, s in CONTRACT_OUTPUTS])


def test_a_model_that_takes_float_is_refused_at_load():
    """An older export whose IMAGE is FP32 is a signature mismatch that says how to convert it."""
    with pytest.raises(ModelSignatureMismatch, match=r"UINT8 \(tensor\(uint8\)\), got tensor\(float\)"):
        validate_signature(CONTRACT_INPUTS, CONTRACT_OUTPUTS, input_type="tensor(float)")


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([("input", ["N", 3, 320, 320])], CONTRACT_OUTPUTS, "inputs"),
        ([(INPUT_NAME, ["N", 3, 224, 224])], CONTRACT_OUTPUTS, "IMAGE must have shape"),
        ([(INPUT_NAME, [3, 320, 320])], CONTRACT_OUTPUTS, "IMAGE must have shape"),
        ([(INPUT_NAME, [1, 3, 320, 320])], CONTRACT_OUTPUTS, "fixed batch of 1"),
        (CONTRACT_INPUTS, CONTRACT_OUTPUTS[:-1], "outputs"),
        (CONTRACT_INPUTS, [*CONTRACT_OUTPUTS[:-1], ("SCORE", ["N", 2])], "SCORE must have shape"),
    ],
    ids=["input-name", "input-size", "input-rank", "fixed-batch", "missing-output", "output-shape"],
)
def test_a_model_off_the_contract_is_a_signature_mismatch(inputs, outputs, message):
    """Wrong names or fixed dims raise ModelSignatureMismatch naming the tensor."""
    with pytest.raises(ModelSignatureMismatch, match=message):
        validate_signature(inputs, outputs)


def test_batches_split_into_slices_of_at_most_the_maximum_and_merge_back_in_order():
    """19 images split 8 + 8 + 3 and per-slice outputs concatenate in the original order."""
    batch = np.arange(19, dtype=np.float32)[:, None, None, None] * np.ones((1, 3, 320, 320), np.float32)
    parts = split_batches(batch, 8)
    assert [p.shape[0] for p in parts] == [8, 8, 3]
    merged = merge_outputs([{**contract_outputs(len(p)), "SCORE": p[:, 0, 0, :1]} for p in parts])
    assert merged["SCORE"].ravel().tolist() == list(range(19))
    assert merged["DIST_MAPS"].shape == (19, 10, 20, 20)
