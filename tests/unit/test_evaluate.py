"""`python -m training.evaluate` end to end on a tiny evaluation set, and its report pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from training.evaluate import (
    CARD_BEGIN,
    CARD_END,
    load_eval_set,
    markdown_report,
    parse_args,
    run,
    targets_check,
    update_model_card,
)

OPENCV_DOC = Path(__file__).resolve().parents[2] / "var" / "sources" / "opencv-doc"


def _scene(seed: int, width: int = 320, height: int = 240) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 120, dtype=np.float64)
    for _ in range(25):
        x, y = rng.integers(0, width - 10), rng.integers(0, height - 10)
        img[y : y + rng.integers(8, 80), x : x + rng.integers(8, 80)] = rng.integers(40, 210, size=3)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[:, :, ::-1])


def _entry(kind: str, box: list[int]) -> dict[str, Any]:
    return {"distortion": kind, "severity": "moderate", "coordinates": box}


def tiny_eval_set(root: Path) -> Path:
    """Three labelled images (as training.generate lays them out) and one ranking series."""
    clean = _scene(0)
    blurred = cv2.GaussianBlur(clean, (0, 0), 4.0)
    dark = (clean * 0.2).astype(np.uint8)
    labels = []
    for name, rgb, dists, grade, mos in (
        ("images/eval_0000.png", clean, [], "excellent", 4.8),
        ("images/eval_0001.png", blurred, [_entry("Out of focus blur", [0, 0, 320, 240])], "poor", 2.2),
        ("images/eval_0002.png", dark, [_entry("Underexposure", [0, 0, 320, 240])], "bad", 1.5),
    ):
        _save(root / name, rgb)
        labels.append(
            {
                "image": name,
                "width": 320,
                "height": 240,
                "distortions": dists,
                "key_distortions": dists,
                "image_quality": grade,
                "mos": mos,
                "fine_level": "e",
            }
        )
    ranking = []
    for rank, sigma in enumerate((1.0, 2.5, 5.0), start=1):
        name = f"ranking/g000_{rank}.png"
        _save(root / name, cv2.GaussianBlur(_scene(1), (0, 0), sigma))
        ranking.append({"group": 0, "image": name, "distortion": "Out of focus blur", "strength_rank": rank})
    (root / "labels.json").write_text(json.dumps(labels))
    (root / "ranking.json").write_text(json.dumps(ranking))
    return root


def test_eval_set_paths_resolve_relative_to_the_eval_dir(tmp_path: Path) -> None:
    """'images/x.png' and 'ranking/y.png' are found as training.generate writes them."""
    inputs = load_eval_set(tiny_eval_set(tmp_path))
    assert inputs.label_paths["images/eval_0001.png"] == tmp_path / "images" / "eval_0001.png"
    assert inputs.ranking_paths["ranking/g000_3.png"].is_file()


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    """A label whose file is absent names the file."""
    root = tiny_eval_set(tmp_path)
    (root / "images" / "eval_0002.png").unlink()
    with pytest.raises(FileNotFoundError, match="eval_0002"):
        load_eval_set(root)


def _metrics(dmap: float, f1: float) -> dict[str, Any]:
    per_type = {
        k: {"ap": dmap, "localisation": {"f1": f1}, "presence": {"f1": f1}}
        for k in (
            "Noise",
            "Motion blur",
            "Out of focus blur",
            "Underexposure",
            "Overexposure",
            "Blocking artifacts",
        )
    }
    return {"distortion_map": dmap, "per_type": per_type, "srcc": 0.5}


def test_targets_compare_the_model_with_the_better_baseline() -> None:
    """The ranking margin is measured against the best baseline; F1 targets per listed type."""
    results = {
        "metrics": {"model": _metrics(0.7, 0.9), "heuristic": _metrics(0.1, 0.2), "brisque": _metrics(0, 0)},
        "ranking": {
            "model": {"accuracy": 0.96},
            "heuristic": {"accuracy": 0.80},
            "brisque": {"accuracy": 0.9},
        },
    }
    checks = targets_check(results)
    assert checks["distortion_map"]["ok"] and checks["f1 Noise"]["ok"] and checks["ranking"]["ok"]
    margin = checks["ranking margin over best baseline"]
    assert margin["value"] == pytest.approx(0.06) and not margin["ok"]


def test_model_card_block_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    """Only the text between the markers changes; a card without markers is left alone."""
    card = tmp_path / "card.md"
    card.write_text(f"# Card\n## Evaluation\nprose\n{CARD_BEGIN}\nold\n{CARD_END}\nafter\n")
    assert update_model_card(card, "| new |")
    text = card.read_text()
    assert "old" not in text and "| new |" in text and text.startswith("# Card") and text.endswith("after\n")
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers\n")
    assert not update_model_card(plain, "x") and plain.read_text() == "# no markers\n"


def _opencv_doc_like(root: Path) -> Path:
    """The two files evaluate reads from opencv-doc: BRISQUE (committed copy) and the real blurred photos."""
    import shutil

    from training.baselines import BUNDLED_BRISQUE

    root.mkdir(parents=True)
    photos = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
    for f in [*BUNDLED_BRISQUE.glob("*.yml"), photos / "text_defocus.jpg", photos / "text_motion.jpg"]:
        shutil.copy(f, root / f.name)
    return root


def test_run_writes_results_tables_and_plots(tmp_path: Path) -> None:
    """A contract-shaped ONNX, both baselines, all metrics, the markdown and two PNGs."""
    from tests.support.dev_onnx import build_dev_onnx

    model = build_dev_onnx(tmp_path / "model.onnx")
    root = tiny_eval_set(tmp_path / "eval")
    args = parse_args(
        [
            "--eval-dir",
            str(root),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "out"),
            "--img-dir",
            str(tmp_path / "img"),
            "--opencv-doc",
            str(OPENCV_DOC if OPENCV_DOC.exists() else _opencv_doc_like(tmp_path / "opencv-doc")),
            "--batch-size",
            "2",
            "--model-card",
            str(tmp_path / "card.md"),
        ]
    )
    with open(tmp_path / "log.txt", "w") as log:
        results = run(args, progress=log)
    assert results["images"] == 3 and results["ranking_images"] == 3
    assert set(results["metrics"]) == {"model", "heuristic", "brisque"}
    assert results["metrics"]["brisque"]["distortion_map"] == 0.0
    assert results["ranking"]["heuristic"]["pairs"] == 3
    assert 0.0 <= results["ranking"]["heuristic"]["accuracy"] <= 1.0
    assert set(results["real_photos"]) == {"text_defocus.jpg", "text_motion.jpg"}
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["targets"] == results["targets"]
    assert "| Distortion mAP@0.5 (official rule) |" in (tmp_path / "out" / "results.md").read_text()
    assert len(json.loads((tmp_path / "out" / "preds_model.json").read_text())) == 3
    for png in ("eval_per_type_f1.png", "eval_examples.png"):
        assert (tmp_path / "img" / png).stat().st_size > 10_000
    assert markdown_report(results).count("\n") > 20
