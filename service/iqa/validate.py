"""Pure checks of tensors and model signatures against the model contract.

Used by the Triton Python model (model_repository/idetex_lite/1/model.py) and by the
inference adapters; no I/O, no Triton imports, so it is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from service.iqa.contract import INPUT_DATATYPE, INPUT_NAME, INPUT_SIZE, MAX_BATCH, OUTPUTS
from service.iqa.errors import InvalidModelInput, ModelSignatureMismatch

IMAGE_SHAPE = (3, INPUT_SIZE, INPUT_SIZE)
ORT_INPUT_TYPE = "tensor(uint8)"  # how onnxruntime names the contract's input dtype


def validate_image_batch(images: np.ndarray, max_batch: int | None = MAX_BATCH) -> np.ndarray:
    """Return `images` if UINT8 [N, 3, 320, 320] with 1 <= N <= max_batch; else InvalidModelInput.

    Every uint8 value is a valid pixel (RGB 0..255), so there is no range or finiteness check.
    """
    if not isinstance(images, np.ndarray):
        raise InvalidModelInput(f"{INPUT_NAME} must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise InvalidModelInput(
            f"{INPUT_NAME} must be {INPUT_DATATYPE} (uint8 RGB 0..255), got {images.dtype}"
        )
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise InvalidModelInput(
            f"{INPUT_NAME} must have shape [N, {', '.join(map(str, IMAGE_SHAPE))}], got {list(images.shape)}"
        )
    n = images.shape[0]
    if n < 1:
        raise InvalidModelInput(f"{INPUT_NAME} batch is empty")
    if max_batch is not None and n > max_batch:
        raise InvalidModelInput(f"{INPUT_NAME} batch of {n} exceeds the maximum of {max_batch}")
    return images


def validate_outputs(outputs: Mapping[str, np.ndarray], batch: int) -> None:
    """Raise ModelSignatureMismatch unless `outputs` has every contract output, FP32, [batch, ...]."""
    missing = [name for name in OUTPUTS if name not in outputs]
    if missing:
        raise ModelSignatureMismatch(f"model outputs lack {missing}")
    for name, (_, shape) in OUTPUTS.items():
        array = outputs[name]
        if array.dtype != np.float32:
            raise ModelSignatureMismatch(f"output {name} must be FP32, got {array.dtype}")
        if tuple(array.shape) != (batch, *shape):
            raise ModelSignatureMismatch(
                f"output {name} must have shape {[batch, *shape]}, got {list(array.shape)}"
            )


Dim = int | str | None  # onnxruntime reports symbolic dims as str and unknown ones as None


def validate_signature(
    inputs: Sequence[tuple[str, Sequence[Dim]]],
    outputs: Sequence[tuple[str, Sequence[Dim]]],
    input_type: str | None = None,
) -> None:
    """Raise ModelSignatureMismatch unless (name, shape) lists match the contract; batch may be symbolic.

    `input_type`, when given, is onnxruntime's type of the input (NodeArg.type) and must be
    tensor(uint8): an older export that takes FP32 is refused here, not at every request.
    """
    if [name for name, _ in inputs] != [INPUT_NAME]:
        raise ModelSignatureMismatch(
            f"model inputs must be [{INPUT_NAME!r}], got {[name for name, _ in inputs]}"
        )
    if input_type is not None and input_type != ORT_INPUT_TYPE:
        raise ModelSignatureMismatch(
            f"{INPUT_NAME} must be {INPUT_DATATYPE} ({ORT_INPUT_TYPE}), got {input_type}: "
            "convert an older FP32 export with `python -m training.export --uint8-input <model.onnx>`"
        )
    _check_dims(INPUT_NAME, inputs[0][1], IMAGE_SHAPE)
    if isinstance(inputs[0][1][0], int):
        raise ModelSignatureMismatch(
            f"{INPUT_NAME} has a fixed batch of {inputs[0][1][0]}: export a dynamic batch axis"
        )
    got = {name: shape for name, shape in outputs}
    if set(got) != set(OUTPUTS):
        raise ModelSignatureMismatch(f"model outputs must be {sorted(OUTPUTS)}, got {sorted(got)}")
    for name, (_, shape) in OUTPUTS.items():
        _check_dims(name, got[name], shape)


def _check_dims(name: str, dims: Sequence[Dim], expected: tuple[int, ...]) -> None:
    wrong_rank = len(dims) != len(expected) + 1
    if wrong_rank or any(isinstance(d, int) and d != e for d, e in zip(dims[1:], expected, strict=True)):
        raise ModelSignatureMismatch(
            f"{name} must have shape [N, {', '.join(map(str, expected))}], got {list(dims)}"
        )
