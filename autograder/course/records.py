"""Typed records passed between the pipeline's stages, and the result.json schema."""
from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

class TestStatus(enum.StrEnum):
    """What happened in one test (DESIGN.md). A StrEnum: it is its own string in result.json."""

    PASSED = "passed"
    FAILED = "failed"          # a comparison failed
    ERROR = "error"            # the student's code raised
    TIMEOUT = "timeout"
    CRASHED = "crashed"        # the worker died (segfault, os._exit, out of memory)
    DEFERRED = "deferred"      # needs a device this machine lacks: graded later, never zero
    GRADER_ERROR = "grader-error"  # the staff's fault: the submission is flagged for a rerun


class SubmissionStatus(enum.StrEnum):
    GRADED = "graded"
    REJECTED = "rejected"      # the module could not be loaded (intake, scan or import)
    GRADER_ERROR = "grader-error"


PASSED, FAILED, ERROR, TIMEOUT, CRASHED, DEFERRED, GRADER_ERROR = TestStatus
TEST_STATUSES = tuple(status.value for status in TestStatus)
GRADED, REJECTED = SubmissionStatus.GRADED, SubmissionStatus.REJECTED
SUBMISSION_STATUSES = tuple(status.value for status in SubmissionStatus)


@dataclass(frozen=True)
class StagedSubmission:
    """Intake's output: the submission's module, copied into a private folder."""

    name: str               # student id: from the folder or file name
    source: str             # what was given on the command line
    directory: Path         # folder holding <module>.py (and any helper files)
    module_file: Path
    sha256: str             # hash over the staged files (names and bytes)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A static-check finding: `fatal` ones reject the submission."""

    message: str
    fatal: bool
    line: int | None = None


@dataclass(frozen=True)
class TestOutcome:
    """What one grading test did, as the trusted pytest run recorded it."""

    id: str
    status: str
    message: str = ""       # the assertion message or the student's error
    example: str = ""       # hypothesis' minimal failing example (shown only when policy allows)
    traceback: str = ""     # the student's traceback, for errors
    duration: float = 0.0
    diagnosis: str = ""     # the suite's sentence naming the feature at fault (shown at every level but status)


@dataclass(frozen=True)
class SuiteRun:
    """The trusted run of one suite on one submission."""

    outcomes: tuple[TestOutcome, ...]
    rejected: str | None = None      # the module could not be imported
    output: str = ""                 # the worker's stdout/stderr, truncated
    isolation: dict = field(default_factory=dict)
    worker_restarts: int = 0
    calls: int = 0
    fault: str | None = None         # a grader fault outside any single test
    device: str = ""                 # the device the tests ran on, by name ("cpu (AMD EPYC ...)", "cuda (NVIDIA H200)")
    timings: dict = field(default_factory=dict)  # where the run's time went (harness/plugin.py `_timings`)


@dataclass
class TestResult:
    id: str
    name: str
    group: str
    status: str
    score: float
    max_score: float
    visibility: str
    feedback: str
    duration: float = 0.0
    diagnosis: str = ""
    device: str = ""        # set by `merge`: the device (by name) whose part graded this test


@dataclass
class SubmissionResult:
    assignment: str
    submission: str
    status: str
    score: float
    max_score: float
    tests: list[TestResult]
    reason: str = ""
    submission_hash: str = ""
    suite_hash: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    seeds: dict[str, Any] = field(default_factory=dict)
    isolation: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    late: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    duration_seconds: float = 0.0
    schema_version: int = SCHEMA_VERSION
    suite_version: str = ""   # hash of suite, reference, config and grader, without the environment (merge compares it)
    part: str = ""            # "" a whole result; "cuda": a device-tagged partial result holding only that device's tests
    parts: list[dict[str, Any]] = field(default_factory=list)   # after `merge`: each device part's reproducibility record
    timings: dict[str, Any] = field(default_factory=dict)  # seconds: startup, tests, oracle, boundary, student (not a grade)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        tests = [TestResult(**test) for test in data.get("tests", [])]
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in fields}, "tests": tests})


RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "autograder result.json",
    "type": "object",
    "required": ["schema_version", "assignment", "submission", "status", "score", "max_score", "tests",
                 "submission_hash", "suite_hash", "versions", "device", "seeds"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "assignment": {"type": "string"},
        "submission": {"type": "string"},
        "status": {"enum": list(SUBMISSION_STATUSES)},
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "reason": {"type": "string"},
        "tests": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "name", "status", "score", "max_score", "visibility", "feedback"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "group": {"type": "string"},
                "status": {"enum": list(TEST_STATUSES)}, "score": {"type": "number", "minimum": 0},
                "max_score": {"type": "number", "minimum": 0},
                "visibility": {"enum": ["public", "hidden", "after_due"]}, "feedback": {"type": "string"},
                "diagnosis": {"type": "string"},
            },
        }},
        "submission_hash": {"type": "string"}, "suite_hash": {"type": "string"},
        "versions": {"type": "object"}, "device": {"type": "string"}, "seeds": {"type": "object"},
        "suite_version": {"type": "string"}, "part": {"enum": ["", "cpu", "cuda"]},
        "parts": {"type": "array", "items": {"type": "object", "required": ["part", "device", "tests"]}},
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
    },
}


def read_result(path: Path) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads(Path(path).read_text()))
