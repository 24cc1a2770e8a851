"""The `grade` verb: intake -> static checks -> sandboxed run -> score -> result files.

One submission's failure of any kind becomes that submission's result (rejected, or tests
with error/timeout/crashed); it never stops the batch. Batches run on every core, show
progress, and resume: a result already written for the same submission and suite is kept.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path

from autograder.course import records
from autograder.course.late import SubmissionTimes
from autograder.course.model import Assignment
from autograder.course.reader import load_course
from autograder.errors import AutograderError, ExitCode, IntakeError
from autograder.pipeline.feedback import points
from autograder.pipeline.grade_submission import (
    GradeContext,
    default_jobs,
    grade_one,
    make_context,
    rejected,
)
from autograder.pipeline.intake import (
    ARCHIVE_SUFFIXES,
    SKIPPED_PARTS,
    stage_submission,
    submission_name,
)
from autograder.pipeline.progress import Progress, SafeStream
from autograder.pipeline.results import write_result
from autograder.pipeline.slurm import SlurmRequest
from autograder.pipeline.slurm_batch import SlurmBatch


def parse_submission_argument(argument: str) -> tuple[str, Path]:
    """`PATH` or `NAME=PATH` (to name a submission explicitly)."""
    if "=" in argument and not Path(argument).exists():
        name, _, path = argument.partition("=")
        return name, Path(path)
    path = Path(argument)
    return submission_name(path), path


# --------------------------------------------------------------------------- the batch

SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f]+$")
SUBMISSION_SUFFIXES = ARCHIVE_SUFFIXES + (".py", ".ipynb")


def _check_name(name: str, argument: str) -> str:
    if not SAFE_NAME.match(name) or name.startswith(".") or len(name) > 200:
        raise AutograderError(f"{argument}: {name!r} cannot name a submission (it becomes a folder of --out); "
                              "give a plain name with NAME=PATH")
    return name


def _looks_like_submission(entry: Path) -> bool:
    if entry.name.startswith(".") or entry.name in SKIPPED_PARTS:
        return False
    return entry.is_dir() or entry.name.endswith(SUBMISSION_SUFFIXES)


def _is_folder_of_submissions(folder: Path, assignment: Assignment) -> bool:
    """A folder without the module at its top and with several submission-like entries."""
    if (folder / assignment.module).exists():
        return False
    return sum(1 for entry in folder.iterdir() if _looks_like_submission(entry)) >= 2


def expand_submissions(arguments: list[str], assignment: Assignment, out: Path,
                       refused: list[str] | None = None) -> list[tuple[str, Path]]:
    """(student id, path) per submission: NAME=PATH, a submission, or a folder of them.

    A folder is a folder of submissions when it lacks <module> at its top and holds two or
    more folders, archives, .py or .ipynb files; each entry is then one student's submission,
    named after it. The --out folder is never taken for a submission.
    """
    out_resolved = out.resolve()
    named: list[tuple[str, Path]] = []

    def add(name: str, argument: str, path: Path) -> None:
        """A name that cannot be used refuses that submission only (into `refused`, when given)."""
        try:
            named.append((_check_name(name, argument), path))
        except AutograderError as error:
            if refused is None:
                raise
            refused.append(str(error))

    for argument in arguments:
        name, path = parse_submission_argument(argument)
        explicit = "=" in argument and not Path(argument).exists()
        if not explicit and path.is_dir() and not path.is_symlink() and _is_folder_of_submissions(path, assignment):
            for entry in sorted(path.iterdir()):
                if _looks_like_submission(entry) and entry.resolve() != out_resolved:
                    add(submission_name(entry), str(entry), entry)
            continue
        add(name, argument, path)
    names = [name for name, _ in named]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        where = "; ".join(f"{d}: " + ", ".join(str(p) for n, p in named if n == d) for d in duplicates[:3])
        raise AutograderError(f"several submissions are named the same ({where}); give them names with NAME=PATH")
    return named


def _existing(context: GradeContext, name: str) -> records.SubmissionResult | None:
    path = context.out / name / "result.json"
    if not path.exists():
        return None
    try:
        result = records.read_result(path)
    except (ValueError, TypeError, KeyError, OSError):
        return None  # unreadable: graded again
    if result.suite_hash != context.suite_hash or result.status == records.GRADER_ERROR or result.part != context.part:
        return None
    return result if result.submission_hash else None


def _same_submission(path: Path, assignment: Assignment, previous: records.SubmissionResult) -> bool:
    with tempfile.TemporaryDirectory(prefix="autograder-hash-") as scratch:
        try:
            staged = stage_submission(path, assignment, Path(scratch))
        except IntakeError:
            return False
        return staged.sha256 == previous.submission_hash


def _remove_partial_writes(directory: Path) -> None:
    """A grader killed inside write_atomic leaves `.result.json.XXXX`: not a result, removed."""
    if directory.is_dir():
        for leftover in directory.glob(".*.json.*"):
            leftover.unlink(missing_ok=True)


def _with_late(context: GradeContext, result: records.SubmissionResult, path: Path) -> bool:
    """Record the late policy's decision in the result; True when it changed."""
    decision = context.times.decide(context.assignment, result.submission, path, result.score).to_dict()
    changed = decision != result.late
    result.late = decision
    return changed


def grade_or_reuse(context: GradeContext, name: str, path: Path, regrade: bool) -> tuple[records.SubmissionResult, bool]:
    """(result, reused): the kept result of an unchanged submission, or a fresh grade written atomically."""
    directory = context.out / name
    previous = None if regrade else _existing(context, name)
    if previous is not None and _same_submission(path, context.assignment, previous):
        if _with_late(context, previous, path):
            write_result(previous, directory)
        return previous, True
    _remove_partial_writes(directory)
    try:
        result = grade_one(context, name, path)
    except Exception:  # a bug of ours: this submission is flagged, the batch goes on
        result = rejected(context, name, "grader fault while grading this submission")
        result.status = records.GRADER_ERROR
        result.reason = "grader fault: " + traceback.format_exc(limit=3)[-1500:]
    _with_late(context, result, path)
    write_result(result, directory)
    return result, False


class OutputLock:
    """One `grade` at a time per --out folder; the kernel drops the lock if the grader dies."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / ".grade.lock"
        self.handle = open(self.path, "a+")

    def __enter__(self) -> "OutputLock":
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "?"
            self.handle.close()
            raise AutograderError(f"another `autograder grade` (pid {holder}) is writing to {self.path.parent}; "
                                  "wait for it to finish or give another --out") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def main(*, assignment: str, submissions: list[str], out: str, config: str | None = None, jobs: int | None = None,
         regrade: bool = False, manifest: str | None = None, file_times: bool = False,
         limits: dict[str, str] | None = None, stream=sys.stdout, device: str = "", executor: str = "local",
         slurm: SlurmRequest | None = None, array_task: bool = False) -> int:
    """Grade a batch; exit code 0, or 3 when some submission hit a grader fault (regrade it).

    `device="cuda"` grades only the CUDA tests (a device-tagged partial result, see `merge`);
    `executor="slurm"` grades as a Slurm job array (pipeline/slurm_batch.py) whose tasks run this
    function with `array_task=True` (the driver holds the folder's lock)."""
    stream = SafeStream(stream)
    course = load_course(config, limits=limits)
    target = course.assignment(assignment)
    out_dir = Path(out)
    refused: list[str] = []
    named = expand_submissions(submissions, target, out_dir, refused)
    for reason in refused:  # not graded: no safe folder to hold its result; the rest of the batch goes on
        print(f"refused: {reason}", file=stream)
    times = SubmissionTimes.from_options(target, manifest, file_times)
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise AutograderError(f"-j {jobs}: the number of submissions graded at once must be 1 or more")
    with contextlib.nullcontext() if array_task else OutputLock(out_dir):
        context = make_context(course, target, out_dir, times=times, part=device)
        if executor == "slurm":
            arguments = ["--config", str(course.path), "grade", target.id] + (["--regrade"] if regrade else []) \
                + (["--manifest", str(Path(manifest).resolve())] if manifest else []) \
                + (["--file-times"] if file_times else []) + (["--device", device] if device else []) \
                + [f"--limit={name}={value}" for name, value in sorted((limits or {}).items())]
            def is_done(name: str, path: Path) -> records.SubmissionResult | None:
                previous = None if regrade else _existing(context, name)
                return previous if previous is not None and _same_submission(path, target, previous) else None
            outcome = SlurmBatch(context, named, slurm or SlurmRequest(), arguments, stream).run(is_done)
            if isinstance(outcome, str):
                print(f"submitted: job {outcome}; `autograder status {out_dir}` shows progress, and the same "
                      "command again waits for it (or resubmits what failed)", file=stream)
                return 0
            results = outcome
        else:
            results = _grade_batch(context, named, jobs, regrade, stream)
    print_table(results, stream)
    _print_late_notes(context, results, stream)
    return int(ExitCode.GRADER_ERROR) if any(r.status == records.GRADER_ERROR for r in results) else 0


def _grade_batch(context: GradeContext, named: list[tuple[str, Path]], jobs: int, regrade: bool,
                 stream) -> list[records.SubmissionResult]:
    """Grade on `jobs` threads (each waits on its own child processes); results in input order."""
    progress = Progress(len(named), stream)
    progress.start(f"grading {len(named)} submission(s) of {context.assignment.id} with -j {jobs} into {context.out}")
    results: dict[int, records.SubmissionResult] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(jobs, max(1, len(named))))
    futures = {pool.submit(grade_or_reuse, context, name, path, regrade): index
               for index, (name, path) in enumerate(named)}
    try:
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            try:
                result, reused = future.result()
            except Exception as error:  # e.g. the results disk is full: this one is flagged, the others go on
                result, reused = _unwritten(context, named[index][0], error), False
            results[index] = result
            progress.finished(result, reused=reused)
    except KeyboardInterrupt:
        _stop(pool, futures, stream)
        raise
    pool.shutdown()
    progress.close()
    return [results[index] for index in sorted(results)]


def _unwritten(context: GradeContext, name: str, error: Exception) -> records.SubmissionResult:
    result = rejected(context, name, "grader fault")
    result.status = records.GRADER_ERROR
    result.reason = f"grader fault: the result could not be written to {context.out / name}: {error}"
    return result


def _stop(pool: concurrent.futures.ThreadPoolExecutor, futures: dict, stream) -> None:
    """First Ctrl-C: start nothing new and let running submissions write their results; second: stop now."""
    pool.shutdown(wait=False, cancel_futures=True)
    running = [future for future in futures if not future.done()]
    print(f"\ninterrupted: finishing the {len(running)} submission(s) in progress; results written so far are kept "
          "(Ctrl-C again to stop at once; a rerun grades what is missing)", file=stream, flush=True)
    try:
        concurrent.futures.wait(running)
    except KeyboardInterrupt:
        stream.flush()
        os._exit(int(ExitCode.INTERRUPTED))  # results are written atomically: nothing half-written stays


def _print_late_notes(context: GradeContext, results: list[records.SubmissionResult], stream) -> None:
    late = [r for r in results if (r.late or {}).get("days_late")]
    if late:
        listed = ", ".join(f"{r.submission} ({r.late['days_late']} d, -{r.late['penalty_percent']:g}%)" for r in late)
        print(f"late: {listed}", file=stream)
    missing = [r.submission for r in results if (r.late or {}).get("source") == "missing"]
    if missing:
        print(f"no submission time (no late penalty applied): {', '.join(missing)}", file=stream)
    if context.assignment.due and context.times.source == "none":
        print(f"late policy not applied: {context.assignment.id} is due {context.assignment.due.isoformat()}; "
              "give --manifest CSV (student,submitted_at) or --file-times", file=stream)


def print_table(results: list[records.SubmissionResult], stream) -> None:
    if not results:
        return
    width = max(len(r.submission) for r in results)
    print(f"\n{'submission'.ljust(width)}  {'score':>13}  status", file=stream)
    for result in results:
        score = f"{points(result.score)}/{points(result.max_score)}"
        print(f"{result.submission.ljust(width)}  {score:>13}  {result.status}", file=stream)
    flagged = [r.submission for r in results if r.status == records.GRADER_ERROR]
    if flagged:
        print(f"grader errors (regrade these): {', '.join(flagged)}", file=stream)
