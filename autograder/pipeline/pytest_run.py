"""One trusted pytest run of a suite on a submission: the request, its command line, and the
outcomes it writes (JSON lines read back into a SuiteRun)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import records


@dataclass(frozen=True)
class RunRequest:
    course_file: str
    assignment: str
    suite_dir: str
    submission_dir: str
    outcomes_file: str
    visibility: str = "all"
    keyword: str = ""
    list_file: str = ""     # collect only: write the test ids here and run nothing
    limits: dict[str, str] = field(default_factory=dict)   # limit overrides of this batch (command line > environment)
    device: str = ""        # "cuda": run only the tests parametrized for that device (a partial result)
    oracle_cache: str = ""  # the batch's store of oracle answers (a SQLite file), "off", or "" for this run only


def pytest_arguments(request: RunRequest) -> list[str]:
    args = [
        request.suite_dir, "-p", "autograder.harness.plugin", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:randomly",
        "-c", os.devnull, "--rootdir", request.suite_dir, "--confcutdir", request.suite_dir,
        "-q", "--tb=no", "--no-header", "-o", "console_output_style=classic",
        "--assignment", request.assignment, "--course", request.course_file,
        "--submission", request.submission_dir, "--outcomes", request.outcomes_file,
        "--visibility", request.visibility,
    ]
    if request.keyword:
        args += ["-k", request.keyword]
    if request.list_file:
        args += ["--list-tests", request.list_file]
    if request.device:
        args += ["--device", request.device]
    if request.oracle_cache:
        args += ["--oracle-cache", request.oracle_cache]
    for name, value in sorted(request.limits.items()):
        args += ["--limit", f"{name}={value}"]
    return args


def device_of_test(test_id: str) -> str:
    """The device a test id is parametrized for ("cuda" in `test_x[cuda-3]`), or "" for none."""
    params = test_id.rsplit("[", 1)[1].rstrip("]") if test_id.endswith("]") and "[" in test_id else ""
    for device in ("cuda", "cpu"):
        if device in params.split("-"):
            return device
    return ""


def read_outcomes(path: Path, fault: str | None) -> records.SuiteRun:
    outcomes: dict[str, records.TestOutcome] = {}
    summary: dict = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "outcome" in entry:
            outcome = records.TestOutcome(**entry["outcome"])
            outcomes[outcome.id] = outcome
        elif "summary" in entry:
            summary = entry["summary"]
    if not summary and fault is None:
        fault = "the trusted test run stopped before its end"
    return records.SuiteRun(
        outcomes=tuple(outcomes.values()), rejected=summary.get("rejected"), output=summary.get("output", ""),
        isolation=summary.get("isolation", {}), worker_restarts=summary.get("restarts", 0),
        calls=summary.get("calls", 0), fault=fault, device=str(summary.get("device", "")),
        timings=summary.get("timings", {}),
    )
