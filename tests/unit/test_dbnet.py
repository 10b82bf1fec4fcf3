"""Text detector post-processing (DB) and recogniser decoding (CTC) on synthetic model outputs."""

from __future__ import annotations

import numpy as np

from service.adapters.dbnet import DbParams, db_boxes, db_candidates, det_input, merge_lines
from service.adapters.ocr_rec import ctc_decode, order_quad, rec_input, rec_input_quad
from service.domain.scene import TextBox


def prob_map(h: int = 320, w: int = 320) -> np.ndarray:
    return np.zeros((h, w), dtype=np.float32)


def test_a_text_line_on_the_map_becomes_an_unclipped_box_in_original_pixels():
    """A 100x10 kernel at (50, 40) on a 320x320 map of a 960x640 image: grown by
    area*1.6/perimeter (~7.3 px) per side, then scaled by 3 in x and 2 in y."""
    prob = prob_map()
    prob[40:50, 50:150] = 0.9
    (box,) = db_boxes(prob, 960, 640)
    x1, y1, x2, y2 = box.box
    assert abs(x1 - (50 - 7.3) * 3) <= 4 and abs(x2 - (150 + 7.3) * 3) <= 4
    assert abs(y1 - (40 - 7.3) * 2) <= 3 and abs(y2 - (50 + 7.3) * 2) <= 3
    assert 0.75 < box.score <= 0.9  # the mean over the contour, whose dilated rim is 0


def test_weak_squat_and_tiny_regions_are_dropped():
    """Mean probability under box_thresh, a square blob (not a line) and a 2 px sliver give no box."""
    prob = prob_map()
    prob[10:20, 10:110] = 0.4  # above thresh 0.3, below box_thresh 0.5
    prob[100:160, 100:160] = 0.95  # square: a texture, not a line of text
    prob[200:202, 10:60] = 0.95  # thinner than min_size
    assert db_boxes(prob, 320, 320) == ()
    assert (
        len(db_candidates(prob, DbParams(min_aspect=1.0))) == 1
    )  # the square passes without the aspect rule


def test_boxes_are_ordered_top_to_bottom_and_small_ones_dropped_by_area():
    """Two lines come back top first; min_area drops a line that is too small for the frame."""
    prob = prob_map()
    prob[200:212, 20:140] = 0.8
    prob[30:42, 150:300] = 0.8
    boxes = db_boxes(prob, 320, 320)
    assert [b.box[1] < 100 for b in boxes] == [True, False]
    assert db_boxes(prob, 320, 320, DbParams(min_area=0.5)) == ()


def test_words_on_one_line_merge_and_lines_stay_apart():
    """Two words 10 px apart on a 20 px line join; a line below stays its own box."""
    words = (
        TextBox((0, 0, 100, 20), 0.8, "FREE"),
        TextBox((110, 2, 220, 22), 0.9, "SHIPPING"),
        TextBox((0, 100, 100, 120), 0.7, "NEW"),
    )
    merged = merge_lines(words)
    assert merged == (TextBox((0, 0, 220, 22), 0.9, "FREE SHIPPING"), TextBox((0, 100, 100, 120), 0.7, "NEW"))


def test_detector_input_is_bgr_normalised_with_sides_a_multiple_of_32():
    """A 1000x700 image at max side 960: 960x672, channels reversed, values in [-1, 1]."""
    rgb = np.zeros((700, 1000, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # red
    tensor = det_input(rgb, 960)
    assert tensor.shape == (1, 3, 672, 960) and tensor.dtype == np.float32
    assert tensor[0, 2].min() == 1.0 and tensor[0, 0].max() == -1.0  # red lands in the last (R of BGR) plane


def test_ctc_decoding_collapses_repeats_and_drops_blanks():
    """Steps A A blank A B blank: 'AAB' with the mean probability of the kept steps."""
    charset = ["A", "B", " "]
    steps = [1, 1, 0, 1, 2, 0]
    probs = np.full((len(steps), 4), 0.05, dtype=np.float32)
    for t, c in enumerate(steps):
        probs[t, c] = 0.8 if t != 3 else 0.6
    text, conf = ctc_decode(probs, charset)
    assert text == "AAB"
    assert abs(conf - (0.8 + 0.6 + 0.8) / 3) < 1e-6
    assert ctc_decode(np.eye(4, dtype=np.float32)[[0, 0]], charset) == ("", 0.0)


def test_recogniser_input_keeps_the_aspect_ratio_at_height_48_and_straightens_rotated_quads():
    """A 200x50 crop becomes 48x192; a quad is ordered clockwise from the top left and warped upright."""
    rgb = np.full((300, 300, 3), 255, dtype=np.uint8)
    assert rec_input(rgb, (50, 50, 250, 100)).shape == (1, 3, 48, 192)
    quad = np.array([[250, 100], [50, 100], [50, 50], [250, 50]], dtype=np.float32)
    assert order_quad(quad).tolist() == [[50, 50], [250, 50], [250, 100], [50, 100]]
    assert rec_input_quad(rgb, quad).shape == (1, 3, 48, 192)
