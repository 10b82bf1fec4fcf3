"""describe_region: boxes become the words merchants read in guidance."""

from __future__ import annotations

import pytest

from service.domain.regions import describe_region


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ((700, 700, 990, 990), "in the lower right corner"),
        ((0, 0, 200, 200), "in the upper left corner"),
        ((800, 0, 1000, 250), "in the upper right corner"),
        ((0, 750, 300, 1000), "in the lower left corner"),
        ((400, 400, 600, 600), "in the center"),
        ((400, 0, 600, 200), "at the top"),
        ((400, 800, 600, 1000), "at the bottom"),
        ((0, 400, 200, 600), "on the left side"),
        ((850, 400, 1000, 600), "on the right side"),
    ],
)
def test_small_boxes_are_named_by_their_third_of_the_image(box, words):
    """A box's centre picks one of nine named regions."""
    assert describe_region(box, 1000, 1000) == words


def test_a_box_covering_most_of_the_image_is_the_whole_image():
    """>= 80% of the area reads as 'across the whole image'."""
    assert describe_region((0, 0, 1000, 1000), 1000, 1000) == "across the whole image"
    assert describe_region((20, 10, 930, 950), 1000, 1000) == "across the whole image"


def test_full_width_strips_read_across():
    """A wide, short box reads 'across the top/middle/bottom'."""
    assert describe_region((0, 0, 1000, 150), 1000, 1000) == "across the top"
    assert describe_region((0, 450, 1000, 550), 1000, 1000) == "across the middle"
    assert describe_region((50, 850, 1000, 1000), 1000, 1000) == "across the bottom"


def test_full_height_strips_read_down():
    """A tall, narrow box reads 'down the left side/middle/right side'."""
    assert describe_region((0, 0, 100, 1000), 1000, 1000) == "down the left side"
    assert describe_region((450, 0, 550, 1000), 1000, 1000) == "down the middle"
    assert describe_region((900, 0, 1000, 950), 1000, 1000) == "down the right side"


def test_regions_follow_the_image_aspect():
    """Thirds are of each side: a box at x 1400..1900 of a 2000 px wide image is on the right."""
    assert describe_region((1400, 100, 1900, 200), 2000, 500) == "in the upper right corner"


def test_boxes_outside_the_image_are_clipped():
    """Coordinates beyond the frame are clipped before wording."""
    assert describe_region((-50, -50, 120, 120), 1000, 1000) == "in the upper left corner"
    assert describe_region((-10, -10, 2000, 2000), 1000, 1000) == "across the whole image"
