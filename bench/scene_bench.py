"""Milliseconds per image for each scene model (service.adapters.vision) on this machine's CPU.

    python -m bench.scene_bench [--threads 1] [--repeat 20]

One 1000x1000 product shot with a caption: the u2netp mask, the PP-OCRv4 detector (one run at
its 960 px input), the recogniser on the detected boxes, and the face search (LBP cascade at
256 px), each timed alone after a warm-up (median of `repeat` runs).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from service.adapters import vision
from service.adapters.dbnet import det_input
from service.domain.imaging import DecodedImage, decode_image


def shot() -> DecodedImage:
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(rng.integers(60, 200, (40, 40, 3), dtype=np.uint8)).resize((1000, 1000))
    draw = ImageDraw.Draw(canvas)
    draw.rounded_rectangle((250, 300, 750, 850), radius=80, fill=(230, 120, 20))
    draw.text((40, 900), "SALE 50% OFF", fill=(200, 0, 0), font_size=56)
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return decode_image(buf.getvalue())


def median_ms(step: Callable[[], object], repeat: int) -> float:
    step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    image = shot()
    a = vision.OnnxSceneAnalyzer(threads=args.threads)
    mask, det = a._mask.get(), a._text.get()
    tensor = det_input(image.rgb, a.db.max_side)
    results = {
        "u2netp mask (320x320)": median_ms(
            lambda: mask.run(None, {"input.1": vision.mask_input(image.rgb)}), args.repeat
        ),
        "PP-OCRv4 detector (960 px)": median_ms(lambda: det.run(None, {"x": tensor}), args.repeat),
        "text step (detector + DB + recogniser)": median_ms(lambda: a.text(image), args.repeat),
        "LBP faces (256 px)": median_ms(lambda: a.faces(image), args.repeat),
    }
    for name, ms in results.items():
        print(f"{name}: {ms} ms (threads={args.threads})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
