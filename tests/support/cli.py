"""Run the `idetex` console script against a running stack, as a user does."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from bench.stack import IDETEX, RunningStack


def check_json(stack: RunningStack, *args: str, timeout_s: float = 180) -> list[dict[str, Any]]:
    """`idetex check ARGS... --json --addr <stack>` run as a user runs it: one dict per image."""
    out = subprocess.run(
        [str(IDETEX), "check", *args, "--json", "--addr", stack.addr],
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    ).stdout
    parsed = json.loads(out)
    return parsed if isinstance(parsed, list) else [parsed]
