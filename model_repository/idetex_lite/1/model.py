"""Triton Python-backend model: runs model.onnx (beside this file) with onnxruntime on the CPU.

Thin on purpose (STYLE.md §8): load in `initialize`, one response per request, a per-request
TritonError for a bad input. Checks live in service.iqa.validate (pure, unit-tested); the
launcher (service.adapters.triton_server) puts the repository root on PYTHONPATH.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from service.iqa.contract import INPUT_NAME, OUTPUT_NAMES
from service.iqa.errors import InvalidModelInput
from service.iqa.validate import validate_image_batch, validate_outputs, validate_signature

DEFAULT_INTRA_OP_THREADS = 2


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        import onnxruntime as ort

        config = json.loads(args["model_config"])
        threads = _int_parameter(config, "INTRA_OP_THREADS", DEFAULT_INTRA_OP_THREADS)
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        if not path.is_file():
            raise pb_utils.TritonModelException(f"{path} is missing: export the model first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-wait between requests: the stub shares its cores with the API and the workers
        spin = _int_parameter(config, "ALLOW_SPINNING", 0)
        options.add_session_config_entry("session.intra_op.allow_spinning", str(spin))
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        validate_signature(
            [(i.name, i.shape) for i in self.session.get_inputs()],
            [(o.name, o.shape) for o in self.session.get_outputs()],
            input_type=self.session.get_inputs()[0].type,
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Validate each request, run the valid ones as one onnxruntime batch, answer each request."""
        images: list[np.ndarray | None] = []
        errors: list[str | None] = []
        for request in requests:
            try:
                array = pb_utils.get_input_tensor_by_name(request, INPUT_NAME).as_numpy()
                images.append(validate_image_batch(array, max_batch=None))
                errors.append(None)
            except InvalidModelInput as exc:
                images.append(None)
                errors.append(str(exc))
        valid = [image for image in images if image is not None]
        try:
            outputs = self._run(np.concatenate(valid)) if valid else {}
        except Exception as exc:  # a model failure fails this batch's requests, not the server
            message = f"inference failed: {exc}"
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(message)) for _ in requests]
        responses, start = [], 0
        for image, error in zip(images, errors, strict=True):
            if image is None:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(error)))
                continue
            stop = start + image.shape[0]
            tensors = [pb_utils.Tensor(name, outputs[name][start:stop]) for name in OUTPUT_NAMES]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        outputs = {name: np.ascontiguousarray(v) for name, v in zip(OUTPUT_NAMES, values, strict=True)}
        validate_outputs(outputs, batch.shape[0])
        return outputs

    def finalize(self) -> None:
        del self.session


def _int_parameter(config: dict[str, Any], key: str, default: int) -> int:
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    return int(value) if value.strip() else default
