"""The contract between the grader and its worker: the worker's configuration, its isolation
plan and the measures it reports, as dataclasses both sides import (stdlib only).

The trusted side builds a `WorkerConfig` and sends `to_json()`; the worker reads it back with
`WorkerConfig.from_json()`, which refuses unknown or mistyped fields, so the two sides cannot
drift apart silently. `IsolationMeasures` is what a worker reports and every result records.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

EMPTY_DICT_NODE = {"$": "dict", "k": [], "v": []}   # the wire form of {} (see protocol.Encoder)


# The default resource limits of a worker, one copy: course.model.Limits takes its defaults
# from here, and the worker applies them to any limit its plan leaves out (the isolation
# probe's plan sends none).
DEFAULT_WORKER_LIMITS = {"memory_mb": 4096, "cpu_seconds": 900, "processes": 64, "open_files": 256,
                         "file_size_mb": 64, "scratch_mb": 256, "scratch_inodes": 4096}


class ContractError(ValueError):
    """A configuration that does not fit the contract (a grader bug, never a student's)."""


@dataclass(frozen=True)
class IsolationPlan:
    """How the worker isolates itself before any student code runs."""

    mode: str                                    # root | userns | none
    submission_dir: str
    new_root: str = ""                           # where the private root file system is built
    limits: dict[str, int] = field(default_factory=dict)   # memory_mb, cpu_seconds, processes, scratch_mb, ...
    join_network: str | None = None              # a rank of a group joins this network namespace


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs: the submission, the rules to enforce, and its isolation plan."""

    submission_dir: str
    module: str
    isolation: IsolationPlan
    preload: tuple[str, ...] = ()
    forbidden_calls: tuple[str, ...] = ()
    forbidden_ops: tuple[str, ...] = ()
    allowed_imports: tuple[str, ...] | None = None
    forbidden_imports: tuple[str, ...] = ()
    assignment: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    audit: bool = True
    seccomp: bool = True
    rank: dict[str, Any] | None = None           # one rank of a group: rank, world_size, port, timeout_seconds
    fds: tuple[int, ...] = ()                    # request and reply pipes (set where the worker starts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    def with_fds(self, fds: list[int]) -> "WorkerConfig":
        return dataclasses.replace(self, fds=tuple(fds))

    @classmethod
    def from_dict(cls, data: dict) -> "WorkerConfig":
        if not isinstance(data, dict):
            raise ContractError(f"a worker configuration is a mapping, got {type(data).__name__}")
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> "WorkerConfig":
        return cls.from_dict(json.loads(text))


@dataclass
class IsolationMeasures:
    """Which measures were in force for the worker (recorded in every result)."""

    private_copy: bool = True
    clean_environment: bool = True
    resource_limits: bool = False
    network_namespace: bool = False
    unprivileged_user: bool = False
    hidden_paths: bool = False
    mode: str = "none"
    loopback: bool = False
    private_tmp: bool = False
    pid_namespace: bool = False
    ipc_namespace: bool = False
    process_limit: bool = False
    seccomp: bool = False              # a syscall filter: no namespaces, mount, ptrace, keyctl, bpf, perf...
    audit_hook: bool = False           # exec/compile/frames/gc/ctypes/processes refused to student code
    scratch_capped: bool = False       # every writable place a size- and inode-capped tmpfs
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_measures(cls, measures: dict) -> "IsolationMeasures":
        """The known measures of a report (a worker may add others, e.g. its uid, which results skip)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in measures.items() if k in names})


def _build(cls: type, data: dict) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ContractError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        if name == "isolation":
            value = _build(IsolationPlan, value) if isinstance(value, dict) else value
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ContractError(f"{cls.__name__}: {error}") from None
