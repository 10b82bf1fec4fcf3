"""Worker pool processes keep OpenCV to the configured number of threads."""

from __future__ import annotations

import cv2

from workers.tasks import limit_native_threads


def test_worker_process_limits_opencv_threads():
    """After the limit, OpenCV's pool reports the configured size; 0 leaves it as it was."""
    before = cv2.getNumThreads()
    try:
        limit_native_threads(1)
        assert cv2.getNumThreads() == 1
        cv2.setNumThreads(3)
        limit_native_threads(0)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
