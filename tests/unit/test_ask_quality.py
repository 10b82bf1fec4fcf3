"""AskQuality over the real Container and gRPC server (local adapters), with and without an MLLM."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import grpc
import pytest

from service.adapters.vlm import TritonVllmModel, VisionLanguageModel, VlmUnavailable
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.prompts import ChatPrompt, chat_text, perception_prompt
from tests.imagefactory import jpeg_bytes
from tests.unit.test_grpc_api import details

TYPE_Q = "What type of distortion is present in this image?"
TYPE_OPTIONS = ["Motion blur", "Underexposure", "Noise", "Overexposure"]


class ScriptedVlm(VisionLanguageModel):
    """Answers the queued texts in order; raises VlmUnavailable when told to."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.prompts: list[ChatPrompt] = []

    def generate(self, image: bytes, prompt: ChatPrompt, max_tokens: int = 2048) -> str:
        self.prompts.append(prompt)
        text = self.answers.pop(0)
        if text is None:
            raise VlmUnavailable("scripted outage")
        return text

    def is_ready(self) -> bool:
        return True


def done_job(stack, merchant: str = "acme") -> str:
    request = pb.ValidateRequest(image=jpeg_bytes(), product_id="sku-1", mode=pb.MODE_SYNC)
    resp = stack.stub.Validate(request, timeout=10, metadata=stack.auth(merchant))
    assert resp.status == pb.JOB_STATUS_DONE
    return resp.job_id


def ask(stack, merchant: str = "acme", **fields):
    fields.setdefault("question", TYPE_Q)
    fields.setdefault("options", TYPE_OPTIONS)
    return stack.stub.AskQuality(pb.AskQualityRequest(**fields), timeout=10, metadata=stack.auth(merchant))


def test_a_question_about_a_finished_job_is_answered_from_its_report(stack):
    """The fake model finds underexposure: the default model picks B and says so."""
    job_id = done_job(stack)
    resp = ask(stack, job_id=job_id)
    assert resp.status == pb.ANSWER_STATUS_ANSWERED
    assert (resp.option_index, resp.letter, resp.option) == (1, "B", "Underexposure")
    assert resp.concern == "type" and resp.model == "idetex_lite" and resp.job_id == job_id
    assert "Underexposure was found" in resp.explanation


def test_an_inline_image_is_validated_first_then_answered(stack):
    resp = ask(stack, image=jpeg_bytes(), product_id="sku-9")
    assert resp.letter == "B" and resp.job_id
    view = stack.container.get_job(stack.merchants["acme"], resp.job_id)
    assert view.status == "DONE" and view.product_id == "sku-9"


def test_object_questions_come_back_out_of_scope_with_a_reason(stack):
    job_id = done_job(stack)
    resp = ask(
        stack,
        job_id=job_id,
        question="Which part of the image is without any distortion?",
        options=["The wooden cutting board", "The gloved hand", "The text overlay"],
    )
    assert resp.status == pb.ANSWER_STATUS_OUT_OF_SCOPE
    assert (resp.option_index, resp.letter, resp.option) == (-1, "", "")
    assert "does not recognise objects" in resp.explanation


def test_bad_questions_are_invalid_arguments(stack):
    job_id = done_job(stack)
    for fields, field in (
        ({"options": ["Noise"]}, "options"),
        ({"question": "  "}, "question"),
        ({"options": ["Noise", ""]}, "options"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            ask(stack, job_id=job_id, **fields)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(err.value)["BadRequest"].field_violations[0].field == field
    with pytest.raises(grpc.RpcError) as err:
        ask(stack)  # neither job_id nor image
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_another_merchants_job_is_not_found(stack):
    job_id = done_job(stack, "acme")
    with pytest.raises(grpc.RpcError) as err:
        ask(stack, "globex", job_id=job_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_job_not_done_yet_is_a_failed_precondition_naming_it(stack):
    stack.publisher.hold()
    request = pb.ValidateRequest(image=jpeg_bytes(), product_id="sku-2", mode=pb.MODE_ASYNC)
    job_id = stack.stub.Validate(request, timeout=10, metadata=stack.auth()).job_id
    with pytest.raises(grpc.RpcError) as err:
        ask(stack, job_id=job_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(err.value)["ErrorInfo"]
    assert info.reason == "JOB_NOT_DONE" and info.metadata["job_id"] == job_id
    stack.publisher.release()


def test_the_mllm_answers_through_the_perception_prompt_when_chosen(stack):
    job_id = done_job(stack)  # reported by the default model
    vlm = ScriptedVlm("C.<|im_end|>")
    stack.container.deps.vlm, stack.container.deps.model_choice = vlm, "mllm"
    resp = ask(stack, job_id=job_id)
    assert (resp.model, resp.letter, resp.option) == ("idetex_vlm", "C", "Noise")
    assert resp.prompt_version == "mipi2025-v1"
    assert vlm.prompts == [perception_prompt(TYPE_Q, TYPE_OPTIONS)]


@pytest.mark.parametrize("reply,why", [(None, "unavailable"), ("I cannot tell.", "names no option")])
def test_the_default_model_answers_when_the_mllm_cannot(stack, reply, why):
    job_id = done_job(stack)
    stack.container.deps.vlm, stack.container.deps.model_choice = ScriptedVlm(reply), "both"
    resp = ask(stack, job_id=job_id)
    assert (resp.model, resp.letter) == ("idetex_lite", "B")
    assert why in resp.explanation


# ---------------------------------------------------------------- the Triton vLLM adapter


class _GenerateHandler(BaseHTTPRequestHandler):
    """Triton's generate endpoint as the vLLM backend answers it: text_output for text_input."""

    seen: ClassVar[list[dict]] = []
    status = 200

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, **body})
        reply = json.dumps({"model_name": "idetex_vlm", "text_output": "B."}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):
        self.send_response(200 if self.path == "/v2/models/idetex_vlm/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def generate_server():
    _GenerateHandler.seen, _GenerateHandler.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GenerateHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_triton_vllm_adapter_sends_the_chat_text_image_and_sampling_parameters(generate_server):
    vlm = TritonVllmModel(generate_server, family="qwen2-vl")
    prompt = perception_prompt(TYPE_Q, TYPE_OPTIONS)
    try:
        assert vlm.generate(b"\xff\xd8image", prompt, max_tokens=16) == "B."
        assert vlm.is_ready()
    finally:
        vlm.close()
    (sent,) = _GenerateHandler.seen
    assert sent["path"] == "/v2/models/idetex_vlm/generate"
    assert sent["text_input"] == chat_text(prompt, "qwen2-vl")
    assert base64.b64decode(sent["image"][0]) == b"\xff\xd8image"
    assert json.loads(sent["sampling_parameters"]) == {"temperature": 0.0, "max_tokens": 16}


def test_triton_vllm_adapter_errors_are_unavailable(generate_server):
    _GenerateHandler.status = 500
    failing, unreachable = TritonVllmModel(generate_server), TritonVllmModel("127.0.0.1:9", timeout_s=1)
    try:
        with pytest.raises(VlmUnavailable, match="HTTP 500"):
            failing.generate(b"x", perception_prompt(TYPE_Q, TYPE_OPTIONS))
        with pytest.raises(VlmUnavailable, match="unreachable"):
            unreachable.generate(b"x", perception_prompt(TYPE_Q, TYPE_OPTIONS))
        assert not unreachable.is_ready()
    finally:
        failing.close()
        unreachable.close()


def test_chat_text_follows_each_family_template():
    prompt = ChatPrompt("detection", "SYS", "USER")
    assert chat_text(prompt, "qwen2-vl") == (
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>USER<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "<image>\nUSER" in chat_text(prompt, "internvl")
    with pytest.raises(ValueError):
        chat_text(prompt, "llava")
