"""service.iqa.preprocess: any RGB image becomes the model's [3, 320, 320] input."""

import numpy as np
import pytest

from service.iqa.preprocess import PreprocessError, resize_to_input, stack, to_model_input


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (240, 320, 3), (320, 320, 3), (3000, 4000, 3), (7, 9000, 3), (8001, 33, 3)]
)
def test_any_size_becomes_a_320_square_of_uint8_channels_first(shape):
    """Tiny, huge and extreme-aspect images all map to contiguous uint8 [3, 320, 320]."""
    rgb = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    x = to_model_input(rgb)
    assert x.shape == (3, 320, 320)
    assert x.dtype == np.uint8
    assert x.flags["C_CONTIGUOUS"]


def test_pixels_pass_unscaled_channels_first():
    """The input is the resized image's own 0..255 values, transposed to [3, 320, 320]."""
    rgb = np.random.default_rng(1).integers(0, 256, size=(320, 320, 3), dtype=np.uint8)
    assert np.array_equal(to_model_input(rgb), rgb.transpose(2, 0, 1))


def test_channels_stay_in_rgb_order():
    """A pure red image gives channel 0 = 255 and channels 1, 2 = 0."""
    rgb = np.zeros((50, 70, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    x = to_model_input(rgb)
    assert (x[0] == 255).all() and (x[1:] == 0).all()


def test_aspect_is_stretched_so_regions_keep_relative_position():
    """The left half of a wide image stays the left half of the input (x scales by 320/W)."""
    rgb = np.zeros((400, 1600, 3), dtype=np.uint8)
    rgb[:, :800] = 200
    small = resize_to_input(rgb)
    assert small[:, :159].min() == 200 and small[:, 161:].max() == 0


def test_shrinking_averages_pixels_like_an_area_filter():
    """A fine checkerboard reduces to its mean grey, not to aliased stripes."""
    board = (np.indices((1280, 1280)).sum(axis=0) % 2 * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    small = resize_to_input(rgb).astype(int)
    assert abs(small.mean() - 127.5) < 1 and small.max() - small.min() <= 1


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)]
)
def test_non_rgb_uint8_arrays_are_rejected(bad):
    """Grey, RGBA and float arrays raise PreprocessError instead of producing garbage."""
    with pytest.raises(PreprocessError):
        to_model_input(bad)


def test_stack_builds_a_batch_and_rejects_wrong_items():
    """stack() gives uint8 [N, 3, 320, 320]; an empty batch, a wrong shape or dtype is an error."""
    items = [to_model_input(np.full((30, 40, 3), v, np.uint8)) for v in (0, 255)]
    batch = stack(items)
    assert batch.shape == (2, 3, 320, 320) and batch.dtype == np.uint8 and batch.flags["C_CONTIGUOUS"]
    assert batch[0].max() == 0 and batch[1].min() == 255
    with pytest.raises(PreprocessError):
        stack([])
    with pytest.raises(PreprocessError):
        stack([np.zeros((3, 10, 10), np.uint8)])
    with pytest.raises(PreprocessError, match="uint8"):
        stack([np.zeros((3, 320, 320), np.float32)])
