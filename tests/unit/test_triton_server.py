"""Launcher helpers for the wheel's tritonserver that need no running server."""

from __future__ import annotations

import socket

import pytest

from service.adapters.triton_server import (
    STUB_NAME,
    TritonNotInstalled,
    TritonServer,
    find_distribution,
    find_free_port,
    prepare_backends,
    stage_config,
)


def test_a_free_port_can_be_bound():
    """find_free_port returns a port nobody listens on."""
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_python_version_without_a_stub_is_reported():
    """Asking for a stub the wheel does not ship raises TritonNotInstalled naming the version."""
    pytest.importorskip("pytriton")
    with pytest.raises(TritonNotInstalled, match=r"Python 2\.7"):
        find_distribution("2.7")


def test_backends_are_prepared_with_the_stub_beside_the_backend(tmp_path):
    """The writable backends dir holds libtriton_python.so, the utils module and the stub."""
    try:
        dist = find_distribution()
    except TritonNotInstalled as exc:
        pytest.skip(str(exc))
    python = prepare_backends(dist, tmp_path / "backends") / "python"
    assert {p.name for p in python.iterdir()} >= {
        "libtriton_python.so",
        "triton_python_backend_utils.py",
        STUB_NAME,
    }


def test_staging_a_named_config_makes_it_the_models_config(tmp_path):
    """stage_config copies the repository and puts configs/<name>.pbtxt in place of config.pbtxt."""
    source = tmp_path / "repo" / "m"
    (source / "configs").mkdir(parents=True)
    (source / "config.pbtxt").write_text("cpu")
    (source / "configs" / "gpu.pbtxt").write_text("gpu")
    staged = stage_config(tmp_path / "repo", "gpu", tmp_path / "staged")
    assert (staged / "m" / "config.pbtxt").read_text() == "gpu"
    assert (source / "config.pbtxt").read_text() == "cpu"


def test_staging_an_unknown_config_name_fails(tmp_path):
    """A config name no model has is an error, not a silent default."""
    (tmp_path / "repo" / "m").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"configs/tpu\.pbtxt"):
        stage_config(tmp_path / "repo", "tpu", tmp_path / "staged")


def test_a_server_gets_distinct_free_ports_and_does_nothing_until_started(tmp_path):
    """Construction picks three ports and starts no process."""
    server = TritonServer(tmp_path)
    assert len({server.http_port, server.grpc_port, server.metrics_port}) == 3
    assert server.pid is None and not server.is_running()
    server.stop()  # idempotent on a server never started
