"""A product-shot test set with known truth, built reproducibly, for the marketplace checks.

`python -m training.productset --split report --seed 2 --count 240` composites object
cut-outs with alpha (Debian's tuxpaint-stamps-default: photographed fruit, animals, tools,
vehicles, ...) onto pure white, off-white, grey, coloured and photo backgrounds (photos:
Debian's mate-backgrounds, nature/*.jpg) at known fill ratios, and draws text overlays on
some: captions, semi-transparent (some rotated) watermarks and corner logos. The truth of
every image (product box and fill from the alpha, background kind, overlay boxes from the
drawn layer) goes into `<out>/<split>/truth.json`.

Splits differ only by seed: thresholds are tuned on `tune` (seed 1) and reported on
`report` (seed 2). The evaluation is training.productset_eval.

Fill follows Amazon's rule, as the service measures it (service.domain.layout.product_fill):
the longer extent of the product's bounding box relative to the same side of the frame.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.sources import SOURCES_DIR, fetch_package

STAMPS_PACKAGE = "tuxpaint-stamps-default"
PHOTOS_PACKAGE = "mate-backgrounds"
# stamp folders that show products or objects; symbols, signs, houses and people are left out
PRODUCT_FOLDERS = (
    "animals",
    "clothes",
    "food",
    "hobbies",
    "household",
    "medical",
    "plants",
    "seasonal/christmas",
    "seasonal/easter",
    "seasonal/halloween",
    "seasonal/hanukkah",
    "space",
    "sports",
    "vehicles",
    "military/vehicles",
)
MIN_STAMP_SIDE = 200
# cut-outs whose product carries printed lettering (a label, a number plate, an engraving), found by
# running the text detector on every cut-out alone and checked by eye: text on the product is allowed
# by the marketplaces, so these images are kept but reported apart (Truth.lettering)
LETTERED_STAMPS = (
    "household/home_compost_bin.png",
    "household/tools/toolbox.png",
    "medical/syringe.png",
    "seasonal/halloween/grave-d.png",
    "seasonal/halloween/grave-e.png",
    "vehicles/construction/dumper.png",
    "vehicles/construction/dumper_mirror.png",
    "vehicles/emergency/firetruck.png",
    "vehicles/flight/planes/747.png",
    "military/vehicles/bradley.png",
    "military/vehicles/bradley_mirror.png",
)
BACKGROUNDS = ("white", "offwhite", "grey", "colour", "photo")
OVERLAYS = ("caption", "watermark", "logo")
TEXT_SHARE = 0.4  # share of images with an overlay
ALPHA_PRODUCT = 128  # alpha counted as the product for the truth box
WORDS = (
    "SALE",
    "50% OFF",
    "FREE SHIPPING",
    "BEST PRICE",
    "NEW",
    "Limited offer",
    "Buy 2 get 1",
    "Only $9.99",
    "www.shop-example.com",
    "ShopName",
    "Premium Quality",
    "HOT DEAL",
    "Made in EU",
    "SAMPLE",
    "(c) Studio 42",
)
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
)

Box = tuple[int, int, int, int]


@dataclass
class Truth:
    file: str
    width: int
    height: int
    background: str  # white | offwhite | grey | colour | photo
    background_rgb: tuple[int, int, int] | None  # None for photos
    white: bool  # pure white background (the marketplace rule's truth)
    product_box: Box
    fill: float  # longer extent of product_box over the frame side
    stamp: str
    overlays: list[dict[str, object]] = field(default_factory=list)  # {kind, text, box}
    lettering: bool = False  # the product itself carries printed text (LETTERED_STAMPS)

    @property
    def has_text(self) -> bool:
        return bool(self.overlays)


def stamp_files(root: Path) -> list[Path]:
    """Cut-outs with alpha of at least MIN_STAMP_SIDE px from the product folders, sorted."""
    base = root / "usr/share/tuxpaint/stamps"
    found: list[Path] = []
    for folder in PRODUCT_FOLDERS:
        for path in sorted((base / folder).rglob("*.png")):
            with Image.open(path) as im:
                if im.mode == "RGBA" and max(im.size) >= MIN_STAMP_SIDE:
                    found.append(path)
    return found


def photo_files(root: Path) -> list[Path]:
    return sorted((root / "usr/share/backgrounds/mate/nature").glob("*.jpg"))


def fonts(size: int, rng: random.Random) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    available = [f for f in FONT_FILES if Path(f).is_file()]
    if available:
        return ImageFont.truetype(rng.choice(available), size)
    return ImageFont.load_default(size=size)  # Pillow's bundled font


def background(
    kind: str, w: int, h: int, rng: random.Random, photos: list[Path]
) -> tuple[Image.Image, tuple[int, int, int] | None]:
    if kind == "photo":
        with Image.open(rng.choice(photos)) as im:
            photo = im.convert("RGB")
        scale = max(w / photo.width, h / photo.height) * rng.uniform(1.0, 1.6)
        photo = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1))
        x, y = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
        return photo.crop((x, y, x + w, y + h)), None
    if kind == "white":
        rgb = (255, 255, 255)
    elif kind == "offwhite":
        v = rng.choice((238, 242, 245, 248))
        rgb = (v, v, v) if rng.random() < 0.5 else (v, v - 3, v - 10)  # neutral or cream
    elif kind == "grey":
        v = rng.randint(150, 225)
        rgb = (v, v, v)
    else:
        hsv = Image.new("HSV", (1, 1), (rng.randint(0, 255), rng.randint(60, 200), rng.randint(150, 240)))
        r, g, b = hsv.convert("RGB").getpixel((0, 0))  # type: ignore[misc]
        rgb = (int(r), int(g), int(b))
    return Image.new("RGB", (w, h), rgb), rgb


def place_product(canvas: Image.Image, stamp: Image.Image, fill: float, rng: random.Random) -> Box:
    """Paste `stamp` so the longer relative extent of its alpha box is `fill`; return the truth box."""
    alpha = np.asarray(stamp.getchannel("A"))
    ys, xs = np.nonzero(alpha >= ALPHA_PRODUCT)
    crop = stamp.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    w, h = canvas.size
    scale = fill / max(crop.width / w, crop.height / h)
    pw, ph = min(w, max(8, round(crop.width * scale))), min(h, max(8, round(crop.height * scale)))
    product = crop.resize((pw, ph), Image.Resampling.LANCZOS)
    x, y = rng.randint(0, w - pw), rng.randint(0, h - ph)
    canvas.paste(product, (x, y), product)
    a = np.asarray(product.getchannel("A"))
    ys, xs = np.nonzero(a >= ALPHA_PRODUCT)
    return (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)


def _layer_box(layer: Image.Image) -> Box | None:
    box = layer.getchannel("A").point(lambda v: 255 if v >= 24 else 0).getbbox()
    return None if box is None else (int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def draw_overlay(canvas: Image.Image, kind: str, rng: random.Random) -> dict[str, object] | None:
    """Draw one overlay on an RGBA layer, composite it, return {kind, text, box} (box from the layer)."""
    w, h = canvas.size
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = rng.choice(WORDS)
    colour = rng.choice(((200, 20, 20), (20, 20, 20), (255, 255, 255), (30, 60, 200), (240, 160, 0)))
    if kind == "caption":
        font = fonts(round(h * rng.uniform(0.04, 0.09)), rng)
        tw, th = _text_size(draw, text, font)
        x, y = rng.randint(0, max(0, w - tw)), rng.randint(0, max(0, h - th))
        if rng.random() < 0.5:  # a banner behind the text
            pad = round(th * 0.3)
            band = rng.choice(((255, 255, 255), (200, 20, 20), (20, 20, 20)))
            draw.rectangle((x - pad, y - pad, x + tw + pad, y + th + pad), fill=(*band, 255))
            colour = (255, 255, 255) if band != (255, 255, 255) else (200, 20, 20)
        draw.text((x, y), text, font=font, fill=(*colour, 255), anchor="lt")
    elif kind == "watermark":
        font = fonts(round(h * rng.uniform(0.06, 0.14)), rng)
        opacity = rng.randint(90, 160)
        tw, th = _text_size(draw, text, font)
        tile = Image.new("RGBA", (tw + 4, th + 4), (0, 0, 0, 0))
        ImageDraw.Draw(tile).text(
            (2, 2), text, font=font, fill=(*rng.choice(((255, 255, 255), (90, 90, 90))), opacity), anchor="lt"
        )
        if rng.random() < 0.4:
            tile = tile.rotate(rng.choice((-30, -20, 20, 30)), expand=True, resample=Image.Resampling.BICUBIC)
        if tile.width > w or tile.height > h:
            return None
        layer.paste(tile, (rng.randint(0, w - tile.width), rng.randint(0, h - tile.height)))
    else:  # a corner logo: a badge with a short brand name
        font = fonts(round(h * rng.uniform(0.03, 0.05)), rng)
        tw, th = _text_size(draw, text, font)
        pad = round(th * 0.5)
        bw, bh = tw + 2 * pad, th + 2 * pad
        margin = round(0.02 * min(w, h))
        x = margin if rng.random() < 0.5 else w - bw - margin
        y = margin if rng.random() < 0.5 else h - bh - margin
        badge = rng.choice(((200, 20, 20), (20, 20, 20), (30, 60, 200)))
        draw.rounded_rectangle((x, y, x + bw, y + bh), radius=pad, fill=(*badge, 255))
        draw.text((x + pad, y + pad), text, font=font, fill=(255, 255, 255, 255), anchor="lt")
    box = _layer_box(layer)
    if box is None:
        return None
    canvas.paste(layer, (0, 0), layer)
    return {"kind": kind, "text": text, "box": list(box)}


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> tuple[int, int]:
    x1, y1, x2, y2 = draw.textbbox((0, 0), text, font=font, anchor="lt")
    return int(x2 - x1), int(y2 - y1)


def make_image(index: int, rng: random.Random, stamps: list[Path], photos: list[Path], out: Path) -> Truth:
    w = rng.choice((800, 1000, 1000, 1200, 1500))
    h = rng.choice((w, w, round(w * 0.75), round(w * 1.25)))
    kind = BACKGROUNDS[index % len(BACKGROUNDS)]
    canvas, rgb = background(kind, w, h, rng, photos)
    stamp_path = rng.choice(stamps)
    with Image.open(stamp_path) as im:
        stamp = im.convert("RGBA")
    fill = round(rng.uniform(0.45, 0.98), 3)
    box = place_product(canvas, stamp, fill, rng)
    overlays: list[dict[str, object]] = []
    if rng.random() < TEXT_SHARE:
        found = draw_overlay(canvas, rng.choice(OVERLAYS), rng)
        if found is not None:
            overlays.append(found)
    stamp_name = str(stamp_path).split("stamps/", 1)[-1]
    fmt = "jpg" if rng.random() < 0.5 else "png"
    name = f"{index:04d}_{kind}.{fmt}"
    if fmt == "jpg":
        canvas.save(out / name, "JPEG", quality=rng.choice((90, 95)))
    else:
        canvas.save(out / name, "PNG")
    true_fill = max((box[2] - box[0]) / w, (box[3] - box[1]) / h)
    return Truth(
        file=name,
        width=w,
        height=h,
        background=kind,
        background_rgb=rgb,
        white=kind == "white",
        product_box=box,
        fill=round(true_fill, 4),
        stamp=stamp_name,
        overlays=overlays,
        lettering=stamp_name in LETTERED_STAMPS,
    )


def build(out: Path, split: str, seed: int, count: int, sources: Path = SOURCES_DIR) -> list[Truth]:
    """Write `count` images and truth.json into out/split; deterministic for a seed and the sources."""
    stamps = stamp_files(fetch_package(STAMPS_PACKAGE, sources))
    photos = photo_files(fetch_package(PHOTOS_PACKAGE, sources))
    if not stamps or not photos:
        raise SystemExit("no stamps or photos found in the unpacked packages")
    target = out / split
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truths = [make_image(i, rng, stamps, photos, target) for i in range(count)]
    (target / "truth.json").write_text(
        json.dumps({"split": split, "seed": seed, "images": [asdict(t) for t in truths]}, indent=1)
    )
    print(f"{split}: {count} images from {len(stamps)} cut-outs and {len(photos)} photos in {target}")
    return truths


def load_truth(folder: Path) -> list[Truth]:
    data = json.loads((folder / "truth.json").read_text())
    items = []
    for d in data["images"]:
        d["product_box"] = tuple(d["product_box"])
        d["background_rgb"] = None if d["background_rgb"] is None else tuple(d["background_rgb"])
        d["lettering"] = d.get("lettering", d["stamp"] in LETTERED_STAMPS)
        items.append(Truth(**d))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("var/productset"))
    parser.add_argument("--split", default="report")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--count", type=int, default=240)
    args = parser.parse_args(argv)
    build(args.out, args.split, args.seed, args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
