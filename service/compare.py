"""Pipeline loss analysis as a service call: decode both images, one model call for the pair,
the comparison (service.domain.loss).

Synchronous in the calling process over the inference port (the API's own Triton client): a
comparison is two images and one batched inference, nothing is stored, so a job, a queue and a
report row would add latency and state without adding reliability. Inference down raises
InferenceUnavailable (UNAVAILABLE); a bad image raises BadImage / ImageTooLarge naming the field
(`original` or `processed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.deps import Deps
from service.domain import loss
from service.domain.errors import BadImage, ImageTooLarge
from service.domain.imaging import DecodedImage, decode_image
from service.domain.prediction import Prediction
from service.iqa.postprocess import postprocess
from service.iqa.preprocess import stack, to_model_input

FIELDS = ("original", "processed")


@dataclass(frozen=True)
class CompareImages:
    original: bytes
    processed: bytes
    language: str = "en"  # resolved by service.domain.i18n.resolve_language


def decode_as(deps: Deps, data: bytes, field: str) -> DecodedImage:
    """`decode_image` at full resolution (blockiness needs the encoder's own 8x8 grid), with
    errors that name the request field."""
    try:
        return decode_image(data, deps.limits)
    except BadImage as err:
        raise BadImage(err.reason, f"{field}: {err.message}", field=field) from err
    except ImageTooLarge as err:
        raise ImageTooLarge(
            f"{field}: {err.message}", limit=err.limit, actual=err.actual, field=field
        ) from err


def predict_pair(deps: Deps, first: DecodedImage, second: DecodedImage) -> tuple[Prediction, Prediction]:
    """The model's findings for both images in one batch; boxes in each image's own frame."""
    batch = stack([to_model_input(first.rgb), to_model_input(second.rgb)])
    outputs = deps.inference.infer(batch)
    predictions = []
    for i, image in enumerate((first, second)):
        item = {name: np.asarray(value)[i] for name, value in outputs.items()}
        if deps.postprocess_params is None:
            predictions.append(postprocess(item, image.width, image.height))
        else:
            predictions.append(postprocess(item, image.width, image.height, params=deps.postprocess_params))
    return predictions[0], predictions[1]


def compare_images(deps: Deps, cmd: CompareImages) -> loss.Comparison:
    """What the processing step from `original` to `processed` lost or added."""
    original = decode_as(deps, cmd.original, "original")
    processed = decode_as(deps, cmd.processed, "processed")
    before, after = predict_pair(deps, original, processed)
    return loss.compare(original.rgb, processed.rgb, before, after, cmd.language)
