"""Compare over gRPC on the in-process stack (real Container, fake model port): metrics and
guidance from the pixels, typed errors for bad images, UNAVAILABLE without inference."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image, ImageFilter

from service.api.gen.idetex.v1 import validation_pb2 as pb
from tests.imagefactory import random_bytes


def _photo() -> Image.Image:
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).filter(
        ImageFilter.GaussianBlur(2)
    )
    img = noise.copy()
    img.paste((240, 240, 240), (61, 53, 203, 197))
    img.paste((20, 40, 160), (251, 101, 355, 259))
    return img


def _jpeg(img: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _compare(stack, original: bytes, processed: bytes, language: str = "") -> pb.CompareResponse:
    request = pb.CompareRequest(original=original, processed=processed, language=language)
    return stack.stub.Compare(request, timeout=20, metadata=stack.auth("acme"))


def _violation(err: grpc.RpcError) -> error_details_pb2.BadRequest.FieldViolation:
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert status is not None and any(d.Unpack(bad) for d in status.details)
    return bad.field_violations[0]


def test_a_blurred_copy_reports_the_edge_sharpness_it_lost_in_both_languages(stack):
    photo = _photo()
    original, blurred = _jpeg(photo), _jpeg(photo.filter(ImageFilter.GaussianBlur(2.5)))
    english = _compare(stack, original, blurred)
    assert english.sharpness_loss_percent > 40 and english.ssim < 0.95 and english.language == "en"
    assert (english.width_original, english.height_processed) == (400, 300) and english.scale == 1.0
    sharp = next(g for g in english.guidance if g.code == "LOSS_SHARPNESS")
    assert sharp.message == (
        f"The processing step removed {english.sharpness_loss_percent:.0f}% of the edge sharpness."
    )
    german = _compare(stack, original, blurred, "de")
    assert next(g for g in german.guidance if g.code == "LOSS_SHARPNESS").message.startswith(
        "Der Verarbeitungsschritt hat "
    )


def test_a_resized_low_quality_copy_is_compared_at_the_originals_size(stack):
    photo = _photo()
    small = _jpeg(photo.resize((200, 150)), quality=10)
    response = _compare(stack, _jpeg(photo), small)
    assert (response.width_processed, response.height_processed, response.scale) == (200, 150, 0.5)
    assert response.blockiness_processed > response.blockiness_original
    assert response.psnr_db < 35 and response.ssim < 0.9
    assert {"LOSS_BLOCKING", "LOSS_SHARPNESS", "LOSS_FIDELITY"} <= {g.code for g in response.guidance}


@pytest.mark.parametrize(("field", "reason"), [("original", "NOT_AN_IMAGE"), ("processed", "EMPTY")])
def test_a_bad_image_is_invalid_argument_naming_its_field(stack, field, reason):
    good = _jpeg(_photo())
    images = {"original": good, "processed": good}
    images[field] = random_bytes() if reason == "NOT_AN_IMAGE" else b""
    with pytest.raises(grpc.RpcError) as caught:
        _compare(stack, images["original"], images["processed"])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = _violation(caught.value)
    assert (violation.field, violation.reason) == (field, reason)
    assert stack.inference.calls == 0


def test_an_unsupported_language_and_inference_down_are_typed(stack):
    good = _jpeg(_photo())
    with pytest.raises(grpc.RpcError) as caught:
        _compare(stack, good, good, "fr")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(caught.value).field == "language"
    stack.inference.ready = False
    with pytest.raises(grpc.RpcError) as caught:
        _compare(stack, good, good)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_compare_needs_an_api_key(stack):
    good = _jpeg(_photo())
    with pytest.raises(grpc.RpcError) as caught:
        stack.stub.Compare(pb.CompareRequest(original=good, processed=good), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
