"""A generic fork server: one forked child per request connection, reaped and reported on it.

It accepts requests on a SOCK_SEQPACKET unix socket: a JSON configuration plus a fixed
number of descriptors. On the request's connection it answers {"pid": N}, kills the child's
process group on {"kill": true} or when the connection closes, and reports {"exit": code}
when the child is reaped. The zygote (workers) and the warm pool's trusted server (pytest
runs) are both fork servers; this module imports nothing of either.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket

MAX_REQUEST_BYTES = 1 << 20


def run_apart(output_fd: int) -> None:
    """In a forked child that runs one job: its own session (killing its group ends all it started),
    killed with its parent, stdin from /dev/null, stdout and stderr to `output_fd`."""
    import ctypes

    os.setsid()
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed batch leaves no run behind
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)


def threads_running() -> int:
    """Threads of this process, as the kernel counts them (Python's count misses native ones, e.g. torch's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


class ForkServer:
    """A fork server: one forked child per request connection, reaped and reported on it."""

    fds_per_request = 3

    def __init__(self, listener: socket.socket):
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}      # worker pid -> its request connection
        self.connections: dict[int, int | None] = {}      # connection fd -> worker pid
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(wake_read, False)
        self.wake_read = wake_read
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_write)
        self.wake_write = wake_write

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_read, selectors.EVENT_READ, "reap")
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    try:
                        connection, _ = self.listener.accept()
                    except OSError:
                        continue
                    self.connections[connection.fileno()] = None
                    self.selector.register(connection, selectors.EVENT_READ, "request")
                elif key.data == "reap":
                    try:
                        os.read(self.wake_read, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                else:
                    self.on_request(key.fileobj)

    def on_request(self, connection: socket.socket) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST_BYTES, 4)
        except OSError:
            data, fds = b"", []
        pid = self.connections.get(connection.fileno())
        if not data:  # the trusted side is gone: so is its worker
            self.kill(pid)
            self.drop(connection)
            return
        try:
            request = json.loads(data)
        except ValueError:
            request = {}
        if request.get("kill"):
            self.kill(pid)
        elif "spawn" in request and pid is None and len(fds) == self.fds_per_request:
            self.spawn(connection, request["spawn"], fds)
        for fd in fds:
            os.close(fd)

    def spawn(self, connection: socket.socket, config: dict, fds: list[int]) -> None:
        threads = threads_running()
        if threads > 1:  # a child forked beside other threads inherits their locks held, and hangs
            connection.send(json.dumps({"error": f"the fork server runs {threads} threads; it must fork single-threaded"}).encode())
            return
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                self.listener.close()
                self.selector.close()
                for fd in [*self.connections, self.wake_read, self.wake_write]:
                    if fd != connection.fileno():
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                self.child(config, fds)
            except BaseException:
                import traceback

                traceback.print_exc()  # to the child's stderr: the run's log, or the worker's output
            finally:
                os._exit(70)
        self.children[pid] = connection
        self.connections[connection.fileno()] = pid
        connection.send(json.dumps({"pid": pid}).encode())

    def child(self, config: dict, fds: list[int]) -> None:
        """In the forked child: serve one request (never returns). Subclasses say what runs."""
        raise NotImplementedError

    def kill(self, pid: int | None) -> None:
        if pid is not None and pid in self.children:  # not reaped yet: the pid is still ours
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is None:
                continue  # an orphan we adopted as subreaper
            try:
                os.killpg(pid, signal.SIGKILL)  # whatever the worker left in its group
            except (ProcessLookupError, PermissionError):
                pass
            try:
                connection.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                pass
            self.connections[connection.fileno()] = -1

    def drop(self, connection: socket.socket) -> None:
        self.selector.unregister(connection)
        self.connections.pop(connection.fileno(), None)
        connection.close()
