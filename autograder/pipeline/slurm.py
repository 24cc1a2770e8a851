"""Slurm, spoken through its own commands: the job array script, `sbatch`, `squeue`, `scancel`,
and the batch's state file (OUT/.slurm/batch.json) that lets a killed driver be resumed.

Plain sbatch, not submitit: an array task is the ordinary `autograder grade` command line on a
list of submissions (nothing pickled crosses to the node), the job script is a readable file in
the results folder that a TA can inspect or resubmit by hand, and no dependency is added.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import autograder
from autograder.course.model import Cluster
from autograder.errors import AutograderError
from autograder.pipeline.results import write_atomic

STATE_DIR = ".slurm"
BATCH_FILE = "batch.json"
ATTEMPTS = 2     # a failed or timed-out shard is resubmitted once


@dataclass(frozen=True)
class SlurmRequest:
    """What the command line adds to grading.yaml's `cluster:` (None: take the file's value)."""

    partition: str | None = None
    account: str | None = None
    time: str | None = None
    memory: str | None = None
    cpus: int | None = None
    gres: str | None = None
    shard_size: int | None = None
    sbatch: tuple[str, ...] = ()
    wait: bool = True

    def settings(self, cluster: Cluster) -> Cluster:
        """The cluster section with the command line's values in place (command line > file)."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(Cluster)
                 if f.name != "sbatch" and getattr(self, f.name) is not None}
        return dataclasses.replace(cluster, **given, sbatch=cluster.sbatch + tuple(self.sbatch))

    def command_line_options(self) -> list[str]:
        """sbatch options given on our command line: passed to sbatch itself, so they beat SBATCH_* variables."""
        pairs = [("--partition", self.partition), ("--account", self.account), ("--time", self.time),
                 ("--mem", self.memory), ("--cpus-per-task", self.cpus), ("--gres", self.gres)]
        return [f"{flag}={value}" for flag, value in pairs if value not in (None, "")] + list(self.sbatch)


def file_options(cluster: Cluster) -> list[str]:
    """grading.yaml's options: #SBATCH lines of the script (SBATCH_* variables and the command line beat them)."""
    pairs = [("--partition", cluster.partition), ("--account", cluster.account), ("--time", cluster.time),
             ("--mem", cluster.memory), ("--cpus-per-task", cluster.cpus), ("--gres", cluster.gres)]
    return [f"{flag}={value}" for flag, value in pairs if value not in (None, "")] + list(cluster.sbatch)


def shards_of(names: list[str], size: int) -> list[list[str]]:
    return [names[start:start + size] for start in range(0, len(names), size)]


# --------------------------------------------------------------------------- the batch's state


@dataclass
class Job:
    """One submitted array: its shards (task index -> submission names) and which attempt it is."""

    job_id: str
    round: int
    attempt: int
    shards: dict[str, list[str]]
    submitted_at: str = ""


@dataclass
class Batch:
    """OUT/.slurm/batch.json: every array submitted into this results folder, for resuming and `status`."""

    assignment: str
    suite_hash: str
    part: str = ""
    names: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, out: Path) -> "Batch | None":
        path = out / STATE_DIR / BATCH_FILE
        try:
            data = json.loads(path.read_text())
            return cls(**{**data, "jobs": [Job(**job) for job in data.get("jobs", [])]})
        except (OSError, ValueError, TypeError):
            return None

    def save(self, out: Path) -> None:
        write_atomic(out / STATE_DIR / BATCH_FILE, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def next_round(self) -> int:
        return max((job.round for job in self.jobs), default=0) + 1


# --------------------------------------------------------------------------- Slurm's commands


def _slurm(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise AutograderError(f"{command[0]} not found: --executor slurm needs Slurm's commands on PATH "
                              "(run on a login node of the cluster)") from None
    except subprocess.TimeoutExpired:
        raise AutograderError(f"`{' '.join(command[:2])} ...` did not answer in {timeout:g} s: is slurmctld up?") from None


def job_script(*, out: Path, round_dir: Path, assignment: str, shard_count: int, cluster: Cluster,
               grade_arguments: list[str], python: str = sys.executable) -> str:
    """The array job: task i runs the ordinary `autograder grade` on the submissions of shard-i.args."""
    package_root = Path(autograder.__file__).resolve().parents[1]
    lines = ["#!/bin/bash", f"#SBATCH --job-name=autograder-{assignment}", f"#SBATCH --array=0-{shard_count - 1}",
             f"#SBATCH --output={round_dir}/task-%a.log"]
    lines += [f"#SBATCH {option}" for option in file_options(cluster)]
    command = [python, "-m", "autograder", *grade_arguments, "--out", str(out), "-j", str(cluster.cpus), "--array-task"]
    split = command.index("grade") + 2   # the submissions follow `grade ASSIGNMENT`
    lines += [
        "# Written by `autograder grade --executor slurm`: array task i grades the submissions listed",
        "# (NAME=PATH, one a line) in shard-i.args with the ordinary local grading, into the results folder.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        f"export PYTHONPATH={shlex.quote(str(package_root))}${{PYTHONPATH:+:$PYTHONPATH}}",
        f'mapfile -t submissions < {shlex.quote(str(round_dir))}/shard-"$SLURM_ARRAY_TASK_ID".args',
        " ".join(shlex.quote(part) for part in command[:split]) + ' "${submissions[@]}" '
        + " ".join(shlex.quote(part) for part in command[split:]),
    ]
    return "\n".join(lines) + "\n"


def submit_array(*, out: Path, batch: Batch, shards: list[list[str]], paths: dict[str, Path], attempt: int,
                 cluster: Cluster, request: SlurmRequest, grade_arguments: list[str]) -> Job:
    """Write the round's shard lists and job script, sbatch it, and record the job in batch.json."""
    round_number = batch.next_round()
    round_dir = (out / STATE_DIR / f"round-{round_number}").resolve()
    round_dir.mkdir(parents=True, exist_ok=True)
    for index, names in enumerate(shards):
        write_atomic(round_dir / f"shard-{index}.args", "".join(f"{name}={paths[name].resolve()}\n" for name in names))
    script = round_dir / "job.sh"
    write_atomic(script, job_script(out=out.resolve(), round_dir=round_dir, assignment=batch.assignment,
                                    shard_count=len(shards), cluster=cluster, grade_arguments=grade_arguments))
    completed = _slurm(["sbatch", "--parsable", *request.command_line_options(), str(script)])
    if completed.returncode != 0:
        problem = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise AutograderError(f"sbatch refused the job array ({problem}); the script is {script}")
    job_id = completed.stdout.strip().split(";")[0]
    job = Job(job_id=job_id, round=round_number, attempt=attempt,
              shards={str(index): names for index, names in enumerate(shards)},
              submitted_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    batch.jobs.append(job)
    batch.save(out)
    return job


def active_tasks(job_id: str) -> dict[str, str] | None:
    """{task index: state} of the job's tasks still queued or running; None when Slurm did not answer."""
    try:
        completed = _slurm(["squeue", "-h", "-r", "-j", job_id, "-o", "%i|%T"], timeout=30)
    except AutograderError:
        return None
    if completed.returncode != 0:
        if "Invalid job id" in completed.stderr:
            return {}   # long finished: the controller has forgotten it
        return None
    tasks: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        job, _, index = task.partition("_")
        if job == job_id and index:
            if index.startswith("["):   # a range not yet split into tasks: 0-3 or 1,4
                for part in index.strip("[]").split("%")[0].split(","):
                    low, _, high = part.partition("-")
                    for number in range(int(low), int(high or low) + 1):
                        tasks[str(number)] = state
            else:
                tasks[index] = state
    return tasks


def cancel(job_id: str, task: str | None = None) -> None:
    _slurm(["scancel", f"{job_id}_{task}" if task is not None else job_id])
