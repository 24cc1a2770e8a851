"""Warm processes for a batch: a trusted server forking one pytest run per submission, and a zygote.

The trusted server has imported pytest, hypothesis, numpy, torch (one thread, no ops run, no
CUDA) and the grading plugin once; each submission's suite runs in a freshly forked child, so it
still starts from clean state. The zygote (runtime/zygote.py) forks the sandboxed workers of those
children. Neither pays the torch import per submission.
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, replace
from pathlib import Path

from autograder.errors import GraderFault
from autograder.pipeline.pytest_run import RunRequest, pytest_arguments
from autograder.runtime.forkserver import ForkServer, run_apart
from autograder.sandbox.environment import BOOTSTRAP, WORKER_ENVIRONMENT, ZYGOTE_ENV, runtime_copy, trusted_environment
from autograder.sandbox.isolation import detect_isolation

REFUSED = "the warm trusted server refused the run"
TRUSTED_PRELOAD = ("numpy", "torch", "hypothesis", "pytest", "autograder.harness.plugin", "autograder.harness",
                   "autograder.harness.strategies")


class TrustedServer(ForkServer):
    """Forks one pytest run per request; the request's one descriptor becomes its stdout/stderr."""

    fds_per_request = 1

    def child(self, config: dict, fds: list[int]) -> None:
        import pytest

        serving = "serve" in config  # a suite's collect-once server: fds[0] is its listening socket
        run_apart(os.open(os.devnull, os.O_WRONLY) if serving else fds[0])
        quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning",  # the plugin was imported by the server
                 "-W", "ignore::hypothesis.errors.HypothesisSideeffectWarning"]  # by the server's warm-up
        request = RunRequest(**(config["serve"] if serving else config))
        extra = ["--serve-collected", str(fds[0])] if serving else []
        code = pytest.main(pytest_arguments(request) + quiet + extra)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if code in (0, 1) else int(code))


def _preload_trusted() -> None:
    import importlib

    for name in TRUSTED_PRELOAD:
        module = importlib.import_module(name)
        if name == "torch":
            module.set_num_threads(1)  # a forking process must never have run a threaded op
    _warm_up_hypothesis()
    gc.freeze()  # children skip the preloaded heap in gc.collect (hypothesis calls it) and share its pages


def _warm_up_hypothesis() -> None:
    """Run one trivial example, so hypothesis' one-time set-up (random registration) is inherited."""
    from hypothesis import given, settings, strategies

    @settings(max_examples=1, database=None, derandomize=True, deadline=None)
    @given(strategies.integers())
    def warm(value: int) -> None:
        pass

    warm()


def serve(argv: list[str]) -> None:
    """`python -m autograder.pipeline.warm_pool CONFIG`: the trusted server's main."""
    import ctypes
    import signal

    config = json.loads(argv[1])
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)              # PR_SET_CHILD_SUBREAPER
    _preload_trusted()
    TrustedServer(socket.socket(fileno=config["listener_fd"])).serve()


def _listener(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(64)
    listener.set_inheritable(True)
    return listener


class WarmPool:
    """The batch's warm trusted server and zygote; `run` grades one request in a forked child."""

    def __init__(self, preload: tuple[str, ...]):
        self.preload = tuple(preload)
        self.isolation = detect_isolation()
        self.directory = Path(tempfile.mkdtemp(prefix="autograder-pool-"))
        zygote_listener = _listener(self.directory / "zygote.sock")
        server_listener = _listener(self.directory / "server.sock")
        runtime = runtime_copy(self.directory)
        zygote_config = {"listener_fd": zygote_listener.fileno(), "preload": list(self.preload)}
        self.zygote = subprocess.Popen(
            [sys.executable, "-I", "-c", BOOTSTRAP.format(module="zygote"), json.dumps(zygote_config), str(runtime)],
            env=dict(WORKER_ENVIRONMENT), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            pass_fds=(zygote_listener.fileno(),),
        )
        environment = trusted_environment(dict(os.environ), json.dumps(self.isolation.as_dict()),
                                          **{ZYGOTE_ENV: str(self.directory / "zygote.sock")})
        self.server = subprocess.Popen(
            [sys.executable, "-m", "autograder.pipeline.warm_pool", json.dumps({"listener_fd": server_listener.fileno()})],
            env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(server_listener.fileno(),),
            start_new_session=True,  # Ctrl-C of the batch must not interrupt the runs in flight
        )
        zygote_listener.close()
        server_listener.close()
        self.closed = False
        self.suites: dict[str, socket.socket | None] = {}   # suite key -> the spawn connection of its collected server
        self.suites_lock = threading.Lock()

    def _suite_socket(self, request: RunRequest) -> Path | None:
        with self.suites_lock:
            return self._start_suite(request)

    def _start_suite(self, request: RunRequest) -> Path | None:
        """The socket of the collected server of this request's suite, started on first use (None: unusable)."""
        if request.list_file or request.keyword:
            return None  # collection only, or a selection by keyword: a fresh run
        template = asdict(replace(request, submission_dir=request.suite_dir, outcomes_file=os.devnull, visibility="all"))
        key = json.dumps(template, sort_keys=True)
        path = self.directory / f"c{list(self.suites).index(key) if key in self.suites else len(self.suites)}.sock"
        if key in self.suites:
            connection = self.suites[key]
            if connection is not None and not _wait_readable(connection, 0):
                return path  # alive: an exit report would have made it readable
            if connection is not None:
                connection.close()
                path.unlink(missing_ok=True)
        try:
            listener = _listener(path)
        except OSError:  # say, a socket path past the 108 bytes AF_UNIX allows: fresh runs instead
            self.suites[key] = None
            return None
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(str(self.directory / "server.sock"))
            socket.send_fds(connection, [json.dumps({"spawn": {"serve": template}}).encode()], [listener.fileno()])
            reply = json.loads(connection.recv(4096) or b"{}") if _wait_readable(connection, 60) else {}
        except (OSError, ValueError):
            reply = {}
        finally:
            listener.close()
        if type(reply.get("pid")) is not int:
            connection.close()
            self.suites[key] = None
            return None
        self.suites[key] = connection
        return path

    def run(self, request, *, timeout: float, log_file: Path | None = None) -> str | None:
        """Run the suite of `request` in a forked trusted child; returns a fault or None."""
        if self.server.poll() is not None or self.zygote.poll() is not None:
            raise GraderFault("the warm grading pool stopped; rerun the batch (or set AUTOGRADER_WARM=0)")
        suite = self._suite_socket(request)
        if suite is not None:
            fault = self._run_on(suite, {"submission_dir": request.submission_dir, "outcomes_file": request.outcomes_file,
                                         "visibility": request.visibility}, timeout, log_file)
            if fault is None or not fault.startswith(REFUSED):
                return fault  # a refused fork (say, a thread the suite's import started): a fresh run instead
        return self._run_on(self.directory / "server.sock", asdict(request), timeout, log_file)

    def _run_on(self, server: Path, config: dict, timeout: float, log_file: Path | None) -> str | None:
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if log_file else os.open(os.devnull, os.O_WRONLY)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(str(server))
            socket.send_fds(connection, [json.dumps({"spawn": config}).encode()], [log])
            os.close(log)
            log = -1
            if not _wait_readable(connection, 600):
                return "the warm trusted server did not start the run"
            reply = json.loads(connection.recv(4096) or b"{}")
            if type(reply.get("pid")) is not int:
                return f"{REFUSED} ({reply.get('error', 'no reason given')})"
            code = _receive_exit(connection, timeout)
            if code is None:
                connection.send(b'{"kill": true}')
                _receive_exit(connection, 60)
                return "timeout"
            return None if code in (0, 1) else f"the trusted test run exited with code {code}"
        finally:
            if log >= 0:
                os.close(log)
            connection.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for connection in self.suites.values():
            if connection is not None:
                connection.close()
        for process in (self.server, self.zygote):
            process.kill()
            process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "WarmPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _wait_readable(connection: socket.socket, timeout: float) -> bool:
    return bool(select.select([connection], [], [], timeout)[0])


def _receive_exit(connection: socket.socket, timeout: float) -> int | None:
    if not _wait_readable(connection, timeout):
        return None
    try:
        message = json.loads(connection.recv(4096) or b'{"exit": -9}')
    except (OSError, ValueError):
        return -9
    return message.get("exit") if type(message.get("exit")) is int else -9


_POOLS: dict[tuple[str, ...], WarmPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(preload: tuple[str, ...]) -> WarmPool:
    """The process's pool for this preload set, started on first use and closed at exit."""
    with _POOLS_LOCK:
        pool = _POOLS.get(tuple(preload))
        if pool is not None and not pool.closed and (pool.server.poll() is not None or pool.zygote.poll() is not None):
            pool.close()  # it died (killed, out of memory): the rest of the batch gets a new one
        if pool is None or pool.closed:
            pool = _POOLS[tuple(preload)] = WarmPool(preload)
            if len(_POOLS) == 1:
                atexit.register(close_shared_pools)
        return pool


def close_shared_pools() -> None:
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()


if __name__ == "__main__":
    serve(sys.argv)
