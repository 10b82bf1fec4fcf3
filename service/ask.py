"""AskQuality: a multiple-choice quality question about a finished job.

With the MLLM deployed and chosen (IDETEX_MODEL_CHOICE mllm or both), the question goes to
it through the challenge's perception prompt and its letter is parsed; if it is unavailable
or its answer names no option, the default model answers from the stored report, and the
result says which model answered and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from service.deps import Deps
from service.domain.errors import InferenceUnavailable, InvalidRequest, JobNotDone
from service.domain.perception import PerceptionAnswer, answer, findings
from service.domain.prompts import PROMPT_VERSION, perception_prompt
from service.domain.vlm_text import parse_choice
from service.handlers import get_job
from service.iqa.contract import MODEL_NAME

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 4000
MAX_OPTION_CHARS = 500


@dataclass(frozen=True)
class AskResult:
    job_id: str
    answer: PerceptionAnswer
    model: str  # idetex_lite | idetex_vlm
    prompt_version: str = ""


def check_question(question: str, options: Sequence[str]) -> None:
    if not question.strip():
        raise InvalidRequest("question", "MISSING", "the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequest("question", "TOO_LONG", f"the question is over {MAX_QUESTION_CHARS} characters")
    if not 2 <= len(options) <= 26:
        raise InvalidRequest("options", "COUNT", f"send 2 to 26 options, not {len(options)}")
    if any(not o.strip() or len(o) > MAX_OPTION_CHARS for o in options):
        raise InvalidRequest("options", "INVALID", f"every option needs 1 to {MAX_OPTION_CHARS} characters")


def ask_quality(
    deps: Deps, merchant_id: str, job_id: str, question: str, options: Sequence[str]
) -> AskResult:
    check_question(question, options)
    view = get_job(deps, merchant_id, job_id)  # NotFound for another merchant's job
    if view.status != "DONE" or view.report is None:
        raise JobNotDone(f"job {job_id} is {view.status}: ask again once it is DONE", job_id=job_id)
    fallback_note = ""
    with deps.uow() as uow:
        merchant = uow.repo.merchant(merchant_id)
        choice = deps.choose_model(merchant.model_choice if merchant else None, view.profile)
    if choice in ("mllm", "both"):
        try:
            text = deps.vlm.generate(
                deps.blobs.get(view.original_uri), perception_prompt(question, options), 16
            )
        except InferenceUnavailable as exc:
            log.warning("AskQuality on job %s: MLLM unavailable (%s); the default model answers", job_id, exc)
            fallback_note = " (the MLLM was unavailable; the default model answered)"
        else:
            index = parse_choice(text, len(options))
            if index is not None:
                return AskResult(
                    job_id,
                    PerceptionAnswer("ANSWERED", None, index, f"the MLLM answered {text.strip()[:80]!r}"),
                    deps.vlm.name,
                    PROMPT_VERSION,
                )
            fallback_note = (
                f" (the MLLM's answer {text.strip()[:80]!r} names no option; the default model answered)"
            )
    report = view.report
    found = findings(report.distortions, report.image.width, report.image.height)
    result = answer(question, options, found)
    if fallback_note:
        result = PerceptionAnswer(
            result.status, result.concern, result.index, result.explanation + fallback_note
        )
    return AskResult(job_id, result, MODEL_NAME)
