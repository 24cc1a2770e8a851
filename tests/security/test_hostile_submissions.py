"""Hostile submissions graded in one real batch: each scores exactly its honest part, leaks nothing.

The submissions live in tests/fixtures/hostile/ (toy course a99_toy): `double` and `Counter`
are honest (16 of 20 points), `apply` or the import attacks the grader. The batch runs through
the warm pool (the default) and through fresh processes (AUTOGRADER_WARM=0).
"""
import json
import os
import socket
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"

HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
EXPECTED = {  # total score out of 20: what the honest part earns
    "read_hidden": 20, "import_reference": 16, "forge_results": 16, "monkeypatch_grader": 16, "sys_exit": 16,
    "os_exit": 16, "infinite_loop": 16, "fork_bomb": 16, "allocate_50gb": 16, "flood_stdout": 16,
    "tcp_connect": 16, "huge_value": 16, "deep_value": 16, "pickle_value": 16, "tricky_value": 16, "kill_parent": 16, "segfault": 16,
}
# fork_bomb and kill_parent: the worker's audit hook refuses os.fork and os.kill (RefusedOperation: error)
APPLY_STATUS = {"sys_exit": "error", "os_exit": "crashed", "infinite_loop": "timeout", "fork_bomb": "error",
                "allocate_50gb": "error", "flood_stdout": "timeout", "huge_value": "error", "deep_value": "error",
                "segfault": "crashed", "kill_parent": "error"}
LISTEN_PORT = 47613  # tcp_connect tries the grader's loopback here


def _secrets() -> list[str]:
    """Lines that exist only in the hidden test, the reference solution and grading.yaml."""
    hidden = (TOY_COURSE / "tests" / "grading" / "a99_toy" / "test_hidden.py").read_text()
    assert "calls.append(x)" in hidden and "return x * 10" in hidden
    reference = (TOY_COURSE / "solutions" / "a99_toy" / "toy.py").read_text()
    assert "BEGIN SOLUTION Task 2: counter" in reference
    course = (TOY_COURSE / "grading.yaml").read_text()
    assert "grace_minutes: 10" in course
    return ["calls.append(x)", "return x * 10", "BEGIN SOLUTION", "grace_minutes: 10", "A tiny course used by"]


class Listener(threading.Thread):
    """A TCP server on the grader's loopback, recording whatever reaches it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.received = []
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", LISTEN_PORT))
        self.server.listen(8)
        self.server.settimeout(0.5)
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.received.append(connection.recv(1000))
            connection.close()

    def stop(self):
        self.stopped = True
        self.join()
        self.server.close()


def _processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line names `text` (the batch's private temporary folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command:
                found.append(f"{entry.name}: {command[:200]}")
    return found


@pytest.fixture(scope="module", params=["warm", "fresh"])
def batch(request, tmp_path_factory):
    """Grade every hostile submission and an honest one in one batch (-j 2)."""
    import subprocess
    import sys

    from autograder.sandbox.isolation import _candidate_modes, _detect

    if _detect(tuple(_candidate_modes())).mode == "none":
        pytest.skip("this machine allows no mount or network namespace (not root, no user namespaces): "
                    "grading here warns that hidden files are readable, and these containment tests cannot hold")

    scratch = tmp_path_factory.mktemp(f"hostile-{request.param}")
    out = scratch / "results"
    private_tmp = scratch / "grader-tmp"
    private_tmp.mkdir()
    listener = Listener()
    listener.start()
    # These fixtures test the run-time containment: the allow-list scan would refuse most of them before
    # they run (tests/security/test_language_surface.py), so it is opened here; the audit hook stays.
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", AUTOGRADER_WARM="1" if request.param == "warm" else "0",
                       TMPDIR=str(private_tmp), AUTOGRADER_LANGUAGE_SURFACE="open")
    environment.pop("AUTOGRADER_ISOLATION", None)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "autograder", "--config", str(TOY_COURSE / "grading.yaml"), "grade", "a99",
             *[str(HOSTILE / name) for name in EXPECTED], f"honest={TOY_COURSE / 'subs' / 'good'}", "--out", str(out),
             "-j", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=900, env=environment)
    finally:
        listener.stop()
    return {"completed": completed, "out": out, "received": listener.received,
            "leftover": _processes_mentioning(str(private_tmp))}


def test_batch_finishes_with_every_result(batch):
    completed = batch["completed"]
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for name in [*EXPECTED, "honest"]:
        assert (batch["out"] / name / "result.json").exists(), f"no result for {name}:\n{completed.stdout}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_submission_scores_only_its_honest_part(batch, name):
    result = json.loads((batch["out"] / name / "result.json").read_text())
    log = batch["out"] / name / "grader.log"
    assert result["status"] == "graded", result["reason"] + (log.read_text()[-3000:] if log.exists() else "")
    assert result["score"] == EXPECTED[name], [(t["id"], t["status"], t["feedback"][:200]) for t in result["tests"]]
    assert result["isolation"]["hidden_paths"] and result["isolation"]["network_namespace"]
    if name in APPLY_STATUS:
        apply = next(t for t in result["tests"] if "test_apply" in t["id"])
        assert apply["status"] == APPLY_STATUS[name], apply["feedback"]


def test_honest_submission_in_the_same_batch_gets_full_marks(batch):
    result = json.loads((batch["out"] / "honest" / "result.json").read_text())
    assert result["score"] == 20 and result["status"] == "graded"


def test_no_hidden_content_in_any_output_file(batch):
    secrets = _secrets()
    for path in batch["out"].rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"{path} contains {leaked}"
    for stream in (batch["completed"].stdout, batch["completed"].stderr):
        assert not [s for s in secrets if s in stream]


def test_forged_results_never_replace_the_graders(batch):
    for result_file in batch["out"].rglob("*.json"):
        assert '"score": 1000' not in result_file.read_text(), result_file


def test_student_code_reaches_no_network(batch):
    assert batch["received"] == []
    output = json.loads((batch["out"] / "tcp_connect" / "result.json").read_text())
    apply = next(t for t in output["tests"] if "test_apply" in t["id"])
    # a hidden test: the student's own message ("no network") is not shown, only its type and line
    assert apply["status"] == "error" and "ConnectionError" in apply["feedback"] and "toy.py:" in apply["feedback"]


def test_flooded_output_is_truncated(batch):
    # prints stay out of results unless the course shows them (feedback.show_output, off by default since
    # they can carry hidden inputs); the truncation itself: test_resources.py::test_flooded_output_is_truncated
    result = json.loads((batch["out"] / "flood_stdout" / "result.json").read_text())
    assert len(result["output"]) < 300_000 and "flood flood" not in result["output"]


def test_pickle_payload_is_never_unpickled(batch):
    assert not Path("/tmp/pwned").exists()


def test_no_worker_process_outlives_the_batch(batch):
    assert batch["leftover"] == []
