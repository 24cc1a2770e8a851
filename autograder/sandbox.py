"""Start the student's worker process under the isolation measures the machine allows.

The worker sees a fresh copy of the submission in a private temporary directory, a clean
environment, resource limits, its own process group, and (where the kernel allows) its own
network namespace. Each measure actually in force is recorded in `Isolation`, so a result
says how it was produced.
"""
from __future__ import annotations

import dataclasses
import fcntl
import functools
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

from autograder.config import Limits
from autograder.errors import GraderFault

from autograder.runtime.protocol import Channel

RUNTIME_DIR = Path(__file__).parent / "runtime"
F_SETPIPE_SZ = 1031
ISOLATION_ENV = "AUTOGRADER_ISOLATION"        # the batch's probed plan, inherited by its children
MODE_ENV = "AUTOGRADER_ISOLATION_MODE"        # force a mode: root, userns or none
ZYGOTE_ENV = "AUTOGRADER_ZYGOTE"              # the warm pool's socket, when one serves this process
# glibc returns large blocks to the kernel at once by default; every tensor or array that crosses
# then costs fresh page faults (on this VM ~10x the copy itself). Keep them in the heap instead.
MALLOC_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
                      "MALLOC_TOP_PAD_": str(16 << 20)}
WORKER_ENVIRONMENT = {**MALLOC_ENVIRONMENT,
    "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
}
BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[2]); sys.argv[2:] = []; "
             "from _autograder_runtime.{module} import main; main()")


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to start a worker for one submission."""

    submission_dir: Path
    module: str
    preload: tuple[str, ...] = ("numpy",)
    forbidden_calls: tuple[str, ...] = ()
    allowed_imports: tuple[str, ...] = ("*",)   # judged at run time too, for imports the submission makes
    forbidden_imports: tuple[str, ...] = ()
    assignment: str = "this assignment"
    limits: Limits = Limits()
    start_seconds: float = 60.0
    python: str = sys.executable
    zygote: str | None = field(default_factory=lambda: os.environ.get(ZYGOTE_ENV) or None)
    rank: dict | None = None   # one rank of a group (autograder.ranks): rank, world_size, port, network, timeout


@dataclass
class Isolation:
    """Which measures were in force for the worker (recorded in every result)."""

    private_copy: bool = True
    clean_environment: bool = True
    resource_limits: bool = False
    network_namespace: bool = False
    unprivileged_user: bool = False
    hidden_paths: bool = False
    mode: str = "none"
    loopback: bool = False
    private_tmp: bool = False
    pid_namespace: bool = False
    ipc_namespace: bool = False
    process_limit: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_measures(cls, measures: dict) -> "Isolation":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in measures.items() if k in names})


def _runtime_copy(root: Path) -> Path:
    """A private copy of the runtime package: the worker imports nothing else of the grader."""
    runtime = root / "runtime" / "_autograder_runtime"
    shutil.copytree(RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    return root / "runtime"


def _candidate_modes() -> list[str]:
    forced = os.environ.get(MODE_ENV, "").strip()
    if forced:
        return [forced]
    return (["root"] if os.geteuid() == 0 else []) + ["userns", "none"]


@functools.lru_cache(maxsize=1)
def _probe(modes: tuple[str, ...]) -> Isolation:
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as scratch:
        runtime = _runtime_copy(Path(scratch))
        request = json.dumps({"modes": list(modes), "scratch": str(Path(scratch) / "try")})
        code = BOOTSTRAP.replace("from _autograder_runtime.{module} import main; main()",
                                 "import runpy; runpy.run_module('_autograder_runtime.isolation', run_name='__main__')")
        completed = subprocess.run([sys.executable, "-I", "-c", code, request, str(runtime)], capture_output=True,
                                   text=True, env=dict(WORKER_ENVIRONMENT), timeout=60)
    try:
        report = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"error": (completed.stdout + completed.stderr)[-500:]}
    if "ok" not in report:
        return Isolation(notes=[f"isolation probe failed: {report.get('error')}"])
    return Isolation.from_measures(report["ok"])


def probe_isolation() -> Isolation:
    """What this machine allows: the batch's probed plan if inherited, else probed once (~0.1 s)."""
    inherited = os.environ.get(ISOLATION_ENV)
    if inherited:
        try:
            return Isolation.from_measures(json.loads(inherited))
        except (ValueError, TypeError):
            pass
    return _probe(tuple(_candidate_modes()))


def hidden_files_warning(isolation: Isolation) -> str:
    """The loud warning printed when the sandbox cannot hide the grader's files ('' if it can)."""
    if isolation.hidden_paths:
        return ""
    bar = "!" * 78
    return (f"{bar}\nWARNING: student code can READ the hidden tests, the reference solutions and grading.yaml\n"
            f"on this machine (isolation mode '{isolation.mode}': no mount namespace). Grade as root, or allow\n"
            f"user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also\n"
            f"kernel.apparmor_restrict_unprivileged_userns=0), before trusting these results.\n"
            + "".join(f"  - {note}\n" for note in isolation.notes) + bar)


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


def _spawn_from_zygote(path: str, config: dict, fds: list[int], timeout: float) -> _ZygoteChild:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.settimeout(timeout)
        connection.connect(path)
        socket.send_fds(connection, [json.dumps({"spawn": config}).encode()], fds)
        reply = json.loads(connection.recv(4096) or b"{}")
        connection.settimeout(None)
    except (OSError, ValueError) as error:
        connection.close()
        raise GraderFault(f"the warm worker pool at {path} did not start a worker ({error}); "
                          f"grade with AUTOGRADER_WARM=0 to bypass it") from None
    if type(reply.get("pid")) is not int:
        connection.close()
        raise GraderFault(f"the warm worker pool at {path} refused to start a worker")
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
    def start(cls, spec: WorkerSpec, isolation: Isolation | None = None) -> "WorkerProcess":
        """Start a worker (forked by the warm pool when one serves this process) under `isolation`."""
        isolation = isolation or probe_isolation()
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
                  for name in ("memory_mb", "cpu_seconds", "processes", "open_files", "file_size_mb")}
        config = {
            "submission_dir": str(work), "module": spec.module, "preload": list(spec.preload),
            "forbidden_calls": list(spec.forbidden_calls), "environment": dict(WORKER_ENVIRONMENT),
            "allowed_imports": list(spec.allowed_imports), "forbidden_imports": list(spec.forbidden_imports),
            "assignment": spec.assignment,
            "isolation": {"mode": isolation.mode, "submission_dir": str(work), "new_root": str(root / "root"),
                          "limits": limits},
        }
        if spec.rank is not None:
            config["rank"] = {k: v for k, v in spec.rank.items() if k != "network"}
            config["isolation"]["join_network"] = spec.rank.get("network")
        try:
            if spec.zygote:
                process = _spawn_from_zygote(spec.zygote, config, [to_worker_r, from_worker_w, out_w],
                                             spec.start_seconds)
            else:
                config["fds"] = [to_worker_r, from_worker_w]
                runtime = _runtime_copy(root)
                process = subprocess.Popen(
                    [spec.python, "-I", "-c", BOOTSTRAP.format(module="worker"), json.dumps(config), str(runtime)],
                    cwd=work, env=dict(WORKER_ENVIRONMENT, HOME=str(work), TMPDIR=str(work)),
                    stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(to_worker_r, from_worker_w),
                )
        except BaseException:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w, out_r, out_w):
                os.close(fd)
            shutil.rmtree(root, ignore_errors=True)
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
        self._signal_group()
        self.wait_dead()

    def _signal_group(self) -> None:
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
            self._signal_group()
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
