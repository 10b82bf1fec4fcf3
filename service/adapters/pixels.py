"""Pixel handoff: the API's decoded image, passed to the worker so it need not decode again.

A sync request decodes the upload in the API (to fail bad input at once) and then waits
for the worker, which would decode the same bytes again: about a fifth of a sync
request's time on a 2-core machine. When API and workers share a filesystem (local blob
store), the API leaves the decoded pixels for the job and the worker takes them once.
Async requests do not hand off: writing ~0.6 MB per job into the page cache and reading it
back cost the API more CPU than it saved the worker (tried with `bench.pipeline_bench`).

Contract: `put(job_id, image)` may decline (returns False); `take(job_id)` returns the image
and forgets it, or None, in which case the worker decodes the original as usual.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import os
import struct
import threading
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
    """One file per job in a shared directory: a short header (the decoded image's facts as JSON)
    and the raw pixels, written under a temporary name and renamed, so a worker sees it whole or
    not at all.

    Bounded: images above `max_pixels` and puts that would take the directory past `max_bytes`
    are declined (the worker then decodes the original; a backlog of queued async jobs must not
    fill the disk). Self-cleaning: entries older than `max_age_s` (a lost message, a job answered
    elsewhere) are removed by a put, at most once every `prune_interval_s`; the same scan counts
    the bytes held, which each put adds to."""

    MAGIC = b"IDXP1\n"

    def __init__(
        self,
        root: str | Path,
        max_pixels: int = 16_000_000,
        max_age_s: float = 600.0,
        max_bytes: int = 1024 * 1024 * 1024,
        prune_interval_s: float = 5.0,
    ) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.prune_interval_s = prune_interval_s
        self._lock = threading.Lock()  # the API's request threads share one handoff
        self._held = 0  # bytes in the directory at the last scan, plus this process's puts since
        self._scanned_at = -math.inf

    def put(self, job_id: str, image: DecodedImage) -> bool:
        rgb = np.ascontiguousarray(image.rgb)
        if rgb.dtype != np.uint8 or rgb.shape[0] * rgb.shape[1] > self.max_pixels:  # rgb may be reduced
            return False
        path = self._path(job_id)
        facts = {f.name: getattr(image, f.name) for f in dataclasses.fields(image) if f.name != "rgb"}
        facts["shape"] = list(rgb.shape)
        header = json.dumps(facts).encode()
        size = len(self.MAGIC) + 4 + len(header) + rgb.nbytes
        if not self._reserve(size):
            return False
        tmp = self.root / f".tmp-{os.getpid()}-{threading.get_ident()}-{job_id}"
        try:
            with open(tmp, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as f:
                f.write(self.MAGIC + struct.pack(">I", len(header)) + header)
                f.write(rgb.data)
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk: the worker decodes the original instead
            tmp.unlink(missing_ok=True)
            return False
        return True

    def take(self, job_id: str) -> DecodedImage | None:
        path = self._path(job_id)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        finally:
            path.unlink(missing_ok=True)
        try:
            return self._parse(data)
        except (ValueError, TypeError, KeyError, struct.error):
            return None  # not ours or damaged: the worker decodes the original

    def _parse(self, data: bytes) -> DecodedImage:
        if not data.startswith(self.MAGIC):
            raise ValueError("not a pixel handoff file")
        start = len(self.MAGIC) + 4
        (length,) = struct.unpack(">I", data[len(self.MAGIC) : start])
        facts = json.loads(data[start : start + length])
        shape = tuple(int(v) for v in facts.pop("shape"))
        rgb = np.frombuffer(data, dtype=np.uint8, offset=start + length).reshape(shape)  # read-only
        return DecodedImage(rgb=rgb, **facts)

    def _path(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ValueError(f"invalid job id: {job_id!r}")
        return self.root / f"{job_id}.px"

    def _reserve(self, size: int) -> bool:
        """Count `size` bytes as held, or False when that would pass max_bytes; scans (and prunes)
        the directory when the last scan is older than prune_interval_s, or than a second when
        the count says full (workers have taken entries since)."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._scanned_at
            if stale >= self.prune_interval_s or (self._held + size > self.max_bytes and stale >= 1.0):
                self._held = self._scan()
                self._scanned_at = now
            if self._held + size > self.max_bytes:
                return False
            self._held += size
            return True

    def _scan(self) -> int:
        """Remove entries older than max_age_s; the bytes of those left."""
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age_s
        held = 0
        for entry in os.scandir(self.root):
            try:
                st = entry.stat()
                if st.st_mtime < cutoff:
                    os.unlink(entry.path)
                else:
                    held += st.st_size
            except OSError:
                pass
        return held
