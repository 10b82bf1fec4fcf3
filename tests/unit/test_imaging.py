"""decode_image: every bad input fails with its typed reason; awkward good inputs are normalised."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import ImageFile

from service.domain.errors import BadImage, ImageTooLarge
from service.domain.imaging import DecodedImage, ImageLimits, decode_image
from tests import imagefactory as f


def bad_reason(data: bytes, limits: ImageLimits | None = None) -> str:
    with pytest.raises(BadImage) as info:
        decode_image(data, limits or ImageLimits())
    assert info.value.code == "BAD_IMAGE"
    assert info.value.field == "image"
    return info.value.reason


def test_empty_body_is_rejected_as_empty():
    """Zero bytes -> EMPTY."""
    assert bad_reason(b"") == "EMPTY"


def test_random_bytes_are_not_an_image():
    """Noise bytes -> NOT_AN_IMAGE."""
    assert bad_reason(f.random_bytes()) == "NOT_AN_IMAGE"


def test_text_named_jpg_is_not_an_image():
    """A text file (whatever its name) -> NOT_AN_IMAGE."""
    assert bad_reason(f.text_bytes()) == "NOT_AN_IMAGE"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_jpeg_is_rejected_not_padded(keep):
    """A JPEG cut short fails as TRUNCATED instead of decoding with grey filler."""
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    assert bad_reason(f.truncated_jpeg(keep)) == "TRUNCATED"


def test_a_truncated_upload_is_told_once_and_what_to_do():
    """The message says "truncated" once (not Pillow's own wording after ours) and asks for the
    whole file."""
    with pytest.raises(BadImage) as err:
        decode_image(f.truncated_jpeg(0.5))
    assert err.value.message.count("truncated") == 1
    assert "bytes not processed" not in err.value.message
    assert "upload the whole file" in err.value.message


def test_truncated_png_is_rejected():
    """A PNG cut short fails as TRUNCATED or CORRUPT, never decodes."""
    assert bad_reason(f.truncated_png(0.5)) in ("TRUNCATED", "CORRUPT")


def test_undecodable_pixel_data_is_corrupt():
    """A valid PNG header over garbage image data -> CORRUPT."""
    assert bad_reason(f.corrupt_png()) == "CORRUPT"


def test_header_only_jpeg_is_rejected():
    """The first bytes of a JPEG (a header and no scan) do not decode."""
    assert bad_reason(f.jpeg_bytes()[:200]) in ("TRUNCATED", "CORRUPT")


def test_decompression_bomb_is_rejected_from_the_header():
    """A 30000x30000 PNG (900 MP declared, ~1 KB on disk) is refused before decoding."""
    data = f.bomb_png(30000, 30000)
    assert len(data) < 100_000
    assert bad_reason(data) == "DECOMPRESSION_BOMB"


def test_pixel_limit_is_the_configured_one():
    """An image just over limits.max_pixels is a bomb for that limit and fine for a larger one."""
    data = f.png_bytes(f.gradient(200, 100))
    assert bad_reason(data, ImageLimits(max_pixels=19_999)) == "DECOMPRESSION_BOMB"
    assert decode_image(data, ImageLimits(max_pixels=20_000)).width == 200


def test_pillow_bomb_warning_does_not_escape(recwarn):
    """Between Pillow's warning threshold and our limit, decoding succeeds without a warning."""
    from PIL import Image

    data = f.png_bytes(f.gradient(100, 100))
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 9_000  # 10_000 px now triggers Pillow's warning, not its error
    try:
        assert decode_image(data, ImageLimits(max_pixels=1_000_000)).width == 100
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_bytes_over_the_limit_are_too_large():
    """More bytes than limits.max_bytes -> ImageTooLarge with the numbers."""
    data = f.jpeg_bytes()
    with pytest.raises(ImageTooLarge) as info:
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))
    assert info.value.code == "IMAGE_TOO_LARGE"
    assert info.value.actual == len(data)
    assert info.value.limit == len(data) - 1


@pytest.mark.parametrize("size", [(1, 1), (15, 400), (400, 15)])
def test_tiny_images_are_too_small(size):
    """A side below min_side (16 px by default) -> TOO_SMALL."""
    assert bad_reason(f.png_bytes(f.gradient(*size))) == "TOO_SMALL"


@pytest.mark.parametrize("size", [(0, 0), (0, 100), (100, 0)])
def test_zero_size_images_are_too_small(size):
    """A header declaring a zero side -> TOO_SMALL."""
    assert bad_reason(f.zero_size_png(*size)) == "TOO_SMALL"


def test_heic_is_an_unsupported_format():
    """An ISO-BMFF file with a HEIC brand -> UNSUPPORTED_FORMAT, not NOT_AN_IMAGE."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    assert bad_reason(heic) == "UNSUPPORTED_FORMAT"


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "JPEG2000", "DDS", "SGI", "TGA"])
def test_known_formats_we_do_not_accept_are_unsupported(fmt):
    """Formats Pillow could read but we do not accept are UNSUPPORTED_FORMAT, said as such (not
    "not a recognised image": a merchant exporting JPEG 2000 or TGA learns what to change)."""
    data = f.encode(f.gradient(64, 64), fmt)
    assert bad_reason(data) == "UNSUPPORTED_FORMAT"
    with pytest.raises(BadImage, match="images are not accepted"):
        decode_image(data)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (b"\xff\x4f\xff\x51\x00\x2f", "JPEG 2000"),
        (b"\x76\x2f\x31\x01\x02\x00\x00\x00", "OpenEXR"),
        (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "Radiance HDR"),
    ],
)
def test_camera_and_render_formats_are_named_in_the_error(header, name):
    """HDR and codestream formats Pillow does not read at all are still recognised by their
    signature: UNSUPPORTED_FORMAT naming them, not NOT_AN_IMAGE."""
    with pytest.raises(BadImage, match=name) as err:
        decode_image(header + bytes(256))
    assert err.value.reason == "UNSUPPORTED_FORMAT"


def test_svg_is_unsupported():
    """An SVG document -> UNSUPPORTED_FORMAT."""
    assert bad_reason(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>') == (
        "UNSUPPORTED_FORMAT"
    )


def test_plain_jpeg_decodes_with_facts():
    """A normal JPEG gives an HxWx3 uint8 array, its quality, size and sha256."""
    data = f.jpeg_bytes(f.gradient(320, 240), quality=85)
    img = decode_image(data)
    assert isinstance(img, DecodedImage)
    assert img.rgb.shape == (240, 320, 3) and img.rgb.dtype == np.uint8
    assert (img.width, img.height) == (320, 240)
    assert img.source_format == "JPEG" and img.source_mode == "RGB" and img.bit_depth == 8
    assert img.jpeg_quality == 85
    assert img.byte_size == len(data)
    assert img.sha256 == hashlib.sha256(data).hexdigest()
    assert not img.had_alpha and img.frame_count == 1 and not img.exif_transposed


def test_decoded_array_is_read_only():
    """Callers cannot change the shared decoded pixels by accident."""
    img = decode_image(f.png_bytes())
    with pytest.raises(ValueError):
        img.rgb[0, 0, 0] = 1


@pytest.mark.parametrize("quality", [40, 75, 89, 90, 95, 100])
def test_jpeg_quality_is_estimated_exactly_for_ijg_files(quality):
    """The estimate recovers the IJG quality setting (the eBay >= 90 rule depends on it)."""
    assert decode_image(f.jpeg_bytes(quality=quality)).jpeg_quality == quality


def test_png_has_no_jpeg_quality():
    """jpeg_quality is None for non-JPEG sources."""
    assert decode_image(f.png_bytes()).jpeg_quality is None


def test_sixteen_bit_grey_png_is_scaled_not_clipped():
    """A 16-bit ramp x*257 becomes the 8-bit ramp x on all three channels."""
    img = decode_image(f.sixteen_bit_gray_png())
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.rgb[0, :, 0], np.arange(256))
    assert (img.rgb[..., 0] == img.rgb[..., 2]).all()


def test_sixteen_bit_rgb_png_keeps_its_colours():
    """A 48-bit RGB PNG decodes to the right 8-bit colour and reports 16 bits."""
    img = decode_image(f.sixteen_bit_rgb_png((200 * 257, 0, 50 * 257)))
    assert img.bit_depth == 16
    assert tuple(img.rgb[3, 3]) == (200, 0, 50)


def test_cmyk_jpeg_becomes_rgb_with_adobe_inversion_handled():
    """A CMYK JPEG of pure magenta+yellow (= red) decodes to red, not its inverse."""
    img = decode_image(f.cmyk_jpeg((0, 255, 255, 0)))
    assert img.source_mode == "CMYK"
    r, g, b = (int(v) for v in img.rgb[10, 10])
    assert r > 230 and g < 30 and b < 30


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted():
    """Plain CMYK (no APP14 marker) for red also decodes to red."""
    data = f.cmyk_jpeg_without_adobe_marker((0, 255, 255, 0))
    assert b"Adobe" not in data
    r, g, b = (int(v) for v in decode_image(data).rgb[10, 10])
    assert r > 230 and g < 30 and b < 30


def test_embedded_icc_profile_is_honoured():
    """Red stored under a profile whose red primary is sRGB green decodes to green."""
    data = f.jpeg_bytes(f.solid(64, 64, (255, 0, 0)), icc_profile=f.swapped_primaries_icc())
    img = decode_image(data)
    assert img.icc_converted
    r, g, b = (int(v) for v in img.rgb[10, 10])
    assert g > 230 and r < 30 and b < 30


def test_embedded_cmyk_profile_is_honoured():
    """Magenta+yellow ink under a profile that swaps cyan and magenta decodes to green, not red."""
    img = decode_image(f.cmyk_jpeg((0, 255, 255, 0), icc_profile=f.swapped_cmyk_icc()))
    assert img.icc_converted and img.source_mode == "CMYK"
    r, g, b = (int(v) for v in img.rgb[10, 10])
    assert g > 230 and r < 30 and b < 30


def test_srgb_profile_is_not_converted():
    """An embedded sRGB profile leaves the pixels as they are."""
    tagged = f.encode(f.solid(64, 64, (10, 200, 30)), "PNG", icc_profile=f.srgb_icc())
    img = decode_image(tagged)
    assert not img.icc_converted
    assert tuple(img.rgb[5, 5]) == (10, 200, 30)


def test_broken_icc_profile_falls_back_to_plain_conversion():
    """Garbage in the ICC chunk does not fail the upload."""
    data = f.jpeg_bytes(f.solid(64, 64, (0, 0, 255)), icc_profile=b"not an icc profile" * 10)
    img = decode_image(data)
    assert not img.icc_converted
    assert img.rgb[5, 5, 2] > 230


def test_palette_png_transparency_is_composited_over_white():
    """Transparent palette pixels become white; opaque ones keep their colour."""
    img = decode_image(f.palette_png_with_transparency())
    assert img.had_alpha and img.source_mode == "P"
    assert tuple(img.rgb[5, 5]) == (255, 255, 255)
    assert tuple(img.rgb[5, -5]) == (0, 0, 255)


def test_rgba_png_is_composited_over_white():
    """Fully transparent red becomes white; opaque red stays red."""
    img = decode_image(f.rgba_png(alpha=0))
    assert img.had_alpha
    assert tuple(img.rgb[5, 5]) == (255, 255, 255)
    assert tuple(img.rgb[5, -5]) == (255, 0, 0)


def test_rgb_png_colour_key_transparency_is_composited_over_white():
    """An RGB PNG whose black is marked transparent (tRNS) shows white there."""
    rgb = f.solid(64, 64, (0, 0, 0))
    rgb[:, 32:] = (0, 200, 0)
    img = decode_image(f.encode(rgb, "PNG", transparency=(0, 0, 0)))
    assert img.had_alpha
    assert tuple(img.rgb[5, 5]) == (255, 255, 255)
    assert tuple(img.rgb[5, -5]) == (0, 200, 0)


def test_half_transparent_rgba_is_blended():
    """50% opaque red over white is pink."""
    img = decode_image(f.rgba_png(alpha=128))
    r, g, b = (int(v) for v in img.rgb[5, 5])
    assert r == 255 and 120 < g < 135 and 120 < b < 135


def test_grey_alpha_png_is_composited_over_white():
    """LA: the transparent top half is white, the opaque bottom half black, in RGB."""
    img = decode_image(f.la_png())
    assert img.had_alpha and img.rgb.shape[2] == 3
    assert tuple(img.rgb[2, 2]) == (255, 255, 255)
    assert tuple(img.rgb[-2, -2]) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_uses_the_first_frame(fmt):
    """Animated GIF/WebP: frame_count recorded, pixels from the first (red) frame."""
    img = decode_image(f.animated(fmt, frames=3))
    assert img.frame_count == 3
    assert img.source_format == fmt
    r, g, b = (int(v) for v in img.rgb[10, 10])
    assert r > 230 and g < 30 and b < 30


def test_webp_decodes():
    """A still lossy WebP decodes."""
    img = decode_image(f.encode(f.gradient(64, 48), "WEBP", quality=90))
    assert img.source_format == "WEBP" and img.rgb.shape == (48, 64, 3)


def test_avif_decodes_or_is_unsupported():
    """AVIF decodes when Pillow has libavif, else it is UNSUPPORTED_FORMAT (never NOT_AN_IMAGE)."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow cannot write AVIF test files")
    data = f.encode(f.gradient(64, 48), "AVIF")
    img = decode_image(data)
    assert img.source_format == "AVIF" and img.rgb.shape == (48, 64, 3)


@pytest.mark.parametrize(("orientation", "top_is_red"), [(6, True), (8, False), (3, False), (1, False)])
def test_exif_orientation_is_applied(orientation, top_is_red):
    """An 80x40 image tagged orientation 6/8 decodes as 40x80, rotated the right way."""
    img = decode_image(f.exif_rotated_jpeg(orientation))
    rotated = orientation in (6, 8)
    assert img.exif_transposed == (orientation != 1)
    assert (img.width, img.height) == ((40, 80) if rotated else (80, 40))
    if rotated:
        assert (img.rgb[5, 20, 0] > 200) == top_is_red
    else:
        left_red = img.rgb[20, 5, 0] > 200
        assert left_red == (orientation == 1)


def test_gif_palette_without_transparency_has_no_alpha():
    """A plain GIF is RGB after decoding and had_alpha is False."""
    img = decode_image(f.encode(f.gradient(64, 64), "GIF"))
    assert img.source_format == "GIF" and not img.had_alpha


def test_a_bomb_that_pillow_stops_is_refused_against_this_services_limit():
    """Pillow's own guard stops a 30000x30000 PNG header at open; the message gives the declared
    size and the service's limit (IDETEX_MAX_PIXELS), not Pillow's internal one."""
    from tests.hostile import png_header_bomb, tiff_huge_dimensions

    with pytest.raises(BadImage) as err:
        decode_image(png_header_bomb(), ImageLimits(max_pixels=50_000_000))
    assert err.value.reason == "DECOMPRESSION_BOMB"
    assert err.value.message == "the image declares 30000x30000 = 900000000 pixels; the limit is 50000000"
    with pytest.raises(BadImage) as err:  # a format whose size is only read by Pillow: its count
        decode_image(tiff_huge_dimensions())
    assert err.value.message == "the image declares 10000000000 pixels; the limit is 100000000"
    assert "178956970" not in err.value.message


def test_metadata_that_inflates_too_far_is_named_without_pillows_internals():
    from tests.hostile import png_ztxt_bomb

    with pytest.raises(BadImage) as err:
        decode_image(png_ztxt_bomb())
    assert err.value.reason == "CORRUPT"
    assert "metadata" in err.value.message and "MAX_TEXT" not in err.value.message
