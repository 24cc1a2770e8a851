"""The project's own tests. Grading suites, mutants and fixture courses are data, not tests here."""
import os
import sys
from pathlib import Path

import pytest

collect_ignore = ["grading", "mutants", "fixtures"]

ROOT = Path(__file__).resolve().parent.parent
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 900):
    """Run the real `autograder` command line in a subprocess, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


@pytest.fixture
def cli():
    return run_cli
