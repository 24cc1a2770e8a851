"""Start the student's worker process under the isolation measures the machine allows.

The worker sees a fresh copy of the submission in a private temporary directory, a clean
environment, resource limits, its own process group, and (where the kernel allows) its own
network namespace. Each measure actually in force is recorded in `IsolationMeasures`, so a result
says how it was produced.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.model import Limits
from autograder.errors import GraderFault
from autograder.runtime.contract import IsolationMeasures, IsolationPlan, WorkerConfig
from autograder.runtime.protocol import Channel
from autograder.sandbox.cleanup import remove_tree
from autograder.sandbox.environment import (
    BOOTSTRAP,
    WORKER_ENVIRONMENT,
    ZYGOTE_ENV,
    runtime_copy,
)
from autograder.sandbox.isolation import detect_isolation

F_SETPIPE_SZ = 1031


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to start a worker for one submission."""

    submission_dir: Path
    module: str
    preload: tuple[str, ...] = ("numpy",)
    forbidden_calls: tuple[str, ...] = ()
    forbidden_ops: tuple[str, ...] = ()         # aten op patterns disarmed in the dispatcher
    audit_hook: bool = True                     # False only to test the layers below it (seccomp) alone
    allowed_imports: tuple[str, ...] = ("*",)   # judged at run time too, for imports the submission makes
    forbidden_imports: tuple[str, ...] = ()
    assignment: str = "this assignment"
    limits: Limits = Limits()
    start_seconds: float = 60.0
    python: str = sys.executable
    zygote: str | None = field(default_factory=lambda: os.environ.get(ZYGOTE_ENV) or None)
    rank: dict | None = None   # one rank of a group (autograder.sandbox.ranks): rank, world_size, port, network, timeout


class _ZygoteChild:
    """A worker forked by the warm pool: Popen's poll/wait/kill over the zygote connection."""

    def __init__(self, pid: int, connection: socket.socket):
        self.pid, self.connection, self.returncode = pid, connection, None

    def _read_exit(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        try:
            if not select.select([self.connection], [], [], timeout)[0]:
                return
            data = self.connection.recv(4096)
        except OSError:
            data = b""
        try:
            message = json.loads(data) if data else {"exit": -9}
        except ValueError:
            message = {"exit": -9}
        if type(message.get("exit")) is int:
            self.returncode = message["exit"]
            self.connection.close()

    def poll(self) -> int | None:
        self._read_exit(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._read_exit(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                self.connection.send(b'{"kill": true}')
            except OSError:
                pass


def _spawn_from_zygote(path: str, config: WorkerConfig, fds: list[int], timeout: float) -> _ZygoteChild:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.settimeout(timeout)
        connection.connect(path)
        socket.send_fds(connection, [json.dumps({"spawn": dataclasses.asdict(config)}).encode()], fds)
        reply = json.loads(connection.recv(4096) or b"{}")
        connection.settimeout(None)
    except (OSError, ValueError) as error:
        connection.close()
        raise GraderFault(f"the warm worker pool at {path} did not start a worker ({error}); "
                          f"grade with AUTOGRADER_WARM=0 to bypass it") from None
    if type(reply.get("pid")) is not int:
        connection.close()
        raise GraderFault(f"the warm worker pool at {path} refused to start a worker ({reply.get('error', 'no reason given')})")
    return _ZygoteChild(reply["pid"], connection)


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


class WorkerProcess:
    """A running worker: its process, its channel, its private directory and its output."""

    def __init__(self, process: subprocess.Popen, channel: Channel, root: Path, output: _OutputCollector,
                 fds: list[int]):
        self.process, self.channel, self.root, self._output, self._fds = process, channel, root, output, fds

    @classmethod
    def start(cls, spec: WorkerSpec, isolation: IsolationMeasures | None = None) -> "WorkerProcess":
        """Start a worker (forked by the warm pool when one serves this process) under `isolation`."""
        isolation = isolation or detect_isolation()
        root = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        work = root / "work"
        shutil.copytree(spec.submission_dir, work, symlinks=False)
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        out_r, out_w = os.pipe()
        for fd in (to_worker_w, from_worker_w):
            try:  # 1 MiB pipes: a tensor crosses in one write instead of sixteen context switches
                fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        limits = {name: getattr(spec.limits, name)
                  for name in ("memory_mb", "cpu_seconds", "processes", "open_files", "file_size_mb", "scratch_mb",
                               "scratch_inodes")}
        config = WorkerConfig(
            submission_dir=str(work), module=spec.module, preload=tuple(spec.preload),
            forbidden_calls=tuple(spec.forbidden_calls), forbidden_ops=tuple(spec.forbidden_ops),
            audit=spec.audit_hook, environment=dict(WORKER_ENVIRONMENT),
            allowed_imports=tuple(spec.allowed_imports), forbidden_imports=tuple(spec.forbidden_imports),
            assignment=spec.assignment,
            isolation=IsolationPlan(mode=isolation.mode, submission_dir=str(work), new_root=str(root / "root"),
                                    limits=limits, join_network=spec.rank.get("network") if spec.rank else None),
            rank={k: v for k, v in spec.rank.items() if k != "network"} if spec.rank is not None else None,
        )
        try:
            if spec.zygote:
                process = _spawn_from_zygote(spec.zygote, config, [to_worker_r, from_worker_w, out_w],
                                             spec.start_seconds)
            else:
                config = config.with_fds([to_worker_r, from_worker_w])
                runtime = runtime_copy(root)
                process = subprocess.Popen(
                    [spec.python, "-I", "-c", BOOTSTRAP.format(module="worker"), config.to_json(), str(runtime)],
                    cwd=work, env=dict(WORKER_ENVIRONMENT, HOME=str(work), TMPDIR=str(work)),
                    stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(to_worker_r, from_worker_w),
                )
        except BaseException:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w, out_r, out_w):
                os.close(fd)
            remove_tree(root)
            raise
        for fd in (to_worker_r, from_worker_w, out_w):
            os.close(fd)
        output = _OutputCollector(out_r, spec.limits.output_kb * 1024)
        output.start()
        return cls(process, Channel(from_worker_r, to_worker_w), root, output, [from_worker_r, to_worker_w])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the worker's whole process group (children included) and clean up."""
        self.signal_group()
        self.wait_dead()

    def signal_group(self) -> None:
        """SIGKILL the worker's process group without waiting (a rank group kills all its ranks first)."""
        if self.process.returncode is not None:
            return  # reaped: its pid may belong to someone else now
        if isinstance(self.process, _ZygoteChild):
            self.process.kill()  # the zygote is the parent: it kills before it reaps
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.process.kill()

    def wait_dead(self, grace: float = 1.0) -> None:
        """Give a dying worker `grace` seconds to finish on its own, then kill it."""
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal_group()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
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
        remove_tree(self.root)

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
