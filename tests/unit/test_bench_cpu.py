"""The pipeline benchmark's CPU accounting: per-process CPU from /proc, attributed per image."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.stack import cmdline, cpu_seconds, process_role


def test_cpu_seconds_grow_with_work_done():
    """A busy loop of ~0.3 s shows up as at least 0.2 s more CPU for this process."""
    before = cpu_seconds([os.getpid()])[os.getpid()]
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert cpu_seconds([os.getpid()])[os.getpid()] - before >= 0.2


def test_a_process_that_has_gone_is_left_out():
    """An exited child has no /proc entry: it is skipped, not reported as 0 or an error."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert child.pid not in cpu_seconds([child.pid])


def test_roles_come_from_the_command_line():
    """The stack's own pid is the API; other processes are named by what they run."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)", "celery"])
    try:
        deadline = time.monotonic() + 5
        while not cmdline(sleeper.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # /proc/<pid>/cmdline reads empty while the child is still in exec
        assert process_role(os.getpid(), os.getpid(), None) == "api"
        assert process_role(sleeper.pid, os.getpid(), sleeper.pid) == "celery-main"
        assert process_role(sleeper.pid, os.getpid(), None) == "celery-pool"
    finally:
        sleeper.kill()
        sleeper.wait()
