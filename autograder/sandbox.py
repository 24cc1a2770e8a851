"""Start the student's worker process under the isolation measures the machine allows.

The worker sees a fresh copy of the submission in a private temporary directory, a clean
environment, resource limits, its own process group, and (where the kernel allows) its own
network namespace. Each measure actually in force is recorded in `Isolation`, so a result
says how it was produced.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.runtime.protocol import Channel

RUNTIME_DIR = Path(__file__).parent / "runtime"
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to start a worker for one submission."""

    submission_dir: Path
    module: str
    preload: tuple[str, ...] = ("numpy",)
    forbidden_calls: tuple[str, ...] = ()
    memory_mb: int = 4096
    cpu_seconds: int = 900
    processes: int = 64
    open_files: int = 256
    file_size_mb: int = 64
    output_kb: int = 64
    start_seconds: float = 60.0
    python: str = sys.executable


@dataclass
class Isolation:
    """Which measures were in force for the worker (recorded in every result)."""

    private_copy: bool = True
    clean_environment: bool = True
    resource_limits: bool = False
    network_namespace: bool = False
    unprivileged_user: bool = False
    hidden_paths: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "private_copy": self.private_copy, "clean_environment": self.clean_environment,
            "resource_limits": self.resource_limits, "network_namespace": self.network_namespace,
            "unprivileged_user": self.unprivileged_user, "hidden_paths": self.hidden_paths,
            "notes": list(self.notes),
        }


def probe_isolation() -> Isolation:
    """What this machine allows, tested in a throwaway child (cheap: one fork)."""
    isolation = Isolation(resource_limits=True)
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            os._exit(0 if libc.unshare(CLONE_NEWNET) == 0 else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    isolation.network_namespace = os.waitstatus_to_exitcode(status) == 0
    if not isolation.network_namespace:
        isolation.notes.append("no network namespace (needs root or user namespaces): the worker could reach the network")
    isolation.notes.append("grader files are readable by the worker's user: hidden tests are protected only by not being named to it")
    return isolation


class _OutputCollector(threading.Thread):
    """Reads the worker's stdout+stderr, keeping the first and last `limit` bytes."""

    def __init__(self, fd: int, limit: int):
        super().__init__(daemon=True)
        self.fd, self.limit = fd, limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            room = self.limit - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail += chunk
                if len(self.tail) > self.limit:
                    self.dropped += len(self.tail) - self.limit
                    del self.tail[: len(self.tail) - self.limit]
        os.close(self.fd)

    def text(self) -> str:
        middle = f"\n... [{self.dropped} bytes of output dropped] ...\n" if self.dropped else ""
        return (bytes(self.head) + middle.encode() + bytes(self.tail)).decode("utf-8", "replace")


def _limit_child(spec: WorkerSpec) -> None:
    """Runs in the child between fork and exec: own session, limits, no network."""
    os.setsid()
    try:  # die with the trusted process, whatever kills it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    mb = 1 << 20
    for limit, value in (
        (resource.RLIMIT_AS, spec.memory_mb * mb),
        (resource.RLIMIT_CPU, spec.cpu_seconds),
        (resource.RLIMIT_NOFILE, spec.open_files),
        (resource.RLIMIT_FSIZE, spec.file_size_mb * mb),
        (resource.RLIMIT_NPROC, spec.processes),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    try:
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
    except OSError:
        pass


class WorkerProcess:
    """A running worker: its process, its channel, its private directory and its output."""

    def __init__(self, process: subprocess.Popen, channel: Channel, root: Path, output: _OutputCollector,
                 fds: list[int]):
        self.process, self.channel, self.root, self._output, self._fds = process, channel, root, output, fds

    @classmethod
    def start(cls, spec: WorkerSpec) -> "WorkerProcess":
        root = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        work = root / "work"
        shutil.copytree(spec.submission_dir, work, symlinks=False)
        runtime = root / "runtime" / "_autograder_runtime"
        shutil.copytree(RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        out_r, out_w = os.pipe()
        config = {
            "submission_dir": str(work), "module": spec.module, "module_file": str(work / f"{spec.module}.py"),
            "preload": list(spec.preload), "forbidden_calls": list(spec.forbidden_calls),
            "fds": [to_worker_r, from_worker_w],
        }
        bootstrap = (
            "import sys; sys.path.insert(0, sys.argv[2]); sys.argv[2:] = []; "
            "from _autograder_runtime.worker import main; main()"
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "TMPDIR": str(work),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
        }
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if key in os.environ:
                env[key] = os.environ[key]
        process = subprocess.Popen(
            [spec.python, "-I", "-c", bootstrap, json.dumps(config), str(root / "runtime")],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
            pass_fds=(to_worker_r, from_worker_w), preexec_fn=lambda: _limit_child(spec),
        )
        for fd in (to_worker_r, from_worker_w, out_w):
            os.close(fd)
        output = _OutputCollector(out_r, spec.output_kb * 1024)
        output.start()
        return cls(process, Channel(from_worker_r, to_worker_w), root, output, [from_worker_r, to_worker_w])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the worker's whole process group (children included) and clean up."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.wait_dead()

    def wait_dead(self, grace: float = 1.0) -> None:
        """Give a dying worker `grace` seconds to finish on its own, then kill it."""
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # orphans left in the group
        except (ProcessLookupError, PermissionError):
            pass
        self._cleanup()

    def stop(self) -> None:
        if self.alive():
            try:
                self.channel.send({"op": "exit"}, [])
                self.process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _cleanup(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        self._output.join(timeout=2)
        shutil.rmtree(self.root, ignore_errors=True)

    def describe_exit(self) -> str:
        code = self.process.poll()
        if code is None:
            return ""
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (the CPU-time limit)" if name == "SIGXCPU" else " (likely out of memory or a segfault)" if name in ("SIGSEGV", "SIGKILL", "SIGBUS") else ""
            return f": killed by {name}{hint}"
        return f": it exited with code {code}"

    def output(self) -> str:
        return self._output.text()
