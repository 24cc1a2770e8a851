"""Run one assignment's suite on one staged submission, in a trusted child process.

The child runs pytest with the grading plugin; the plugin writes each test's outcome as a
JSON line as soon as it is known, so a child killed at the submission's time limit still
leaves the outcomes it reached. `python -m autograder.pipeline.run REQUEST.json` is the child.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autograder.course import records
from autograder.course.reader import load_course
from autograder.errors import GraderFault
from autograder.pipeline.pytest_run import RunRequest, pytest_arguments, read_outcomes
from autograder.pipeline.warm_pool import shared_pool
from autograder.runtime.contract import IsolationMeasures
from autograder.sandbox.environment import ZYGOTE_ENV, trusted_environment
from autograder.sandbox.isolation import detect_isolation, hidden_files_warning


def list_tests(course_file: Path, assignment_id: str, suite_dir: Path, *, warm: bool | None = None) -> list[str]:
    """The suite's test ids (collection only, in a child so the trusted state stays clean).

    With the warm pool (the default) the child is forked by the batch's trusted server, which
    thereby starts while the batch prepares, instead of delaying its first submission.
    """
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "tests.txt"
        request = RunRequest(str(course_file), assignment_id, str(suite_dir), str(suite_dir), str(Path(scratch) / "o"),
                             list_file=str(listing))
        tail = ""
        if warm_by_default() if warm is None else warm:
            log = Path(scratch) / "collect.log"
            shared_pool(_preload(request)).run(request, timeout=600, log_file=log)
            tail = log.read_text()[-1500:] if log.exists() else ""
        else:
            completed = subprocess.run([sys.executable, "-m", "pytest", *pytest_arguments(request)],
                                       capture_output=True, text=True)
            tail = (completed.stdout + completed.stderr)[-1500:]
        if not listing.exists():
            raise GraderFault(f"collecting the suite {suite_dir} failed:\n{tail}")
        return [line for line in listing.read_text().splitlines() if line]


_ORACLE_STORE: list[Path] = []


def oracle_cache_for(suite_hash: str) -> str:
    """The batch's store of oracle answers for this suite hash, in a private folder removed at exit.

    Shared only where the workers have a private file system (root, userns isolation): a worker
    that could write the store could change the answers later submissions are graded against.
    AUTOGRADER_ORACLE_CACHE=0 turns the store off: every oracle call computes (for comparisons).
    """
    if os.environ.get("AUTOGRADER_ORACLE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return "off"
    if detect_isolation().mode not in ("root", "userns"):
        return "memory"  # no private file system: the worker could reach a shared store, so each run keeps its own
    if not _ORACLE_STORE:
        import atexit
        import shutil

        _ORACLE_STORE.append(Path(tempfile.mkdtemp(prefix="autograder-oracles-")))  # mode 0700
        atexit.register(shutil.rmtree, _ORACLE_STORE[0], True)
    return str(_ORACLE_STORE[0] / f"{suite_hash[:32]}.sqlite")


def warm_by_default() -> bool:
    """The warm pool grades unless AUTOGRADER_WARM=0 asks for a fresh process per submission."""
    return os.environ.get("AUTOGRADER_WARM", "1").strip().lower() not in ("0", "false", "no", "off")


_WARNED: set[str] = set()


def _warn_once(isolation: IsolationMeasures, request: RunRequest) -> None:
    """Print the loud hidden-files warning once per batch process (not for public-only checks)."""
    warning = hidden_files_warning(isolation)
    if warning and request.visibility != "public" and warning not in _WARNED:
        _WARNED.add(warning)
        print(warning, file=sys.stderr, flush=True)


def run_suite(request: RunRequest, *, timeout: float, log_file: Path | None = None, pool: Any = None,
              warm: bool | None = None) -> records.SuiteRun:
    """Run the suite in a trusted child; never raises for what the child or the student did.

    By default the child is forked by the batch's warm pool (`pool`, or a shared one for the
    assignment's preload); `warm=False` (or AUTOGRADER_WARM=0) starts a fresh process instead.
    """
    Path(request.outcomes_file).write_text("")
    warm = warm_by_default() if warm is None else warm
    if warm:
        if pool is None:
            pool = shared_pool(_preload(request))
        _warn_once(pool.isolation, request)
        fault = pool.run(request, timeout=timeout, log_file=log_file)
        return read_outcomes(Path(request.outcomes_file), fault)
    isolation = detect_isolation()
    _warn_once(isolation, request)
    log = open(log_file, "w") if log_file else subprocess.DEVNULL
    env = trusted_environment(dict(os.environ), json.dumps(isolation.as_dict()))
    env.pop(ZYGOTE_ENV, None)
    fault = None
    try:
        child = subprocess.Popen([sys.executable, "-m", "autograder.pipeline.run", json.dumps(asdict(request))],
                                 stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = child.wait(timeout=timeout)
            if code not in (0, 1):
                fault = f"the trusted test run exited with code {code}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            fault = "timeout"
    finally:
        if log_file:
            log.close()
    return read_outcomes(Path(request.outcomes_file), fault)


@functools.lru_cache(maxsize=16)
def _preload_of(course_file: str, assignment: str) -> tuple[str, ...]:

    return tuple(load_course(course_file).assignment(assignment).preload)


def _preload(request: RunRequest) -> tuple[str, ...]:
    return _preload_of(request.course_file, request.assignment)


def main() -> None:
    import pytest

    request = RunRequest(**json.loads(sys.argv[1]))
    code = pytest.main(pytest_arguments(request))
    sys.exit(0 if code in (0, 1) else int(code))


if __name__ == "__main__":
    main()
