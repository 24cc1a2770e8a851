"""The `status` verb: how far a batch graded on Slurm (`grade --executor slurm`) has come.

Reads OUT/.slurm/batch.json (what the driver submitted) and the result files, and asks
squeue which array tasks are still queued or running. Changes nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.course import records
from autograder.errors import AutograderError
from autograder.pipeline.progress import SafeStream
from autograder.pipeline.slurm import ATTEMPTS, STATE_DIR, Batch, active_tasks


def _result_of(out: Path, name: str, batch: Batch) -> records.SubmissionResult | None:
    try:
        result = records.read_result(out / name / "result.json")
    except (ValueError, TypeError, KeyError, OSError):
        return None
    return result if result.suite_hash == batch.suite_hash and result.part == batch.part else None


def main(*, results: str, stream=None) -> int:
    stream = SafeStream(stream or sys.stdout)
    out = Path(results)
    batch = Batch.load(out)
    if batch is None:
        raise AutograderError(f"{out}: no Slurm batch here ({out / STATE_DIR / 'batch.json'} is missing); "
                              "`autograder grade ... --executor slurm --out FOLDER` starts one")
    found = {name: _result_of(out, name, batch) for name in batch.names}
    graded = [r for r in found.values() if r is not None and r.status != records.GRADER_ERROR]
    faults = sorted(name for name, r in found.items() if r is not None and r.status == records.GRADER_ERROR)
    queued: dict[str, int] = {}
    lines = []
    unreachable = False
    for job in batch.jobs:
        tasks = active_tasks(job.job_id)
        if tasks is None:
            unreachable = True
            continue
        for state in tasks.values():
            queued[state] = queued.get(state, 0) + 1
        if tasks:
            states = ", ".join(f"{sum(1 for s in tasks.values() if s == state)} {state.lower()}"
                               for state in sorted(set(tasks.values())))
            kind = "resubmission" if job.attempt > 1 else "array"
            lines.append(f"  job {job.job_id} ({kind}, {len(job.shards)} task(s)): {states}")
    part = f" ({batch.part} part)" if batch.part else ""
    print(f"{batch.assignment}{part}: {len(graded)}/{len(batch.names)} graded, {len(faults)} grader error(s), "
          f"{sum(queued.values())} array task(s) queued or running", file=stream)
    for line in lines:
        print(line, file=stream)
    missing = [name for name, r in found.items() if r is None]
    if missing and not queued and not unreachable:
        print(f"not graded and nothing queued: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}; "
              f"run the same `grade --executor slurm` command again (a failed shard is resubmitted "
              f"{ATTEMPTS - 1} time per run)", file=stream)
    if faults:
        print(f"grader errors (regrade these): {', '.join(faults)}", file=stream)
    if unreachable:
        print("squeue did not answer: the tasks' states are unknown", file=stream)
    return 0
