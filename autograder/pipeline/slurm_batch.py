"""`grade --executor slurm`: a batch as a Slurm job array, watched through the results it writes.

The driver splits what is left to grade into shards, submits one array (one task per shard,
each running the ordinary local grading into the same results folder), and waits: the
progress bar is fed by result files appearing; a shard whose task left the queue with
submissions still ungraded (failed, timed out, cancelled, node lost) is resubmitted once.
Everything the driver knows is in OUT/.slurm/batch.json, so a driver killed with -9 loses
nothing: the array runs on, and the same command again attaches to the tasks still queued
and submits only what is neither graded nor queued.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder.course import records
from autograder.pipeline.grade_submission import GradeContext, rejected
from autograder.pipeline.progress import Progress
from autograder.pipeline.results import write_result
from autograder.pipeline.slurm import (
    ATTEMPTS,
    Batch,
    Job,
    SlurmRequest,
    active_tasks,
    shards_of,
    submit_array,
)

IsDone = Callable[[str, Path], "records.SubmissionResult | None"]


@dataclass
class _Watched:
    """A shard of a submitted array that the driver waits on."""

    job: Job
    index: str
    names: list[str]


def _stamp(path: Path) -> tuple | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


class SlurmBatch:
    def __init__(self, context: GradeContext, named: list[tuple[str, Path]], request: SlurmRequest,
                 grade_arguments: list[str], stream, poll_seconds: float = 2.0):
        self.context, self.request, self.stream = context, request, stream
        self.out = context.out
        self.paths = dict(named)
        self.order = [name for name, _ in named]
        self.cluster = request.settings(context.course.cluster)
        self.grade_arguments = grade_arguments
        self.poll = float(os.environ.get("AUTOGRADER_SLURM_POLL", poll_seconds))
        self.results: dict[str, records.SubmissionResult] = {}
        self.baseline: dict[str, tuple | None] = {}
        self.watching: list[_Watched] = []

    # ------------------------------------------------------------------ results appearing

    def _fresh_result(self, name: str) -> records.SubmissionResult | None:
        """The result a task of this batch wrote for `name` (a new file for this suite), or None."""
        path = self.out / name / "result.json"
        stamp = _stamp(path)
        if stamp is None or stamp == self.baseline.get(name):
            return None
        try:
            result = records.read_result(path)
        except (ValueError, TypeError, KeyError, OSError):
            return None   # a reader racing the rename sees the old file or the new one; unreadable: not yet
        if result.suite_hash != self.context.suite_hash or result.part != self.context.part:
            return None
        return result

    # ------------------------------------------------------------------ the driver

    def run(self, is_done: IsDone) -> list[records.SubmissionResult] | str:
        """Grade the batch; with --no-wait, return the job id(s) submitted instead of results."""
        batch = Batch.load(self.out)
        if batch is None or batch.suite_hash != self.context.suite_hash or batch.part != self.context.part:
            batch = Batch(assignment=self.context.assignment.id, suite_hash=self.context.suite_hash,
                          part=self.context.part)
        batch.names = list(dict.fromkeys(batch.names + self.order))
        progress = Progress(len(self.order), self.stream)
        pending: list[str] = []
        for name in self.order:
            kept = is_done(name, self.paths[name])
            if kept is not None:
                self.results[name] = kept
            else:
                pending.append(name)
            self.baseline[name] = _stamp(self.out / name / "result.json")
        watched = self._attach(batch, set(pending))
        attached = {name for shard in watched for name in shard.names}
        fresh = [name for name in pending if name not in attached]
        note = (f"grading {len(self.order)} submission(s) of {self.context.assignment.id} on Slurm into {self.out}: "
                f"{len(self.results)} already graded, {len(attached)} in arrays already queued")
        if fresh:
            job = self._submit(batch, fresh, attempt=1)
            watched += [_Watched(job, index, names) for index, names in job.shards.items()]
            note += f", {len(fresh)} in job {job.job_id} ({len(job.shards)} task(s) of up to {self.cluster.shard_size})"
        progress.start(note)
        if not self.request.wait:
            jobs = sorted({shard.job.job_id for shard in watched})
            return " ".join(jobs)
        for name in self.order:
            if name in self.results:
                progress.finished(self.results[name], reused=True)
        try:
            self._wait(batch, watched, progress)
        except KeyboardInterrupt:
            jobs = " ".join(sorted({shard.job.job_id for shard in self.watching}))
            print(f"\ninterrupted: the array keeps running (job {jobs}); results written are kept; "
                  f"`autograder status {self.out}` shows progress and the same command again waits for it "
                  f"(`scancel {jobs}` stops it)", file=self.stream, flush=True)
            raise
        progress.close()
        return [self.results[name] for name in self.order]

    def _submit(self, batch: Batch, names: list[str], attempt: int) -> Job:
        return submit_array(out=self.out, batch=batch, shards=shards_of(names, self.cluster.shard_size),
                            paths=self.paths, attempt=attempt, cluster=self.cluster, request=self.request,
                            grade_arguments=self.grade_arguments)

    def _attach(self, batch: Batch, pending: set[str]) -> list[_Watched]:
        """Shards of earlier arrays (a killed driver's) still queued or running, for what is still pending."""
        watched = []
        for job in batch.jobs:
            tasks = active_tasks(job.job_id) or {}
            for index, names in job.shards.items():
                mine = [name for name in names if name in pending]
                if index in tasks and mine:
                    watched.append(_Watched(job, index, mine))
        return watched

    def _wait(self, batch: Batch, watched: list[_Watched], progress: Progress) -> None:
        silent_polls = 0
        while watched:
            self.watching = watched
            self._collect(watched, progress)
            states: dict[str, dict[str, str] | None] = {}
            ended: list[_Watched] = []
            for shard in watched:
                if shard.job.job_id not in states:
                    states[shard.job.job_id] = active_tasks(shard.job.job_id)
                tasks = states[shard.job.job_id]
                if tasks is not None and shard.index not in tasks:
                    ended.append(shard)
            silent_polls = silent_polls + 1 if any(state is None for state in states.values()) else 0
            if silent_polls == 15:
                print("slurm: squeue does not answer; still waiting (Ctrl-C leaves the array running; "
                      "`autograder status` and the same command again pick it up)", file=self.stream, flush=True)
            if ended:
                self._collect(ended, progress)   # a task may have written its last result just before it ended
                watched = [shard for shard in watched if shard not in ended]
                watched += self._after(batch, [shard for shard in ended if shard.names], progress)
            if watched:
                time.sleep(self.poll)

    def _collect(self, watched: list[_Watched], progress: Progress) -> None:
        for shard in watched:
            for name in list(shard.names):
                result = self._fresh_result(name)
                if result is not None:
                    self.results[name] = result
                    shard.names.remove(name)
                    progress.finished(result)

    def _after(self, batch: Batch, failed: list[_Watched], progress: Progress) -> list[_Watched]:
        """Shards whose task ended with submissions ungraded: resubmitted once, then flagged."""
        again = [name for shard in failed if shard.job.attempt < ATTEMPTS for name in shard.names]
        for shard in failed:
            if shard.job.attempt >= ATTEMPTS:
                for name in shard.names:
                    self._give_up(batch, shard, name, progress)
        if not again:
            return []
        where = ", ".join(f"{shard.job.job_id}_{shard.index}" for shard in failed if shard.job.attempt < ATTEMPTS)
        job = self._submit(batch, again, attempt=ATTEMPTS)
        print(f"slurm: task(s) {where} ended with {len(again)} submission(s) ungraded; resubmitted as job "
              f"{job.job_id}", file=self.stream, flush=True)
        return [_Watched(job, index, names) for index, names in job.shards.items()]

    def _give_up(self, batch: Batch, shard: _Watched, name: str, progress: Progress) -> None:
        log = self.out / ".slurm" / f"round-{shard.job.round}" / f"task-{shard.index}.log"
        result = rejected(self.context, name, "grader fault")
        result.status = records.GRADER_ERROR
        result.reason = (f"grader fault: Slurm task {shard.job.job_id}_{shard.index} ended twice without grading "
                         f"this submission (see {log}); run the same command again")
        write_result(result, self.out / name)
        batch.given_up = sorted(set(batch.given_up) | {name})
        batch.save(self.out)
        self.results[name] = result
        progress.finished(result)
