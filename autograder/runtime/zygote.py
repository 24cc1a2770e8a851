"""The warm worker pool: a process that has loaded numpy and torch and forks workers on demand.

Started once per batch with a clean environment (nothing of the grader in its memory), it
accepts spawn requests on a SOCK_SEQPACKET unix socket: a JSON worker configuration plus the
worker's three descriptors (request pipe, reply pipe, output pipe). The forked child runs the
same `worker.run` as a freshly started worker, so the isolation is identical. On the request's
connection the zygote answers {"pid": N}, kills the worker's process group on {"kill": true} or
when the connection closes, and reports {"exit": code} when the worker is reaped.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys

from . import worker
from .forkserver import ForkServer

PR_SET_CHILD_SUBREAPER = 36


class Zygote(ForkServer):
    """The worker fork server: each child becomes a sandboxed worker."""

    fds_per_request = 3

    def child(self, config: dict, fds: list[int]) -> None:
        """In the forked child: wire the descriptors, run the worker (never returns)."""
        request_fd, reply_fd, output_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds)  # out of the way
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(request_fd, 3, inheritable=False)
        os.dup2(reply_fd, 4, inheritable=False)
        os.closerange(5, 65536)
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        worker.run(dict(config, fds=[3, 4]))


def main() -> None:
    config = json.loads(sys.argv[1])
    os.setsid()
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG: die with the trusted side
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # adopt orphans, so none outlive the pool
    worker.preload(config.get("preload", []))
    import gc

    gc.freeze()  # forked workers share the preloaded heap instead of copying it on their first collection
    listener = socket.socket(fileno=config["listener_fd"])
    Zygote(listener).serve()


if __name__ == "__main__":
    main()
