"""Start and stop the real Triton Inference Server that ships in the `nvidia-pytriton` wheel.

The wheel holds `pytriton/tritonserver/bin/tritonserver`, its libraries in
`nvidia_pytriton.libs/`, the Python backend and one backend stub per Python version.
`TritonServer` prepares a writable backends folder (the backend plus the stub for this
interpreter), sets the environment the server and its stub processes need, and runs
`tritonserver --model-control-mode=explicit --load-model=idetex_lite` as a child process:

- LD_LIBRARY_PATH: the wheel's `nvidia_pytriton.libs` (the copied backend and stub no
  longer find them through their $ORIGIN rpath);
- PATH: this interpreter's `bin/` first, so the stub's embedded Python finds the virtual
  environment (its pyvenv.cfg) and with it onnxruntime and numpy;
- PYTHONPATH: the repository root, so `model.py` imports `service.iqa.*`.

Nothing happens at import time. Usage::

    with TritonServer(Path("model_repository")) as server:
        print(server.grpc_url, server.http_url)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from service.iqa.contract import MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
STUB_NAME = "triton_python_backend_stub"
SHM_BYTES = 16 * 1024 * 1024  # python backend shared memory per instance: a batch of 8 is ~9.4 MiB in


class TritonNotInstalled(RuntimeError):
    """The Triton binary from the nvidia-pytriton wheel (or its Python backend stub) is missing."""


class TritonStartupError(RuntimeError):
    """Triton exited or did not become ready in time; the message ends with the log's tail."""


@dataclass(frozen=True)
class TritonDistribution:
    """Paths inside the installed nvidia-pytriton wheel."""

    binary: Path
    libs: Path
    python_backend: Path
    stub: Path


def find_distribution(python_version: str | None = None) -> TritonDistribution:
    """Locate tritonserver, its libs, the Python backend and the stub for `python_version` (default: ours)."""
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        import pytriton
    except ImportError as exc:
        raise TritonNotInstalled(
            "the nvidia-pytriton wheel is not installed: pip install nvidia-pytriton"
        ) from exc
    root = Path(pytriton.__file__).resolve().parent
    dist = TritonDistribution(
        binary=root / "tritonserver" / "bin" / "tritonserver",
        libs=root.parent / "nvidia_pytriton.libs",
        python_backend=root / "tritonserver" / "backends" / "python",
        stub=root / "tritonserver" / "python_backend_stubs" / version / STUB_NAME,
    )
    if not dist.binary.is_file():
        raise TritonNotInstalled(
            f"no tritonserver binary at {dist.binary} (is nvidia-pytriton fully installed?)"
        )
    if not dist.stub.is_file():
        raise TritonNotInstalled(f"the wheel has no Python backend stub for Python {version} ({dist.stub})")
    return dist


def prepare_backends(dist: TritonDistribution, backends_dir: Path) -> Path:
    """Fill `backends_dir/python/` with the wheel's Python backend plus the stub; return `backends_dir`."""
    target = backends_dir / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in [*dist.python_backend.iterdir(), dist.stub]:
        if source.is_file():
            shutil.copy2(source, target / source.name)
    return backends_dir


def find_free_port() -> int:
    """A TCP port that was free a moment ago on localhost (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def supports_model_config_name(binary: Path) -> bool:
    """Whether this tritonserver build knows `--model-config-name` (Triton 2.41 of the 0.5.0 wheel: no)."""
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30, check=False)
    return "--model-config-name" in result.stdout + result.stderr


def stage_config(model_repository: Path, config_name: str, staged: Path) -> Path:
    """Copy the repository to `staged`, making `configs/<name>.pbtxt` each model's config.pbtxt."""
    shutil.copytree(model_repository, staged, dirs_exist_ok=True)
    found = False
    for model_dir in staged.iterdir():
        chosen = model_dir / "configs" / f"{config_name}.pbtxt"
        if chosen.is_file():
            shutil.copy2(chosen, model_dir / "config.pbtxt")
            found = True
    if not found:
        raise FileNotFoundError(f"no model in {model_repository} has configs/{config_name}.pbtxt")
    return staged


class TritonServer:
    """One tritonserver child process serving `model_repository` on the given (or free) ports."""

    def __init__(
        self,
        model_repository: Path,
        *,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        model_config_name: str | None = None,
        log_path: Path | None = None,
        work_dir: Path | None = None,
        models: Sequence[str] = (MODEL_NAME,),
        python_path: Sequence[Path] = (REPO_ROOT,),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        self.http_port = http_port or find_free_port()
        self.grpc_port = grpc_port or find_free_port()
        self.metrics_port = metrics_port or find_free_port()
        self.model_config_name = model_config_name
        self.models = tuple(models)
        self.python_path = tuple(Path(p) for p in python_path)
        self.extra_args = tuple(extra_args)
        self._own_work_dir = work_dir is None
        self._work_dir = work_dir
        self._given_log_path = log_path
        self._log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise RuntimeError("the server has not been started")
        return self._log_path

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Prepare backends and environment, then launch tritonserver (returns at once; see wait_ready)."""
        if self.is_running():
            raise RuntimeError(f"tritonserver already running (pid {self.pid})")
        dist = find_distribution()
        work = self._work_dir or Path(tempfile.mkdtemp(prefix="idetex-triton-"))
        self._work_dir = work
        work.mkdir(parents=True, exist_ok=True)
        backends = prepare_backends(dist, work / "backends")
        self._log_path = self._given_log_path or work / "tritonserver.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [str(dist.binary), *self._arguments(dist, backends, work)]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(dist),
                start_new_session=True,  # its own process group: stop() can reap the stubs too
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the server and every loaded model are ready; raise TritonStartupError otherwise."""
        deadline = time.monotonic() + timeout
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in self.models)]
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise TritonStartupError(f"tritonserver exited with code {code}\n{self.log_tail()}")
            if all(_http_ok(f"http://{self.http_url}{path}") for path in paths):
                return
            time.sleep(0.25)
        raise TritonStartupError(f"tritonserver not ready after {timeout:.0f} s\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Ask tritonserver to exit (SIGTERM), kill its process group after `timeout` s; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None:
            _kill_group_leftovers(process.pid)
        if self._work_dir is not None:  # a temporary work dir goes entirely, log included
            shutil.rmtree(self._work_dir / "backends", ignore_errors=True)
            shutil.rmtree(self._work_dir / "repository", ignore_errors=True)
            if self._own_work_dir:
                shutil.rmtree(self._work_dir, ignore_errors=True)
                self._work_dir = None

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def _arguments(self, dist: TritonDistribution, backends: Path, work: Path) -> list[str]:
        repository = self.model_repository
        config_args: list[str] = []
        if self.model_config_name:
            if supports_model_config_name(dist.binary):
                config_args = [f"--model-config-name={self.model_config_name}"]
            else:  # older Triton: serve a copy whose config.pbtxt is the chosen one
                repository = stage_config(repository, self.model_config_name, work / "repository")
        shm_prefix = f"idetex_{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        return [
            f"--model-repository={repository}",
            f"--backend-directory={backends}",
            "--model-control-mode=explicit",
            *(f"--load-model={m}" for m in self.models),
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
            f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
            f"--backend-config=python,shm-default-byte-size={SHM_BYTES}",
            *config_args,
            *self.extra_args,
        ]

    def _environment(self, dist: TritonDistribution) -> dict[str, str]:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = _prepend(str(dist.libs), env.get("LD_LIBRARY_PATH"))
        env["PATH"] = _prepend(str(Path(sys.executable).parent), env.get("PATH"))
        site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        python_path = [*(str(p) for p in self.python_path), *sorted(site)]
        env["PYTHONPATH"] = _prepend(os.pathsep.join(python_path), env.get("PYTHONPATH"))
        return env


def _prepend(value: str, existing: str | None) -> str:
    return f"{value}{os.pathsep}{existing}" if existing else value


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM tritonserver when its parent dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill_group_leftovers(pgid: int) -> None:
    """Kill stub processes left in the server's own process group (after a crash or a SIGKILL)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run Triton in the foreground until Ctrl-C: `python -m service.adapters.triton_server`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-repository", type=Path, default=REPO_ROOT / "model_repository")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--model-config-name", default=None)
    parser.add_argument("--log-path", type=Path, default=None)
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    server = TritonServer(
        args.model_repository,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        model_config_name=args.model_config_name,
        log_path=args.log_path,
    )
    server.start()
    try:
        server.wait_ready(args.ready_timeout)
        print(
            f"triton ready: grpc {server.grpc_url}, http {server.http_url}, log {server.log_path}", flush=True
        )
        while server.is_running():
            time.sleep(1)
        print(server.log_tail(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
