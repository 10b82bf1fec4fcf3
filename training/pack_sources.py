"""Pack the training-split sources into a small folder, to generate data on another machine.

    python -m training.pack_sources --out .devcarry/sources

`training.generate` decodes every photo and shrinks it to its pool size (long side
`generate.POOL_LONG_SIDE`) before cropping, so storing the photos at that size loses
nothing the generator uses except one JPEG re-encoding. Cut-outs are copied as they are
(PNG with alpha). The folder gets its own `manifest.json` with paths relative to the
current directory, for `python -m training.generate --manifest <folder>/manifest.json`.
Reserved evaluation sources are never packed.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import cv2

from training.generate import POOL_LONG_SIDE
from training.sources import MANIFEST_PATH, load_manifest, write_manifest


def pack(out: Path, manifest: Path = MANIFEST_PATH, quality: int = 90) -> tuple[int, int]:
    """Write the packed copy and its manifest; returns (images, bytes)."""
    entries = [e for e in load_manifest(manifest) if e.split == "train"]
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "cutouts").mkdir(parents=True, exist_ok=True)
    packed = []
    total = 0
    for i, e in enumerate(entries):
        name = f"{i:04d}_{Path(e.path).stem}"
        if e.kind == "photo":
            img = cv2.imread(e.path, cv2.IMREAD_COLOR)
            if img is None:
                raise RuntimeError(f"cannot decode {e.path}")
            h, w = img.shape[:2]
            scale = POOL_LONG_SIDE / max(h, w)
            if scale < 1.0:
                img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            dest = out / "photos" / f"{name}.jpg"
            cv2.imwrite(str(dest), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        else:
            dest = out / "cutouts" / f"{name}{Path(e.path).suffix}"
            shutil.copyfile(e.path, dest)
        total += dest.stat().st_size
        packed.append(replace(e, path=str(dest)))
        if (i + 1) % 50 == 0 or i + 1 == len(entries):
            print(f"packed {i + 1}/{len(entries)} ({total / 1e6:.1f} MB)", flush=True)
    write_manifest(packed, out / "manifest.json")
    return len(packed), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the packed photos")
    args = parser.parse_args(argv)
    n, size = pack(args.out, args.manifest, args.quality)
    print(f"{n} images, {size / 1e6:.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
