"""The MIPI 2025 (ViDA-UGC) challenge prompts, as versioned templates.

An MLLM fine-tuned on ViDA-UGC (Qwen2-VL-ViDA, an iDetex-style InternVL3) answers in the
expected format only when asked exactly as in training, so these strings are an interface,
kept verbatim: the four-step system prompt is the one of the challenge's description
script (DYEvaLab/ViDA-MIPI-code, Apache-2.0). A change of wording is a new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.domain.prediction import Box
from service.domain.vlm_text import box_tokens

PROMPT_VERSION = "mipi2025-v1"

SYSTEM = "You are an expert in image quality assessment."

DETECTION = "Please provide the bounding box coordinates of all distortions in the image."

REGION = "What distortion affects this region {box}?"

DESCRIPTION = "Please evaluate the image quality in detail and provide your reasons."

DESCRIPTION_SYSTEM = (
    "You are an expert in image quality assessment. Your task is to assess the overall quality of "
    "the provided image.\n"
    "To assess the image quality, you should think step by step.\n"
    "First step, provide a brief description of the image content.\n"
    "Second step, find distortions and analyze their impact on specific regions.\n"
    "- If there is no distortion present in the image, focus solely on what you observe in the image "
    "and describe the image's visual aspects, such as visibility, detail discernment, clarity, "
    "brightness, lighting, composition, and texture.\n"
    "- If distortions are present, identify the distortions and briefly analyze each occurrence of "
    "every distortion type. Explain how each distortion affects the visual appearance and perception "
    "of specific objects or regions in the image. Find each distortion with grounding, which means in "
    "the response you should directly output the bounding box coordinates after identifying the "
    "distortions. The bounding box coordinates should be in the format (x1,y1),(x2,y2), where (x1,y1) "
    "is the top-left corner and (x2,y2) is the bottom-right corner. All coordinates are normalized to "
    "the range of 0 to 1000.\n"
    "Third step, analyze the overall image quality and visual perception. If distortions are present, "
    "identify the key distortions that have the most significant impact on the overall image quality. "
    "Provide detailed reasoning about how these key distortions affect the image's overall visual "
    "perception, especially regarding low-level features like sharpness, clarity, and detail. Combine "
    "the analysis of key degradations and low-level attributes into a cohesive paragraph.\n"
    "Final step, conclude your answer with this sentence: Thus, the quality of the image is (one of "
    "the following five quality levels: bad, poor, fair, good, excellent).\n"
    "Separate each step with a line break."
)

PERCEPTION = (
    "{question}\n{options}\n"
    "Answer with a single option's letter (A, B, C, ...) from the given choices directly."
)


@dataclass(frozen=True)
class ChatPrompt:
    """One turn for the model: system text, user text (the image goes beside the user text)."""

    task: str  # detection | region | description | perception
    system: str
    user: str
    version: str = PROMPT_VERSION


def detection_prompt() -> ChatPrompt:
    return ChatPrompt("detection", SYSTEM, DETECTION)


def region_prompt(box: Box) -> ChatPrompt:
    """``box`` on the 0-1000 scale of the text format."""
    return ChatPrompt("region", SYSTEM, REGION.format(box=box_tokens(box)))


def description_prompt() -> ChatPrompt:
    return ChatPrompt("description", DESCRIPTION_SYSTEM, DESCRIPTION)


def perception_prompt(question: str, options: Sequence[str]) -> ChatPrompt:
    if not 2 <= len(options) <= 26:
        raise ValueError(f"a multiple-choice question needs 2 to 26 options, got {len(options)}")
    lines = "\n".join(f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(options))
    return ChatPrompt("perception", SYSTEM, PERCEPTION.format(question=question.strip(), options=lines))


FAMILIES = ("qwen2-vl", "internvl")


def chat_text(prompt: ChatPrompt, family: str = "qwen2-vl") -> str:
    """The prompt in the model family's chat format, with the image placeholder before the question
    (as the challenge's scripts build it with the processors' chat templates)."""
    if family == "qwen2-vl":
        return (
            f"<|im_start|>system\n{prompt.system}<|im_end|>\n"
            f"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{prompt.user}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
    if family == "internvl":
        return (
            f"<|im_start|>system\n{prompt.system}<|im_end|>\n"
            f"<|im_start|>user\n<image>\n{prompt.user}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
    raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
