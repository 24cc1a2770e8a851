"""The warm check server: one per student, course and environment, gone after ten idle minutes.

`autograder check` asks it over a unix socket in a private folder (0700) and prints its answer;
when none is running, the first check starts one (a detached process) and asks it once it
listens. The server runs each check exactly as `check.run` would in the student's process, with
the warm pool of a batch kept between checks: pytest, torch and the collected public suite stay
loaded. Its name hashes the course file, the grader's own files and the AUTOGRADER_* settings, so
a changed course or grader starts a new server. Nothing crosses a trust boundary here: the
student runs it on their own machine, as themselves.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_SECONDS = 120.0
MAX_REQUEST = 1 << 20


def wanted() -> bool:
    off = ("0", "false", "no", "off")
    return (os.environ.get("AUTOGRADER_WARM", "1").strip().lower() not in off
            and os.environ.get("AUTOGRADER_CHECK_SERVER", "1").strip().lower() not in off)


def socket_path(config: str) -> Path:
    """The server's socket: one per course file (as it is now), grader version and settings."""
    digest = hashlib.sha256()
    course = Path(config)
    for path in [course, *sorted((course.parent / "tests").rglob("*"))]:  # the course file and its (public) suites
        digest.update(str(path).encode() + str(path.stat().st_mtime_ns).encode())
    package = Path(__file__).resolve().parents[2]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.stat().st_mtime_ns).encode())
    digest.update(sys.executable.encode())
    digest.update(json.dumps(sorted((k, v) for k, v in os.environ.items() if k.startswith("AUTOGRADER_"))).encode())
    folder = Path(tempfile.gettempdir()) / f"autograder-check-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not a private folder of this user")
    return folder / f"{digest.hexdigest()[:20]}.sock"


def ask(request: dict) -> tuple[str, int] | None:
    """The server's answer (its output and exit code), starting it if needed; None: check here instead."""
    try:
        path = socket_path(request["config"])
        answer = _ask(path, request)
        if answer is None:
            _start(path)
            answer = _ask(path, request, wait=START_SECONDS)
        return answer
    except OSError:
        return None


def _ask(path: Path, request: dict, wait: float = 0.0) -> tuple[str, int] | None:
    deadline = time.monotonic() + wait
    while True:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
    with connection:
        connection.sendall(json.dumps(request).encode() + b"\n")
        data = b"".join(iter(lambda: connection.recv(1 << 16), b""))
    try:
        reply = json.loads(data)
        return str(reply["text"]), int(reply["code"])
    except (ValueError, KeyError, TypeError):
        return None  # the server died mid-check, or the check raised: check here instead, which says why


def _start(path: Path) -> None:
    subprocess.Popen([sys.executable, "-m", "autograder.commands.check.server", str(path)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, env=dict(os.environ))


def serve(path: Path, idle_seconds: float) -> None:
    from autograder.commands.check import run

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: close the warm pool on the way out
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError:
        return  # another server took this name first: it serves
    listener.listen(16)
    listener.settimeout(idle_seconds)
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                return
            with connection:
                request = json.loads(_read_line(connection))
                output = io.StringIO()
                try:
                    reply = {"text": "", "code": run(request, output)}
                    reply["text"] = output.getvalue()
                except Exception:  # a bad copy or course: the student's own process checks and says why
                    reply = {"local": True}
                with contextlib.suppress(OSError):
                    connection.sendall(json.dumps(reply).encode())
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        listener.close()


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
        chunk = connection.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return data


if __name__ == "__main__":
    serve(Path(sys.argv[1]), float(os.environ.get("AUTOGRADER_CHECK_IDLE_SECONDS", "600")))
