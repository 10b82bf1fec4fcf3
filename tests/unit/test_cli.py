"""The `idetex` console script: parsing, the check/report client, merchants, migrate, eval, predict."""

from __future__ import annotations

import json
import re

import pytest

from service import cli, serve
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.bootstrap import build
from service.predict import predict_folder
from service.settings import Settings
from tests.imagefactory import gradient, jpeg_bytes, png_bytes, random_bytes
from tests.support.api_stack import ContractInference, running_api

KiB = 1024


def test_parser_knows_every_command():
    """serve, check, report, merchant create, predict, eval and migrate parse."""
    parser = cli.build_parser()
    assert parser.parse_args(["serve"]).func is cli.cmd_serve
    check = parser.parse_args(["check", "a.jpg", "b.png", "--profile", "ebay", "--json"])
    assert check.func is cli.cmd_check and len(check.images) == 2 and check.profile == "ebay" and check.json
    assert parser.parse_args(["merchant", "create", "shop", "--webhook-url", "https://x"]).func is (
        cli.cmd_merchant_create
    )
    predict = parser.parse_args(["predict", "--images", "d", "--out", "p.json"])
    assert predict.func is cli.cmd_predict and predict.triton_url is None
    assert parser.parse_args(["eval", "--preds", "p", "--labels", "l"]).func is cli.cmd_eval
    assert parser.parse_args(["migrate"]).func is cli.cmd_migrate
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_check_prints_a_readable_report(stack, tmp_path, capsys):
    """`idetex check IMAGE` prints grade, verdict, each distortion with its box, and guidance."""
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg_bytes(gradient(640, 480)))
    status = cli.main(["check", str(image), "--addr", stack.address, "--api-key", stack.keys["acme"]])
    out = capsys.readouterr().out
    assert status == 0
    assert "DONE" in out and "grade fair" in out and "verdict" in out
    assert re.search(r"moderate Underexposure at \(\d+,\d+\)-\(\d+,\d+\)", out), out
    assert "guidance:" in out


def test_check_json_prints_one_object_per_image(stack, tmp_path, capsys):
    """`--json` prints a JSON list with the job and report of each image."""
    paths = []
    for i in range(2):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(png_bytes(gradient(300 + i, 200)))
        paths.append(str(path))
    status = cli.main(["check", *paths, "--json", "--addr", stack.address, "--api-key", stack.keys["acme"]])
    results = json.loads(capsys.readouterr().out)
    assert status == 0 and [r["image"] for r in results] == paths
    assert all(r["status"] == "JOB_STATUS_DONE" and r["report"]["grade"] == "fair" for r in results)


def test_check_explains_a_bad_image_and_exits_nonzero(stack, tmp_path, capsys):
    """A bad file prints the status code and the field violation, and the exit status is 1."""
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(random_bytes())
    status = cli.main(["check", str(bad), "--addr", stack.address, "--api-key", stack.keys["acme"]])
    err = capsys.readouterr().err
    assert status == 1
    assert "INVALID_ARGUMENT" in err and "image: NOT_AN_IMAGE" in err


def test_check_streams_files_above_the_unary_limit(tmp_path, capsys, monkeypatch):
    """A file above the unary limit goes through UploadImage and still gets its report."""
    monkeypatch.setenv("IDETEX_UNARY_LIMIT_BYTES", str(64 * KiB))
    with running_api(tmp_path / "server", unary_limit_bytes=64 * KiB) as stack:
        image = tmp_path / "big.png"
        image.write_bytes(png_bytes(gradient(900, 700)))
        assert image.stat().st_size > 64 * KiB
        status = cli.main(["check", str(image), "--addr", stack.address, "--api-key", stack.keys["acme"]])
    assert status == 0 and "900x700" in capsys.readouterr().out


def test_report_fetches_a_job_by_id(stack, capsys):
    """`idetex report JOB` prints the stored report."""
    job = stack.stub.Validate(pb.ValidateRequest(image=jpeg_bytes()), metadata=stack.auth(), timeout=10)
    status = cli.main(
        ["report", job.job_id, "--json", "--addr", stack.address, "--api-key", stack.keys["acme"]]
    )
    assert status == 0 and json.loads(capsys.readouterr().out)["job_id"] == job.job_id


def test_check_without_any_api_key_says_how_to_get_one(in_tmp, capsys):
    """No --api-key, no IDETEX_API_KEY and no var/dev-api-key -> a clear message."""
    (in_tmp / "a.jpg").write_bytes(jpeg_bytes())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "a.jpg", "--addr", "127.0.0.1:1"])
    assert "API key" in str(exit_info.value.code)


def test_merchant_create_prints_an_id_and_a_working_key(in_tmp, capsys):
    """`idetex merchant create NAME` migrates if needed and prints a key that authenticates."""
    assert cli.main(["merchant", "create", "Blue Shoes"]) == 0
    out = capsys.readouterr().out
    found = dict(re.findall(r"^(merchant_id|api_key): (\S+)$", out, re.MULTILINE))
    merchant_id, api_key = found["merchant_id"], found["api_key"]
    container = build(Settings())
    try:
        assert container.authenticate(api_key) == merchant_id
    finally:
        container.close()
    assert (in_tmp / "var" / "idetex.db").is_file()


def test_migrate_creates_the_database_under_var(in_tmp, capsys):
    """`idetex migrate` creates var/ and the SQLite schema."""
    assert cli.main(["migrate"]) == 0
    assert (in_tmp / "var" / "idetex.db").is_file()
    assert "head" in capsys.readouterr().out


def test_eval_prints_the_challenge_metrics(tmp_path, capsys):
    """`idetex eval --json` scores predictions against labels with service.iqa.metrics."""
    item = {
        "image": "a.jpg",
        "distortions": [{"distortion": "Noise", "severity": "slight", "coordinates": [0, 0, 10, 10]}],
        "key_distortions": [{"distortion": "Noise", "severity": "slight", "coordinates": [0, 0, 10, 10]}],
        "image_quality": "good",
    }
    preds, labels = tmp_path / "preds.json", tmp_path / "labels.json"
    preds.write_text(json.dumps([item]))
    labels.write_text(json.dumps([item]))
    assert cli.main(["eval", "--preds", str(preds), "--labels", str(labels), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert isinstance(metrics, dict) and metrics
    perfect = [v for k, v in metrics.items() if "quality" in k and isinstance(v, float)]
    assert perfect and max(perfect) == pytest.approx(1.0)


def test_predict_writes_one_prediction_per_readable_image(tmp_path):
    """predict_folder decodes, infers in batches, writes Prediction.to_json items; skips bad files."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.jpg").write_bytes(jpeg_bytes(gradient(320, 240)))
    (images / "sub" / "b.png").write_bytes(png_bytes(gradient(200, 300)))
    (images / "broken.jpg").write_bytes(random_bytes())
    (images / "readme.txt").write_text("not an image")
    out = tmp_path / "preds.json"
    with (tmp_path / "progress.txt").open("w") as progress:
        summary = predict_folder(images, out, ContractInference(), batch_size=2, progress=progress)
    items = json.loads(out.read_text())
    assert summary.images == 3 and summary.predicted == 2 and summary.skipped == ("broken.jpg",)
    assert [i["image"] for i in items] == ["a.jpg", "sub/b.png"]
    assert (items[1]["width"], items[1]["height"]) == (200, 300)
    assert items[0]["image_quality"] == "fair"
    assert {d["distortion"] for d in items[0]["distortions"]} == {"Underexposure"}


def test_serve_makes_a_dev_key_once_and_reuses_it(in_tmp):
    """In development, serve stores a dev merchant's key in var/dev-api-key and reuses it."""
    settings = Settings()
    serve.prepare(settings)
    container = build(settings)
    try:
        first = serve.dev_api_key(container, settings)
        second = serve.dev_api_key(container, settings)
        assert first and first == second == (in_tmp / "var" / "dev-api-key").read_text().strip()
        assert container.authenticate(first)
        assert (
            serve.dev_api_key(container, Settings(environment="production", api_key_pepper="x" * 32)) is None
        )
    finally:
        container.close()


def test_serve_starts_triton_only_without_an_external_url():
    """An IDETEX_TRITON_URL (or TRITON_URL) means an external Triton: none is started."""
    assert serve.wants_embedded_triton({})
    assert not serve.wants_embedded_triton({"IDETEX_TRITON_URL": "triton:8001"})
    assert not serve.wants_embedded_triton({"TRITON_URL": "triton:8001"})


def test_serve_parses_the_embedded_triton_ports():
    """--triton-ports takes HTTP,GRPC,METRICS; 0 means a free port; anything else is refused."""
    assert serve.parse_ports("8000,8001,8002") == (8000, 8001, 8002)
    assert serve.parse_ports("0,0,0") == (0, 0, 0)
    for bad in ("8000,8001", "a,b,c", "1,2,70000"):
        with pytest.raises(ValueError):
            serve.parse_ports(bad)


def test_serve_limits_native_thread_pools_of_the_worker(monkeypatch):
    """The worker's OpenMP/OpenBLAS/MKL pools get IDETEX_WORKER_NATIVE_THREADS threads."""
    for name in serve.NATIVE_THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    assert serve.native_thread_env(1) == {
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def test_native_thread_variables_already_set_win(monkeypatch):
    """An operator's own OMP_NUM_THREADS is kept; 0 keeps every library default."""
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    env = serve.native_thread_env(2)
    assert "OMP_NUM_THREADS" not in env
    assert env["OPENBLAS_NUM_THREADS"] == "2"
    assert serve.native_thread_env(0) == {}
