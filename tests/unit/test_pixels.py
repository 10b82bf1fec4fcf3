"""Pixel handoff from the API to the worker: exact, once, bounded, and self-cleaning."""

from __future__ import annotations

import os
import time

import numpy as np

from service.adapters.pixels import FileHandoff
from service.domain.imaging import decode_image
from tests.imagefactory import exif_rotated_jpeg, gradient, png_bytes


def test_the_worker_gets_exactly_what_the_api_decoded(tmp_path):
    """Pixels and every fact of the decoded image survive the handoff."""
    image = decode_image(exif_rotated_jpeg())
    handoff = FileHandoff(tmp_path)
    assert handoff.put("job-1", image)
    got = handoff.take("job-1")
    assert got is not None
    assert np.array_equal(got.rgb, image.rgb) and not got.rgb.flags.writeable
    for name in ("width", "height", "source_format", "exif_transposed", "jpeg_quality", "sha256"):
        assert getattr(got, name) == getattr(image, name)


def test_an_image_is_taken_once(tmp_path):
    """The second take finds nothing (the worker then decodes the original)."""
    handoff = FileHandoff(tmp_path)
    handoff.put("job-1", decode_image(png_bytes()))
    assert handoff.take("job-1") is not None
    assert handoff.take("job-1") is None
    assert handoff.take("never-put") is None
    assert list(tmp_path.iterdir()) == []


def test_large_images_are_declined(tmp_path):
    """Above max_pixels nothing is written."""
    handoff = FileHandoff(tmp_path, max_pixels=100)
    assert not handoff.put("job-1", decode_image(png_bytes(gradient(20, 20))))
    assert handoff.take("job-1") is None


def test_unclaimed_entries_are_pruned(tmp_path):
    """Entries older than max_age_s are removed by a put (here every put scans)."""
    handoff = FileHandoff(tmp_path, max_age_s=60, prune_interval_s=0)
    handoff.put("old", decode_image(png_bytes()))
    past = time.time() - 120
    for path in tmp_path.iterdir():
        os.utime(path, (past, past))
    handoff.put("new", decode_image(png_bytes()))
    assert handoff.take("old") is None
    assert handoff.take("new") is not None


def test_puts_past_the_byte_cap_are_declined_until_workers_take(tmp_path):
    """A backlog of queued jobs cannot fill the disk: the put that would pass max_bytes is
    declined, and once entries are taken puts are accepted again."""
    image = decode_image(png_bytes(gradient(40, 30)))  # 3,600 bytes of pixels
    handoff = FileHandoff(tmp_path, max_bytes=10_000)
    assert handoff.put("job-1", image) and handoff.put("job-2", image)
    assert not handoff.put("job-3", image)
    assert handoff.take("job-3") is None
    assert handoff.take("job-1") is not None
    time.sleep(1.05)  # a full count is checked against the directory at most once a second
    assert handoff.put("job-3", image)
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 10_000


def test_a_damaged_entry_is_ignored_and_removed(tmp_path):
    """A truncated or foreign file under a job's name is no image: take returns None (the
    worker decodes the original) and the file is gone."""
    handoff = FileHandoff(tmp_path)
    handoff.put("job-1", decode_image(png_bytes()))
    entry = tmp_path / "job-1.px"
    entry.write_bytes(entry.read_bytes()[:-10])
    assert handoff.take("job-1") is None
    (tmp_path / "job-2.px").write_bytes(b"not pixels")
    assert handoff.take("job-2") is None
    assert list(tmp_path.iterdir()) == []
