"""`idetex check --language`, `idetex compare` and `idetex merchant set-policy/show-policy`."""

from __future__ import annotations

import io
import json
import re

from PIL import Image, ImageFilter

from service import cli
from tests.imagefactory import gradient, jpeg_bytes


def test_check_in_german_prints_german_guidance(stack, tmp_path, capsys):
    image = tmp_path / "dark.jpg"
    image.write_bytes(jpeg_bytes(gradient(640, 480)))
    args = ["check", str(image), "--language", "de", "--addr", stack.address, "--api-key", stack.keys["acme"]]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "[IMG_TOO_DARK] Unterbelichtung (mittel)" in out and "Fix: Fügen Sie Licht hinzu" in out


def test_check_with_an_unsupported_language_fails_with_the_supported_ones(stack, tmp_path, capsys):
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes())
    args = ["check", str(image), "--language", "fr", "--addr", stack.address, "--api-key", stack.keys["acme"]]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "language: UNSUPPORTED_LANGUAGE" in err and "en, de" in err


def test_compare_prints_metrics_and_guidance(stack, tmp_path, capsys):
    photo = Image.fromarray(gradient(400, 300)).filter(ImageFilter.DETAIL)
    photo.paste((250, 250, 250), (61, 53, 203, 197))
    original, processed = tmp_path / "original.jpg", tmp_path / "processed.jpg"
    for path, img in ((original, photo), (processed, photo.filter(ImageFilter.GaussianBlur(3)))):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95)
        path.write_bytes(buf.getvalue())
    base = [
        "compare",
        str(original),
        str(processed),
        "--addr",
        stack.address,
        "--api-key",
        stack.keys["acme"],
    ]
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert (
        "PSNR" in out
        and "SSIM" in out
        and re.search(r"\[LOSS_SHARPNESS\] The processing step removed \d+%", out)
    )
    assert cli.main([*base, "--json", "--language", "de"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["language"] == "de" and body["sharpness_loss_percent"] > 15
    assert any(g["code"] == "LOSS_SHARPNESS" for g in body["guidance"])


def test_merchant_policy_is_set_shown_checked_and_cleared(in_tmp, capsys):
    assert cli.main(["merchant", "create", "Policy shop"]) == 0
    merchant = re.search(r"merchant_id: (\S+)", capsys.readouterr().out)[1]
    set_args = ["merchant", "set-policy", merchant, "--profile", "amazon_main"]
    assert cli.main([*set_args, "--set", "min_product_fill=0.8", "--set", "reject_grades=bad"]) == 0
    assert "amazon_main: min_product_fill=0.8 reject_grades=bad" in capsys.readouterr().out
    assert cli.main([*set_args, "--set", "min_fill=0.8"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy key 'min_fill'" in err and "min_product_fill" in err
    assert cli.main([*set_args, "--set", "min_product_fill=2"]) == 2
    assert "min_product_fill must be between 0 and 1" in capsys.readouterr().err
    assert cli.main(["merchant", "show-policy", merchant]) == 0
    assert "amazon_main: min_product_fill=0.8 reject_grades=bad" in capsys.readouterr().out
    assert cli.main([*set_args, "--clear"]) == 0
    assert "profile defaults" in capsys.readouterr().out
    assert cli.main(["merchant", "show-policy", merchant]) == 0
    assert "no overrides" in capsys.readouterr().out
