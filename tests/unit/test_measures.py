"""Image measurements taken on a strided sample agree with the full image and stay in its frame."""

from __future__ import annotations

import numpy as np
import pytest

from service.domain.imaging import decode_image
from service.domain.layout import product_box
from service.domain.measures import SAMPLE_PIXELS, WHITE_LEVEL, measure, sample, white_fraction, white_share
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.report import build_report, measure_image
from tests import imagefactory as f


def _full_stats(rgb: np.ndarray) -> tuple[float, float, float]:
    """Brightness, contrast and colourfulness over every pixel, written out plainly."""
    x = rgb.astype(np.float64)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    m = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    return float(y.mean()), float(y.std()), float(m)


def test_sample_keeps_exact_pixels_at_the_step():
    """Sample pixel (i, j) is pixel (i * step, j * step) of the image, and no more than the budget."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(1001, 1203, 3), dtype=np.uint8)
    small, step = sample(rgb, 100_000)
    assert step == 4 and small.size // 3 <= 100_000
    np.testing.assert_array_equal(small, rgb[: 250 * 4 : 4, : 300 * 4 : 4])


def test_small_images_are_not_sampled():
    """An image within the budget is measured as it is."""
    rgb = f.gradient(300, 200)
    small, step = sample(rgb)
    assert step == 1 and small is rgb


def test_measures_of_a_large_image_match_the_full_image():
    """Brightness, contrast and colourfulness from the sample are within 1% of every pixel's."""
    rgb = f.gradient(2400, 1600)
    assert rgb.shape[0] * rgb.shape[1] > 4 * SAMPLE_PIXELS
    stats = measure(rgb)
    brightness, contrast, colourfulness = _full_stats(rgb)
    assert abs(stats.brightness - brightness) <= 0.01 * brightness
    assert abs(stats.contrast - contrast) <= 0.01 * contrast
    assert abs(stats.colourfulness - colourfulness) <= 0.01 * colourfulness


def test_measures_of_an_unsampled_image_equal_the_plain_formulas():
    """Under the budget every pixel counts: brightness, contrast and colourfulness equal the plain
    float64 formulas (to the two decimals kept), also for a view that is not contiguous."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(241, 333, 3), dtype=np.uint8)
    for image in (rgb, rgb[::-1, 7:]):
        stats = measure(image)
        brightness, contrast, colourfulness = _full_stats(image)
        assert stats.brightness == pytest.approx(brightness, abs=0.006)
        assert stats.contrast == pytest.approx(contrast, abs=0.006)
        assert stats.colourfulness == pytest.approx(colourfulness, abs=0.006)


def test_product_box_of_a_large_image_is_in_the_full_frame():
    """The box found on the sample is scaled back to the original's pixels (within one step)."""
    rgb = f.product_on_white(2001, 1501, 0.5)
    box = product_box(rgb, (255, 255, 255))
    assert box is not None
    _, step = sample(rgb)
    ys, xs = np.nonzero((rgb != 255).any(axis=2))
    expected = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert all(abs(a - b) <= step for a, b in zip(box, expected, strict=True))


def test_product_box_reaching_the_edge_ends_at_the_edge():
    """A product touching the right and bottom edges ends there, even when the sample drops a remainder."""
    rgb = f.solid(1025, 1023)
    rgb[500:, 600:] = 0
    assert product_box(rgb, (255, 255, 255)) == (600, 500, 1025, 1023)


def test_white_share_of_a_large_box():
    """A box half white, half black is about half white."""
    rgb = f.solid(1600, 1200)
    rgb[:, 800:] = 0
    assert abs(white_share(rgb, (0, 0, 1600, 1200)) - 0.5) < 0.01


def test_a_report_from_measures_taken_ahead_is_the_same_report():
    """build_report with measure_image computed beforehand (as during inference) equals the plain call."""
    image = decode_image(f.jpeg_bytes(f.product_on_white(1200, 900, 0.7), quality=90))
    prediction = Prediction(
        1200, 900, (DetectedDistortion("Noise", "moderate", 0.8, (100, 100, 600, 500), True),), 6, 3.4
    )
    ahead = measure_image(image, "amazon_main")
    assert build_report(prediction, image, "amazon_main", "1", ahead) == build_report(
        prediction, image, "amazon_main", "1"
    )
    with pytest.raises(ValueError):
        build_report(prediction, image, "ebay", "1", ahead)


def test_white_fraction_counts_pixels_white_on_every_channel():
    """A pixel counts only when all three channels are >= the level (249 on one channel is not
    white); the answer is the numpy definition's on any shape, and 0.0 for no pixels."""
    rng = np.random.default_rng(3)
    pixels = rng.choice(np.array([0, 200, 249, 250, 254, 255], np.uint8), size=(37, 41, 3))
    expected = float((pixels.min(axis=2) >= WHITE_LEVEL).mean())
    assert 0.0 < expected < 1.0
    assert white_fraction(pixels) == pytest.approx(expected, abs=1e-12)
    assert white_fraction(pixels.reshape(-1, 3)) == pytest.approx(expected, abs=1e-12)
    assert white_fraction(pixels[:, ::2]) == pytest.approx(float((pixels[:, ::2].min(axis=2) >= 250).mean()))
    assert white_fraction(np.array([[250, 250, 249]], np.uint8)) == 0.0
    assert white_fraction(np.array([[250, 255, 250]], np.uint8)) == 1.0
    assert white_fraction(pixels, level=200) == pytest.approx(float((pixels.min(axis=2) >= 200).mean()))
    assert white_fraction(np.zeros((0, 3), np.uint8)) == 0.0
