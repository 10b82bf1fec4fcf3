"""The MLLM port: one image and one challenge prompt in, the model's raw text out.

Real adapter: Triton's vLLM backend through the HTTP generate extension
(`POST /v2/models/<model>/generate`, inputs `text_input`, `image` as base64,
`sampling_parameters` as a JSON string; output `text_output`). Local adapter:
`NoVisionLanguageModel`, for deployments without the MLLM (the default model answers).
"""

from __future__ import annotations

import abc
import base64
import json
from typing import Any

import requests

from service.domain.errors import InferenceUnavailable
from service.domain.prompts import ChatPrompt, chat_text


class VlmUnavailable(InferenceUnavailable):
    """The MLLM is not deployed, not ready, or failed to answer."""

    default_code = "VLM_UNAVAILABLE"


class VisionLanguageModel(abc.ABC):
    name = "idetex_vlm"

    @abc.abstractmethod
    def generate(self, image: bytes, prompt: ChatPrompt, max_tokens: int = 2048) -> str:
        """The model's raw answer text; VlmUnavailable when it cannot answer."""

    @abc.abstractmethod
    def is_ready(self) -> bool: ...


class NoVisionLanguageModel(VisionLanguageModel):
    """No MLLM deployed (the CPU default)."""

    def generate(self, image: bytes, prompt: ChatPrompt, max_tokens: int = 2048) -> str:
        raise VlmUnavailable("no MLLM is deployed (set IDETEX_VLM_URL)")

    def is_ready(self) -> bool:
        return False


class TritonVllmModel(VisionLanguageModel):
    """An MLLM served by Triton's vLLM backend (model_repository/idetex_vlm)."""

    def __init__(
        self,
        url: str,
        model: str = "idetex_vlm",
        family: str = "qwen2-vl",
        timeout_s: float = 120.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base = url if url.startswith(("http://", "https://")) else f"http://{url}"
        self.base = self.base.rstrip("/")
        self.model = model
        self.family = family
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        chat_text(ChatPrompt("check", "", ""), family)  # an unknown family fails at start-up

    def generate(self, image: bytes, prompt: ChatPrompt, max_tokens: int = 2048) -> str:
        body: dict[str, Any] = {
            "text_input": chat_text(prompt, self.family),
            "image": [base64.b64encode(image).decode("ascii")],
            "stream": False,
            "exclude_input_in_output": True,
            "sampling_parameters": json.dumps({"temperature": 0.0, "max_tokens": max_tokens}),
        }
        try:
            resp = self.session.post(
                f"{self.base}/v2/models/{self.model}/generate", json=body, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise VlmUnavailable(f"MLLM at {self.base} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise VlmUnavailable(f"MLLM answered HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            text = resp.json()["text_output"]
        except (ValueError, KeyError, TypeError) as exc:
            raise VlmUnavailable(f"MLLM answer without text_output: {resp.text[:300]}") from exc
        if isinstance(text, list):
            text = text[0] if text else ""
        return str(text)

    def close(self) -> None:
        self.session.close()

    def is_ready(self) -> bool:
        try:
            resp = self.session.get(f"{self.base}/v2/models/{self.model}/ready", timeout=2.0)
        except requests.RequestException:
            return False
        return resp.status_code == 200
