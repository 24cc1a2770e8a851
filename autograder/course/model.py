"""grading.yaml: the course in one validated file.

Loaded once, at the edge, into frozen dataclasses. Every error names the file and line,
unknown keys get a "did you mean", and precedence is command line > environment > file >
defaults (the environment overrides are AUTOGRADER_<KEY>, see `apply_overrides`).
"""
from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.errors import UnknownAssignment
from autograder.pipeline.dtype_rule import DtypeRule
from autograder.runtime.contract import DEFAULT_WORKER_LIMITS

VISIBILITIES = ("public", "hidden", "after_due")
FEEDBACK_LEVELS = ("full", "message", "status")
DEVICES = ("cpu", "cuda")
ID_PATTERN = re.compile(r"^a(\d\d)_[a-z0-9_]+$")


@dataclass(frozen=True)
class Limits:
    """Per-worker limits: wall clock per call, per test and per submission; resources."""

    call_seconds: float = 30.0                  # the ceiling of one call's budget (see sandbox/budget.py)
    call_floor_seconds: float = 2.0             # a call's budget is max(this floor, the multiple x the
    call_reference_multiple: float = 50.0       # ... reference's time for the same call), at most call_seconds
    test_seconds: float = 120.0
    submission_seconds: float = 1200.0
    memory_mb: int = DEFAULT_WORKER_LIMITS["memory_mb"]
    cpu_seconds: int = DEFAULT_WORKER_LIMITS["cpu_seconds"]
    processes: int = DEFAULT_WORKER_LIMITS["processes"]
    open_files: int = DEFAULT_WORKER_LIMITS["open_files"]
    file_size_mb: int = DEFAULT_WORKER_LIMITS["file_size_mb"]
    output_kb: int = 64
    transfer_mb_per_call: int = 512     # bytes from the worker in one call's reply (callbacks included)
    transfer_mb_per_test: int = 2048    # ... and in one test, all calls together
    scratch_mb: int = DEFAULT_WORKER_LIMITS["scratch_mb"]          # the worker's writable places together (tmpfs),
    scratch_inodes: int = DEFAULT_WORKER_LIMITS["scratch_inodes"]  # ... and their number of files and folders
    grader_memory_mb: int = 8192        # the trusted per-submission test process (heap and mappings)


@dataclass(frozen=True)
class Feedback:
    """What students see: `public` and `hidden` are levels (full | message | status)."""

    public: str = "full"
    hidden: str = "message"
    show_output: bool = False   # student prints stay out of feedback: in hidden tests they would show hidden inputs


@dataclass(frozen=True)
class Defaults:
    limits: Limits = Limits()
    hypothesis_examples: int = 25
    feedback: Feedback = Feedback()


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: float = 0.0
    per_day: float = 0.0          # percent of the score lost per started day late
    max_days: int | None = None   # later than this: the submission scores 0


@dataclass(frozen=True)
class TestGroup:
    """Points for the tests whose node ids match `match` (fnmatch patterns)."""

    name: str
    match: tuple[str, ...]
    points: float
    visibility: str = "hidden"
    hypothesis_examples: int | None = None
    feedback: str | None = None
    line: int = 0
    source: str = ""   # the file that declares the group (grading.yaml or the suite's own)

    @property
    def where(self) -> str:
        """file:line of the group's declaration, for messages."""
        return f"{self.source}:{self.line}"

    def matches(self, test_id: str) -> bool:
        return any(match_test_id(pattern, test_id) for pattern in self.match)


@dataclass(frozen=True)
class Forbidden:
    imports: tuple[str, ...] = ()   # modules the static scan refuses (prefix match)
    calls: tuple[str, ...] = ()     # dotted names the guard makes raise in the worker
    ops: tuple[str, ...] = ()       # aten op patterns the op trace rejects
    dtypes: DtypeRule = DtypeRule()  # dtypes the static scan refuses within some functions (pipeline/dtype_rule.py)


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    lecture: int
    module: str
    files: tuple[str, ...]
    required: tuple[str, ...]
    allowed_imports: tuple[str, ...]
    forbidden: Forbidden
    devices: tuple[str, ...]
    due: dt.datetime | None
    late: LatePolicy
    tests: tuple[TestGroup, ...]
    unscored: tuple[str, ...]
    limits: Limits
    hypothesis_examples: int
    feedback: Feedback
    preload: tuple[str, ...]

    @property
    def alias(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def max_score(self) -> float:
        return sum(group.points for group in self.tests)

    @property
    def module_name(self) -> str:
        return Path(self.module).stem

    def group_for(self, test_id: str) -> TestGroup | None:
        for group in self.tests:
            if group.matches(test_id):
                return group
        return None

    def is_unscored(self, test_id: str) -> bool:
        return any(match_test_id(pattern, test_id) for pattern in self.unscored)


@dataclass(frozen=True)
class Cluster:
    """grading.yaml's `cluster:` section: how `grade --executor slurm` asks Slurm for nodes.

    Empty fields are not passed to sbatch (the cluster's defaults apply)."""

    partition: str = ""
    account: str = ""
    time: str = ""              # per array task (one shard), as sbatch --time takes it, e.g. "2:00:00"
    memory: str = ""            # per array task, sbatch --mem, e.g. 16G
    cpus: int = 2               # per array task: sbatch --cpus-per-task and the task's `grade -j`
    gres: str = ""              # e.g. gpu:1 for `grade --device cuda`
    shard_size: int = 8         # submissions per array task
    sbatch: tuple[str, ...] = ()   # extra sbatch options, e.g. --qos=course


@dataclass(frozen=True)
class Course:
    name: str
    defaults: Defaults
    assignments: dict[str, Assignment]
    path: Path
    root: Path
    limit_overrides: dict[str, str] = field(default_factory=dict)   # what load_course was given (passed to trusted runs)
    cluster: Cluster = Cluster()

    def assignment(self, name: str) -> Assignment:
        """Resolve an id (a04_optimizers) or short alias (a04, 4) to its assignment."""
        if name in self.assignments:
            return self.assignments[name]
        key = name.strip().lower()
        if key.isdigit():
            key = f"a{int(key):02d}"
        for assignment in self.assignments.values():
            if assignment.alias == key:
                return assignment
        hint = did_you_mean(name, list(self.assignments) + [a.alias for a in self.assignments.values()])
        raise UnknownAssignment(
            f"unknown assignment {name!r} in {self.path}{hint}; known: {', '.join(self.assignments)}"
        )

    def suite_dir(self, assignment: Assignment) -> Path:
        return self.root / "tests" / "grading" / assignment.id

    def solution_dir(self, assignment: Assignment) -> Path:
        return self.root / "solutions" / assignment.id

    def release_dir(self, assignment: Assignment) -> Path:
        return self.root / "assignments" / assignment.id


def match_test_id(pattern: str, test_id: str) -> bool:
    """fnmatch on the node id; a pattern without [params] also matches every parametrisation."""
    if fnmatch.fnmatchcase(test_id, pattern):
        return True
    base = test_id.split("[", 1)[0]
    return "[" not in pattern and fnmatch.fnmatchcase(base, pattern)


# --------------------------------------------------------------------------- parsing


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
