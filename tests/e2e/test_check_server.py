"""`autograder check` answered by the warm check server: the same answer as in-process, for the current copy."""
import os
import shutil
import signal
from pathlib import Path

import pytest

from ..conftest import TOY_COURSE, run_cli


def _servers() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "autograder.commands.check.server" in command:
                found[int(entry.name)] = command
    return found


@pytest.fixture
def release_folder(tmp_path):
    course = Path(shutil.copytree(TOY_COURSE, tmp_path / "course"))
    assert run_cli("--config", str(course / "grading.yaml"), "release", "a99").returncode == 0
    return course


def test_the_second_check_is_answered_by_the_warm_server_with_the_in_process_answer(release_folder, monkeypatch):
    folder = release_folder / "assignments" / "a99_toy"
    before = set(_servers())
    monkeypatch.setenv("AUTOGRADER_CHECK_IDLE_SECONDS", "300")
    try:
        monkeypatch.setenv("AUTOGRADER_CHECK_SERVER", "1")
        first = run_cli("check", "a99", cwd=folder)
        started = {pid: command for pid, command in _servers().items() if pid not in before}
        assert len(started) == 1, "the first check starts one check server"
        warm = run_cli("check", "a99", cwd=folder)
        monkeypatch.setenv("AUTOGRADER_CHECK_SERVER", "0")
        local = run_cli("check", "a99", cwd=folder)
        assert (first.returncode, first.stdout) == (warm.returncode, warm.stdout) == (local.returncode, local.stdout)
        assert "public tests: 0/4 points" in warm.stdout
        assert set(_servers()) - before == set(started), "the second check used the running server"

        shutil.copyfile(release_folder / "solutions" / "a99_toy" / "toy.py", folder / "toy.py")  # the student's fix
        monkeypatch.setenv("AUTOGRADER_CHECK_SERVER", "1")
        fixed = run_cli("check", "a99", cwd=folder)
        assert fixed.returncode == 0 and "public tests: 4/4 points (1/1 passed)" in fixed.stdout, fixed.stdout

        (folder / "toy.py").write_text("def double(x:\n")                     # a broken copy: the same refusal
        broken_warm = run_cli("check", "a99", cwd=folder)
        monkeypatch.setenv("AUTOGRADER_CHECK_SERVER", "0")
        broken_local = run_cli("check", "a99", cwd=folder)
        assert (broken_warm.returncode, broken_warm.stdout) == (broken_local.returncode, broken_local.stdout)
    finally:
        for pid in set(_servers()) - before:
            os.kill(pid, signal.SIGTERM)
