"""annotate: boxes and labels are drawn on a copy; nothing else changes; output size is capped."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from service.domain.annotate import COLOURS, annotate, draw_annotations, label
from service.domain.prediction import DetectedDistortion, Prediction
from tests import imagefactory as f


def one_box(width=800, height=600, box=(200, 200, 600, 500)):
    return Prediction(width, height, (DetectedDistortion("Motion blur", "moderate", 0.9, box, True),), 5, 3.0)


def test_only_the_outline_and_label_change():
    """Pixels on the box outline change; pixels away from the box and its label do not."""
    rgb = f.gradient(800, 600)
    out = draw_annotations(rgb, one_box())
    assert out.shape == rgb.shape
    changed = np.any(out != rgb, axis=2)
    for x, y in [(200, 350), (600, 350), (400, 200), (400, 500)]:  # left, right, top, bottom edges
        assert changed[y, x]
    assert tuple(out[350, 200]) == COLOURS["Motion blur"]
    far = np.ones_like(changed)
    far[150:520, 180:620] = False  # the box, its outline and the label above it
    assert not changed[far].any()
    assert not changed[240:480, 240:580].any()  # the inside of the box is untouched


def test_input_array_is_not_modified():
    """The caller's array (often a read-only decoded image) stays as it was."""
    rgb = f.gradient(800, 600)
    rgb.flags.writeable = False
    before = rgb.copy()
    draw_annotations(rgb, one_box())
    np.testing.assert_array_equal(rgb, before)


def test_annotated_jpeg_is_capped_at_2048_px():
    """A 3000x2000 image comes back as a 2048x1365 JPEG with the box scaled along."""
    rgb = f.gradient(3000, 2000)
    data = annotate(rgb, one_box(3000, 2000, (1500, 1000, 2900, 1900)))
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.size == (2048, 1365)
    arr = np.asarray(im).astype(int)
    colour = np.array(COLOURS["Motion blur"])
    assert np.abs(arr[1000, 1024] - colour).max() < 40  # left edge of the scaled box (x = 1500 * 0.683)


def test_small_images_keep_their_size():
    """Images within the cap are not resized."""
    data = annotate(f.gradient(640, 480), one_box(640, 480, (10, 10, 100, 100)))
    assert Image.open(io.BytesIO(data)).size == (640, 480)


def test_labels_read_severity_then_type():
    """'Moderate motion blur'."""
    assert label(DetectedDistortion("Motion blur", "moderate", 0.9, (0, 0, 1, 1))) == "Moderate motion blur"


def test_each_distortion_type_has_its_own_colour():
    """Ten types, ten distinct colours."""
    assert len(set(COLOURS.values())) == len(COLOURS) == 10


def test_no_distortions_gives_the_plain_image():
    """Without distortions the drawing equals the input."""
    rgb = f.gradient(320, 240)
    out = draw_annotations(rgb, Prediction(320, 240, (), 9, 4.8))
    np.testing.assert_array_equal(out, rgb)
