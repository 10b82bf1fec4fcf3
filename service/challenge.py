"""`idetex challenge`: the MIPI 2025 submission files for a folder of images.

Writes `description.json`, `grounding.json` and `perception.json` in the format of the
challenge's example submission (items with `id`, `image`, `width`, `height`, the question
fields, and the model's answer text in `pred_ans`), so an operator holding the ViDA benchmark
can score them with the official scorer.

- description: one item per image; `pred_ans` is the four-step description with grounded
  boxes (the default model: the report's grounded description; the MLLM: its raw answer).
- grounding: one "distortion-detection" item per image (`pred_ans` in the per-type block
  format), plus one "region-perception" item per region question of `--regions` (a
  grounding.json of the benchmark: items with `image` and a `question` holding a box).
- perception: one item per question of `--questions` (the benchmark's mcq.json: `image`,
  `question`, `candidates`); `pred_ans` is "<letter>." or "" when the default model finds
  the question out of scope.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from service.adapters.vlm import VisionLanguageModel
from service.domain.errors import DomainError
from service.domain.imaging import DecodedImage, ImageLimits, decode_image
from service.domain.perception import answer, findings
from service.domain.prompts import description_prompt, detection_prompt, perception_prompt, region_prompt
from service.domain.report import Report, build_report
from service.domain.vlm_text import (
    Mention,
    from_pixels,
    make_box,
    parse_grounding,
    render_grounding,
    render_region_answer,
)
from service.predict import image_files, predict_batch

DETECTION_QUESTION = detection_prompt().user


@dataclass(frozen=True)
class ChallengeSummary:
    images: int
    described: int
    regions: int
    questions: int
    skipped: tuple[str, ...]
    seconds: float


def mentions_of(report: Report) -> list[Mention]:
    """The report's distortions on the 0-1000 text scale (profile-expected ones left out)."""
    w, h = report.image.width, report.image.height
    return [
        Mention(d.type, d.severity, from_pixels(d.box, w, h), f"{d.severity} {d.type.lower()}")
        for d in report.distortions
        if not d.expected
    ]


def region_mentions(found: Sequence[Mention], region: tuple[int, int, int, int]) -> list[Mention]:
    """The distortions inside a question's region, clipped to it."""
    x1, y1, x2, y2 = region
    out = []
    for m in found:
        bx1, by1, bx2, by2 = m.box
        cx1, cy1, cx2, cy2 = max(bx1, x1), max(by1, y1), min(bx2, x2), min(by2, y2)
        if cx2 > cx1 and cy2 > cy1:
            out.append(Mention(m.distortion, m.severity, make_box(cx1, cy1, cx2, cy2), m.label))
    return out


def _load_items(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of benchmark items")
    return items


class Exporter:
    """Reports (default model) or raw MLLM answers for each image, then the three files."""

    def __init__(self, inference: Any, vlm: VisionLanguageModel | None, params: Any, version: str) -> None:
        self.inference = inference
        self.vlm = vlm
        self.params = params
        self.version = version
        self.reports: dict[str, Report] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.raw: dict[str, bytes] = {}

    def add(self, batch: Sequence[tuple[str, DecodedImage, bytes]]) -> None:
        for name, image, data in batch:
            self.sizes[name] = (image.width, image.height)
            self.raw[name] = data
        if self.vlm is not None:
            return
        predictions = predict_batch(self.inference, [im for _, im, _ in batch], self.params)
        for (name, image, _), prediction in zip(batch, predictions, strict=True):
            self.reports[name] = build_report(prediction, image, "default", self.version)

    def _ask(self, name: str, prompt: Any, max_tokens: int = 2048) -> str:
        assert self.vlm is not None
        return self.vlm.generate(self.raw[name], prompt, max_tokens)

    def description(self, name: str) -> str:
        if self.vlm is not None:
            return self._ask(name, description_prompt())
        return self.reports[name].description.grounded

    def detection(self, name: str) -> str:
        if self.vlm is not None:
            return self._ask(name, detection_prompt())
        return render_grounding(mentions_of(self.reports[name]))

    def region(self, name: str, question: str) -> str:
        boxes = parse_grounding(question)
        if not boxes:
            raise ValueError(f"region question without a box: {question!r}")
        if self.vlm is not None:
            return self._ask(name, region_prompt(boxes[0].box))
        return render_region_answer(region_mentions(mentions_of(self.reports[name]), boxes[0].box))

    def perception(self, name: str, question: str, options: Sequence[str]) -> str:
        if self.vlm is not None:
            return self._ask(name, perception_prompt(question, options), 16)
        report = self.reports[name]
        a = answer(question, options, findings(report.distortions, report.image.width, report.image.height))
        return f"{a.letter}." if a.letter else ""


def export(
    images: Path,
    out: Path,
    inference: Any,
    *,
    vlm: VisionLanguageModel | None = None,
    questions: Path | None = None,
    regions: Path | None = None,
    batch_size: int = 8,
    params: Any = None,
    version: str = "",
    progress: TextIO | None = None,
) -> ChallengeSummary:
    progress = progress or sys.stderr
    started = time.monotonic()
    files = image_files(images)
    mcq, region_items = _load_items(questions), _load_items(regions)
    exporter = Exporter(inference, vlm, params, version)
    skipped: list[str] = []
    pending: list[tuple[str, DecodedImage, bytes]] = []
    limits = ImageLimits()
    for i, path in enumerate(files, 1):
        name = path.relative_to(images).as_posix()
        data = path.read_bytes()
        try:
            pending.append((name, decode_image(data, limits), data))
        except DomainError as err:
            skipped.append(name)
            print(f"skip {name}: {err.code} {err.message}", file=progress, flush=True)
        if len(pending) >= batch_size or (i == len(files) and pending):
            exporter.add(pending)
            pending = []
            print(f"[{i}/{len(files)}] images", file=progress, flush=True)

    def head(item_id: int, name: str) -> dict[str, Any]:
        w, h = exporter.sizes[name]
        return {"id": item_id, "image": name, "width": w, "height": h}

    described = sorted(exporter.sizes)
    description = [{**head(i, n), "pred_ans": exporter.description(n)} for i, n in enumerate(described)]
    grounding = [
        {
            **head(i, n),
            "question_type": "distortion-detection",
            "question": DETECTION_QUESTION,
            "pred_ans": exporter.detection(n),
        }
        for i, n in enumerate(described)
    ]
    answered_regions = 0
    for item in region_items:
        name = Path(str(item["image"])).name if item["image"] not in exporter.sizes else item["image"]
        if name not in exporter.sizes:
            continue
        grounding.append(
            {
                **head(int(item.get("id", len(grounding))), name),
                "question_type": "region-perception",
                "question": item["question"],
                "pred_ans": exporter.region(name, item["question"]),
            }
        )
        answered_regions += 1
    perception: list[dict[str, Any]] = []
    for item in mcq:
        name = Path(str(item["image"])).name if item["image"] not in exporter.sizes else item["image"]
        if name not in exporter.sizes:
            continue
        perception.append(
            {
                "id": item.get("id", len(perception)),
                "image": name,
                "concern": item.get("concern", ""),
                "question": item["question"],
                "candidates": item["candidates"],
                "pred_ans": exporter.perception(name, item["question"], item["candidates"]),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    for file_name, rows in (
        ("description.json", description),
        ("grounding.json", grounding),
        ("perception.json", perception),
    ):
        (out / file_name).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = ChallengeSummary(
        len(files),
        len(described),
        answered_regions,
        len(perception),
        tuple(skipped),
        time.monotonic() - started,
    )
    print(
        f"{summary.described}/{summary.images} images, {summary.regions} region questions, "
        f"{summary.questions} perception questions in {summary.seconds:.1f} s -> {out}",
        file=progress,
    )
    return summary


def run(
    images: Path,
    out: Path,
    *,
    model: str = "default",
    questions: Path | None = None,
    regions: Path | None = None,
    triton_url: str | None = None,
    vlm_url: str = "",
    vlm_model: str = "idetex_vlm",
    vlm_family: str = "qwen2-vl",
    params_path: str = "",
    progress: TextIO | None = None,
) -> ChallengeSummary:
    """`idetex challenge`: the default model through Triton (started from the wheel when no URL
    is given) or the MLLM through its Triton generate endpoint."""
    import contextlib

    from service.adapters.inference import TritonGrpcInference
    from service.adapters.vlm import TritonVllmModel
    from service.predict import embedded_triton

    progress = progress or sys.stderr
    params = None
    if params_path:
        from service.iqa.postprocess import load_params

        params = load_params(params_path)
    with contextlib.ExitStack() as stack:
        if model == "mllm":
            vlm = TritonVllmModel(vlm_url, vlm_model, vlm_family)
            stack.callback(vlm.close)
            return export(images, out, None, vlm=vlm, questions=questions, regions=regions, progress=progress)
        if triton_url is None:
            print("starting Triton from the nvidia-pytriton wheel ...", file=progress, flush=True)
            log_path = Path("var/logs/challenge-triton.log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            triton_url = stack.enter_context(embedded_triton(log_path))
        client = TritonGrpcInference(triton_url)
        stack.callback(client.close)
        return export(
            images,
            out,
            client,
            questions=questions,
            regions=regions,
            params=params,
            version=client.model_version(),
            progress=progress,
        )
