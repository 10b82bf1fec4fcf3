"""deploy/ manifests parse and hang together (no cluster or Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _k8s_docs() -> list[dict]:
    docs: list[dict] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_every_kubernetes_document_has_kind_version_and_name():
    """Each k8s document names its apiVersion, kind and metadata.name."""
    docs = _k8s_docs()
    assert len(docs) >= 8
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_workload_selectors_match_their_pod_labels(kind):
    """A Deployment/StatefulSet whose selector misses its pod labels would never become ready."""
    for doc in (d for d in _k8s_docs() if d["kind"] == kind):
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]


def test_every_service_selects_an_existing_workload():
    """Services route to pods some workload in the manifests creates."""
    docs = _k8s_docs()
    workloads = [d for d in docs if "template" in d.get("spec", {})]
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads]
    for svc in (d for d in docs if d["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= lbl.items() for lbl in pod_labels), svc["metadata"]["name"]


def test_triton_runs_the_gpu_config_on_a_gpu_node():
    """The GPU deployment asks for a GPU and selects configs/gpu.pbtxt."""
    triton = next(d for d in _k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == "triton")
    container = triton["spec"]["template"]["spec"]["containers"][0]
    assert "--model-config-name=gpu" in container["command"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert (DEPLOY.parent / "model_repository/idetex_lite/configs/gpu.pbtxt").exists()


def test_compose_defines_the_scale_out_services():
    """docker-compose has API, worker, Redis, PostgreSQL and a GPU Triton."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "redis", "postgres", "triton"} <= services.keys()
    gpu = services["triton"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert "gpu" in gpu["capabilities"]
    # the workers share the API's configuration (plus their own metrics folder)
    assert services["api"]["environment"].items() <= services["worker"]["environment"].items()
