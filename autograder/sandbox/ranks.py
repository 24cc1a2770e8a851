"""Rank groups: p sandboxed workers of one submission that can reach each other and nothing else.

For code that must run in several processes at once (a ring all-reduce over
torch.distributed), a `RankGroup` starts p ordinary workers of the submission, each under
the usual isolation, but sharing one private network namespace that holds only a loopback
interface and that nothing else joins. Before any student code is imported each worker
joins a gloo process group on 127.0.0.1 (autograder/runtime/ranks.py), so the student's
function runs in every rank of an initialised group, with the guard already in force.

The trusted side calls a function in every rank at once (`call`), with per-rank arguments,
and collects the results. A rank that raises, dies, hangs or deadlocks costs that call:
the other ranks are stopped at once and the first cause is raised as the usual
StudentError, WorkerCrashed or StudentTimeout naming the rank. `close` (or leaving the
`with` block) kills every rank and the namespace's holder: no rank outlives its test.
Needs the root isolation mode (joining a namespace takes CAP_SYS_ADMIN); elsewhere
`RankGroup` raises GraderFault before starting anything.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from autograder.errors import GraderFault
from autograder.sandbox.errors import StudentError, StudentTimeout, WorkerCrashed
from autograder.sandbox.isolation import detect_isolation
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

STOP_GRACE_SECONDS = 0.5  # how long an error waits for a peer's death to show before the others stop
STORE_PORT = 29500        # the namespace is private to the group: a fixed port cannot collide
# The holder: a tiny process that creates the namespace, brings loopback up and waits for its
# stdin to close (the trusted side closing it, or dying). Its /proc/PID/ns/net is the group's.
HOLDER = r"""
import ctypes, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, 9, 0, 0, 0)
if libc.unshare(0x40000000) != 0:
    sys.stdout.write("unshare failed: " + os.strerror(ctypes.get_errno()) + "\n"); sys.exit(1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40))
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
"""


class NetworkNamespace:
    """A private network namespace with loopback up, kept alive by a holder process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen([sys.executable, "-I", "-S", "-c", HOLDER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"})
        line = self.holder.stdout.readline().decode(errors="replace").strip()
        if line != "ready":
            self.close()
            raise GraderFault(f"could not create the rank group's network namespace ({line or 'no reply'}); "
                              "rank groups need the root isolation mode")
        self.path = f"/proc/{self.holder.pid}/ns/net"

    def loopback_bytes(self) -> int:
        """Bytes sent over the namespace's loopback so far (read by the trusted side: evidence)."""
        with open(f"/proc/{self.holder.pid}/net/dev") as stream:
            for line in stream:
                name, _, counters = line.partition(":")
                if name.strip() == "lo":
                    return int(counters.split()[8])            # transmitted bytes
        return 0

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        for stream in (self.holder.stdin, self.holder.stdout):
            stream.close()


@dataclasses.dataclass
class RankFailure:
    rank: int
    error: BaseException
    stopped: bool = False      # stopped by the group because another rank failed first


class RankGroup:
    """`size` workers of the submission in `spec`, joined in one gloo process group."""

    def __init__(self, spec: WorkerSpec, size: int, *, call_seconds: float = 20.0, join_seconds: float = 30.0):
        if size < 1:
            raise ValueError("a rank group needs at least one rank")
        mode = detect_isolation().mode
        if mode != "root":
            raise GraderFault(f"rank groups need the root isolation mode (this machine gives '{mode}'): "
                              "grade as root to run the multi-process tests")
        self.size, self.call_seconds = size, call_seconds
        self.network = NetworkNamespace()
        self.sessions: list[Session] = []
        try:
            for rank in range(size):
                rank_spec = dataclasses.replace(spec, rank={
                    "rank": rank, "world_size": size, "port": STORE_PORT, "network": self.network.path,
                    "timeout_seconds": join_seconds})
                self.sessions.append(Session(rank_spec, CallLimits(call_seconds, call_seconds + join_seconds + 30)))
            for session in self.sessions:
                session.begin_test()
            self._in_every_rank(lambda session: session.ensure_worker())
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- running
    def _in_every_rank(self, work) -> list[Any]:
        """Run `work(session)` for every rank at once; on the first failure stop every rank and raise it."""
        results: list[Any] = [None] * self.size
        failures: list[RankFailure] = []
        lock = threading.Lock()

        def run(rank: int) -> None:
            try:
                results[rank] = work(self.sessions[rank])
            except BaseException as error:  # noqa: BLE001 - reported below, the root cause first
                with lock:
                    first = not failures
                    failures.append(RankFailure(rank, error, stopped=rank in stopped))
                if first:
                    if isinstance(error, StudentError):
                        # A peer that died makes the others raise too (gloo: connection reset): give the
                        # dead one a moment to be noticed, so the report names the cause, not its echo.
                        time.sleep(STOP_GRACE_SECONDS)
                    self._stop_others(rank, stopped)

        stopped: set[int] = set()
        with ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(run, range(self.size)))
        if failures:
            raise _explain(failures, self.size)
        return results

    def _stop_others(self, failed_rank: int, stopped: set[int]) -> None:
        """A rank failed: the others would wait for it forever, so stop them now."""
        for rank, session in enumerate(self.sessions):
            worker = session.worker
            if rank != failed_rank and worker is not None and worker.alive():
                stopped.add(rank)
                worker.signal_group()  # the rank's own thread sees the end of its channel and cleans up

    def call(self, name: str, per_rank_args: Sequence[Sequence[Any]]) -> list[Any]:
        """Call the student's function `name` in every rank at once (rank r gets per_rank_args[r])."""
        if len(per_rank_args) != self.size:
            raise ValueError(f"expected arguments for {self.size} ranks, got {len(per_rank_args)}")
        import torch  # noqa: F401  (imported here, not first in p decoding threads at once: a half-imported module)

        def one(session: Session) -> Any:
            rank = self.sessions.index(session)
            session.begin_test()
            session.limits.test_deadline = None
            return session.request({"op": "call", "target": None, "name": name},
                                   {"args": list(per_rank_args[rank]), "kwargs": {}})

        return self._in_every_rank(one)

    def loopback_bytes(self) -> int:
        return self.network.loopback_bytes()

    # ---------------------------------------------------------------- life cycle
    def close(self) -> None:
        for session in self.sessions:
            if session.worker is not None:
                session.retire(session.worker)   # kill at once: a rank may be blocked in a receive
                session.worker = None
        self.network.close()

    def __enter__(self) -> "RankGroup":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _explain(failures: list[RankFailure], size: int) -> BaseException:
    """The first real cause among the ranks' failures, named by rank (the others were stopped for it)."""
    died = [f for f in failures if isinstance(f.error, WorkerCrashed) and not f.stopped]
    first = died[0] if died else failures[0]
    if isinstance(first.error, StudentTimeout):
        return StudentTimeout(
            f"rank {first.rank} of {size} did not return in time, and every rank was stopped: a deadlock (a receive "
            "with no matching send, or blocking sends all around the ring) or an endless loop")
    error = first.error
    if isinstance(error, StudentError):
        return StudentError(error.type_name, f"in rank {first.rank} of {size}: {error.message}", error.traceback)
    if isinstance(error, WorkerCrashed):
        return WorkerCrashed(f"rank {first.rank} of {size}: {error}")
    if isinstance(error, StudentTimeout):
        return StudentTimeout(f"rank {first.rank} of {size}: {error}")
    return error
