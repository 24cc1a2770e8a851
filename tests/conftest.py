"""The project's own tests. Grading suites, mutants and fixture courses are data, not tests here."""
import os
import sys
from pathlib import Path

import pytest

collect_ignore = ["grading", "mutants", "fixtures"]

ROOT = Path(__file__).resolve().parent.parent
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"

# `autograder check` would leave a warm check server (a gigabyte, ten idle minutes) behind for each
# course copy a test makes; tests/e2e/test_check_server.py starts and stops its own.
os.environ.setdefault("AUTOGRADER_CHECK_SERVER", "0")


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 900):
    """Run the real `autograder` command line in a subprocess, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def language_surface_open():
    """Grading with the static allow-list opened (AUTOGRADER_LANGUAGE_SURFACE=open) for one module:
    for tests of what the run-time layers do with code the allow-list would refuse before it runs
    (hangs, exits, imports hidden from the scan). tests/security checks the allow-list itself."""
    previous = os.environ.get("AUTOGRADER_LANGUAGE_SURFACE")
    os.environ["AUTOGRADER_LANGUAGE_SURFACE"] = "open"
    yield
    if previous is None:
        os.environ.pop("AUTOGRADER_LANGUAGE_SURFACE", None)
    else:
        os.environ["AUTOGRADER_LANGUAGE_SURFACE"] = previous
