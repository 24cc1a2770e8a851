"""The worker's isolation: what student code can see, reach and survive, in each mode this machine allows."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.errors import SubmissionRejected
from autograder.sandbox.remote import StudentModule
from autograder.errors import GraderFault
from autograder.runtime.contract import IsolationMeasures
from autograder.sandbox.isolation import _detect
from autograder.sandbox.worker import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"
SPY = f'''
import os
import socket


def look():
    """What the sandbox lets this code see and do."""
    seen = {{"root": sorted(os.listdir("/")), "uid": os.getuid(), "env": sorted(os.environ)}}
    try:
        seen["repo"] = sorted(os.listdir({str(ROOT)!r}))
    except OSError:
        seen["repo"] = []
    for path in ({str(TOY_COURSE / "grading.yaml")!r}, {str(ROOT / "autograder" / "plugin.py")!r}, "/etc/shadow"):
        try:
            open(path).read(10)
            seen[path] = "read"
        except OSError as error:
            seen[path] = type(error).__name__
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2) as client:
            client.sendall(b"ping")
            seen["loopback"] = server.accept()[0].recv(4).decode()
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=1).close()
        seen["internet"] = "reached"
    except OSError as error:
        seen["internet"] = type(error).__name__
    return seen
'''


def _modes() -> list[str]:
    return [m for m in ("root", "userns") if _detect((m,)).mode == m]


def _session(tmp_path: Path, source: str, mode: str) -> Session:
    folder = tmp_path / f"sub-{mode}"
    folder.mkdir()
    (folder / "spy.py").write_text(textwrap.dedent(source))
    return Session(WorkerSpec(folder, "spy", zygote=None), CallLimits(30, 60))


@pytest.mark.parametrize("mode", _modes())
def test_worker_sees_only_the_system_and_its_submission(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("AUTOGRADER_ISOLATION", json.dumps(IsolationMeasures(mode=mode).as_dict()))
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "do-not-leak")
    session = _session(tmp_path, SPY, mode)
    try:
        seen = StudentModule(session).look()
    finally:
        session.close()
    assert seen[str(TOY_COURSE / "grading.yaml")] == "FileNotFoundError"
    assert seen[str(ROOT / "autograder" / "plugin.py")] == "FileNotFoundError"
    assert seen["/etc/shadow"] != "read"
    assert "GRADER_SECRET_TOKEN" not in seen["env"]
    assert seen["loopback"] == "ping"
    assert seen["internet"] != "reached"
    assert set(seen["repo"]) <= {".venv"}  # at most the Python environment, mounted read-only
    # /root and /home stay out, unless the Python environment itself lives below one (a clone in ~):
    # then only the path down to it is made, as `repo` above shows.
    python_tops = {Path(sys.prefix).parts[1]}
    assert not ({"root", "home"} - python_tops) & set(seen["root"])
    assert session.isolation["hidden_paths"] and session.isolation["network_namespace"]
    if mode == "root":
        assert seen["uid"] >= 2_000_000


def test_worker_that_dies_while_importing_rejects_the_submission(tmp_path):
    session = _session(tmp_path, "import os\nos._exit(3)\n", "any")
    with pytest.raises(SubmissionRejected, match="died while importing the module: it exited with code 3"):
        StudentModule(session).anything()
    session.close()


def test_sandbox_that_cannot_be_set_up_is_a_grader_fault(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_ISOLATION", json.dumps(IsolationMeasures(mode="bogus").as_dict()))
    session = _session(tmp_path, "def f():\n    return 1\n", "bogus")
    with pytest.raises(GraderFault, match="unknown isolation mode 'bogus'"):
        StudentModule(session).f()
    session.close()


def test_grading_without_a_mount_namespace_warns_loudly_and_records_it(tmp_path):
    environment = dict(os.environ, AUTOGRADER_ISOLATION_MODE="none", PYTHONDONTWRITEBYTECODE="1")
    environment.pop("AUTOGRADER_ISOLATION", None)
    completed = subprocess.run(
        [sys.executable, "-m", "autograder", "--config", str(TOY_COURSE / "grading.yaml"), "grade", "a99",
         str(TOY_COURSE / "subs" / "good"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert "WARNING: student code can READ the hidden tests" in completed.stderr
    result = json.loads((tmp_path / "out" / "good" / "result.json").read_text())
    assert result["score"] == 20
    assert result["isolation"]["mode"] == "none" and result["isolation"]["hidden_paths"] is False
