"""Pixel handoff: the API's decoded image, passed to the worker so it need not decode again.

A sync request decodes the upload in the API (to fail bad input at once) and then waits
for the worker, which would decode the same bytes again: about a fifth of a sync
request's time on a 2-core machine. When API and workers share a filesystem (local blob
store), the API leaves the decoded pixels for the job and the worker takes them once.

Contract: `put(job_id, image)` may decline (returns False); `take(job_id)` returns the image
and forgets it, or None, in which case the worker decodes the original as usual.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from service.domain.imaging import DecodedImage


class PixelHandoff(abc.ABC):
    @abc.abstractmethod
    def put(self, job_id: str, image: DecodedImage) -> bool:
        """Leave the decoded image for the job; False when declined."""

    @abc.abstractmethod
    def take(self, job_id: str) -> DecodedImage | None:
        """The image left for the job (once), or None."""


class NoHandoff(PixelHandoff):
    """Workers always decode (object storage, or workers on other hosts)."""

    def put(self, job_id: str, image: DecodedImage) -> bool:
        return False

    def take(self, job_id: str) -> DecodedImage | None:
        return None


class FileHandoff(PixelHandoff):
    """Raw .npy pixels plus JSON facts in a shared directory; stale entries are pruned on put."""

    def __init__(self, root: str | Path, max_pixels: int = 16_000_000, max_age_s: float = 600.0) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.max_age_s = max_age_s

    def put(self, job_id: str, image: DecodedImage) -> bool:
        if image.rgb.shape[0] * image.rgb.shape[1] > self.max_pixels:  # what is written: rgb may be reduced
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        self._prune()
        facts = {f.name: getattr(image, f.name) for f in dataclasses.fields(image) if f.name != "rgb"}
        self._write(self._path(job_id, ".json"), json.dumps(facts).encode())
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(image.rgb), allow_pickle=False)
        os.replace(tmp, self._path(job_id, ".npy"))  # written last: its presence means complete
        return True

    def take(self, job_id: str) -> DecodedImage | None:
        pixels, facts = self._path(job_id, ".npy"), self._path(job_id, ".json")
        try:
            rgb = np.load(pixels, allow_pickle=False)
            fields = json.loads(facts.read_bytes())
        except (OSError, ValueError):
            return None
        finally:
            pixels.unlink(missing_ok=True)
            facts.unlink(missing_ok=True)
        rgb.setflags(write=False)
        return DecodedImage(rgb=rgb, **fields)

    def _path(self, job_id: str, suffix: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ValueError(f"invalid job id: {job_id!r}")
        return self.root / f"{job_id}{suffix}"

    def _write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def _prune(self) -> None:
        """Drop entries no worker took (a lost message, a job answered elsewhere)."""
        cutoff = time.time() - self.max_age_s
        for entry in os.scandir(self.root):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass
