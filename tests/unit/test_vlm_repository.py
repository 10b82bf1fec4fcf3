"""model_repository/idetex_vlm: a valid Triton config for the vLLM backend and a usable model.json."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from service.settings import Settings

MODEL_DIR = Path(__file__).resolve().parents[2] / "model_repository" / "idetex_vlm"


def test_vlm_config_names_the_vllm_backend_with_one_model_instance():
    config = text_format.Parse((MODEL_DIR / "config.pbtxt").read_text(), mc.ModelConfig())
    assert config.name == "idetex_vlm" == Settings().vlm_model
    assert config.backend == "vllm"
    assert [(g.count, g.kind) for g in config.instance_group] == [(1, mc.ModelInstanceGroup.KIND_MODEL)]


def test_model_json_has_the_weights_path_memory_fraction_and_one_image_per_prompt():
    engine = json.loads((MODEL_DIR / "1" / "model.json").read_text())
    assert engine["model"].startswith("/weights/")
    assert 0.1 <= engine["gpu_memory_utilization"] <= 0.95
    assert engine["limit_mm_per_prompt"] == {"image": 1}
    assert engine["max_model_len"] >= 4096  # the four-step descriptions run to ~1,000 tokens


def test_the_cpu_launcher_loads_only_the_default_model():
    from service.adapters.triton_server import TritonServer
    from service.iqa.contract import MODEL_NAME

    assert TritonServer(MODEL_DIR.parent).models == (MODEL_NAME,)
