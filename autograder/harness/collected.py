"""Collect once, fork per submission: one suite's collected pytest session serving a whole batch.

The warm pool starts one such process per suite (`pytest ... --serve-collected FD`). It configures
pytest and collects the suite once (imports the tests and oracles, rewrites their asserts, applies
each group's Hypothesis settings); then, instead of running the tests, it becomes a fork server on
the listening socket FD. Each submission is a forked child that takes its submission folder,
outcomes file and visibility, runs the collected tests and exits: what a fresh pytest per
submission does, less its start-up and collection. The child never shares a worker, an oracle
store connection or a test's state with another child: the parent ran no test.
"""
from __future__ import annotations

import gc
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from autograder.runtime.forkserver import ForkServer, run_apart


class CollectedSuite(ForkServer):
    """Forks one test run per request; the request's one descriptor becomes the run's stdout/stderr."""

    fds_per_request = 1

    def __init__(self, listener: socket.socket, session: pytest.Session, state: Any,
                 select: Callable[[Any, list], tuple[list, list]]):
        super().__init__(listener)
        self.session, self.state, self.select = session, state, select

    def child(self, config: dict, fds: list[int]) -> None:
        run_apart(fds[0])
        _redirect_capture(self.session.config, fds[0])
        state, session = self.state, self.session
        state.clock["configure"] = time.perf_counter()
        state.submission = Path(config["submission_dir"]).resolve()
        state.outcomes_file = Path(config["outcomes_file"])
        state.visibility = config.get("visibility", "all")
        state.cache.after_fork()
        if state.visibility != "all":
            selected, deselected = self.select(state, session.items)
            if deselected:
                session.config.hook.pytest_deselected(items=deselected)
            session.items = selected
        state.clock["collected"] = time.perf_counter()
        from _pytest.main import pytest_runtestloop as run_tests

        try:
            run_tests(session)
            status = pytest.ExitCode.TESTS_FAILED if session.testsfailed else pytest.ExitCode.OK
        except session.Interrupted:
            status = pytest.ExitCode.INTERRUPTED
        session.config.hook.pytest_sessionfinish(session=session, exitstatus=status)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(status) if status in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else 2)


def _redirect_capture(config: pytest.Config, fd: int) -> None:
    """pytest's capture restores the descriptors it saved at configure: make those `fd` too."""
    capture = config.pluginmanager.getplugin("capturemanager")
    global_capture = getattr(capture, "_global_capturing", None)
    for part in (getattr(global_capture, "out", None), getattr(global_capture, "err", None)):
        saved = getattr(part, "targetfd_save", None)
        if isinstance(saved, int):
            os.dup2(fd, saved)


def serve(session: pytest.Session, listener_fd: int, state: Any, select: Callable) -> None:
    """Become the suite's fork server (never returns): the collected items stay in this process."""
    gc.collect()
    gc.freeze()  # the children share the collected suite's pages and skip them in gc
    CollectedSuite(socket.socket(fileno=listener_fd), session, state, select).serve()
