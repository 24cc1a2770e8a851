"""The `grade` verb: intake -> static checks -> sandboxed run -> score -> result files.

One submission's failure of any kind becomes that submission's result (rejected, or tests
with error/timeout/crashed); it never stops the batch.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from autograder import records
from autograder.checks import check_submission
from autograder.config import Assignment, Course, check_suite_coverage, load_course
from autograder.errors import AutograderError, ConfigError, IntakeError
from autograder.intake import stage_submission, submission_name
from autograder.results import environment_versions, suite_hash, write_result
from autograder.run import RunRequest, list_tests, run_suite
from autograder.score import score_tests, submission_status, total


@dataclass(frozen=True)
class GradeContext:
    """What every submission of a batch shares: the course, the suite, its ids and hash."""

    course: Course
    assignment: Assignment
    test_ids: tuple[str, ...]
    suite_hash: str
    out: Path
    visibility: str = "all"
    keyword: str = ""
    device: str = "cpu"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def parse_submission_argument(argument: str) -> tuple[str, Path]:
    """`PATH` or `NAME=PATH` (to name a submission explicitly)."""
    if "=" in argument and not Path(argument).exists():
        name, _, path = argument.partition("=")
        return name, Path(path)
    path = Path(argument)
    return submission_name(path), path


def _rejected(context: GradeContext, name: str, reason: str, sha: str = "") -> records.SubmissionResult:
    tests = []
    for test_id in context.test_ids:
        group = context.assignment.group_for(test_id)
        if group is None:
            continue
        share = round(group.points / sum(1 for t in context.test_ids if context.assignment.group_for(t) is group), 6)
        tests.append(records.TestResult(test_id, test_id.split("::", 1)[-1], group.name, records.ERROR, 0.0, share,
                                        group.visibility, f"not run: {reason}"))
    return records.SubmissionResult(
        assignment=context.assignment.id, submission=name, status=records.REJECTED, score=0.0,
        max_score=context.assignment.max_score, tests=tests, reason=reason, submission_hash=sha,
        suite_hash=context.suite_hash, versions=environment_versions(), device=context.device,
        seeds={"hypothesis": "derandomize=True (seed from each test's name)"},
    )


def grade_one(context: GradeContext, name: str, source: Path) -> records.SubmissionResult:
    """Grade one submission; every problem with it ends up in the returned result."""
    started, clock = _now(), time.monotonic()
    assignment = context.assignment
    with tempfile.TemporaryDirectory(prefix="autograder-stage-") as scratch:
        try:
            staged = stage_submission(source, assignment, Path(scratch) / "stage")
        except IntakeError as error:
            result = _rejected(context, name, str(error))
        else:
            problems = check_submission(staged.directory, assignment)
            fatal = [p.message for p in problems if p.fatal]
            if fatal:
                result = _rejected(context, name, "; ".join(fatal), staged.sha256)
            else:
                result = _run_and_score(context, name, staged, Path(scratch))
                notes = list(staged.notes) + [p.message for p in problems]
                if notes:
                    result.reason = "; ".join(filter(None, [result.reason, *notes]))
    result.started_at, result.finished_at = started, _now()
    result.duration_seconds = round(time.monotonic() - clock, 3)
    return result


def _run_and_score(context: GradeContext, name: str, staged: records.StagedSubmission, scratch: Path) -> records.SubmissionResult:
    assignment = context.assignment
    request = RunRequest(
        course_file=str(context.course.path), assignment=assignment.id,
        suite_dir=str(context.course.suite_dir(assignment)), submission_dir=str(staged.directory),
        outcomes_file=str(scratch / "outcomes.jsonl"), visibility=context.visibility, keyword=context.keyword,
    )
    log_file = context.out / name / "grader.log" if context.out else None
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    run = run_suite(request, timeout=assignment.limits.submission_seconds, log_file=log_file)
    tests = score_tests(assignment, list(context.test_ids), run)
    status, reason = submission_status(tests, run)
    return records.SubmissionResult(
        assignment=assignment.id, submission=name, status=status, score=0.0 if status == records.REJECTED else total(tests),
        max_score=assignment.max_score, tests=tests, reason=reason, submission_hash=staged.sha256,
        suite_hash=context.suite_hash, versions=environment_versions(), device=context.device,
        seeds={"hypothesis": "derandomize=True (seed from each test's name)"}, isolation=run.isolation,
        output=run.output if assignment.feedback.show_output else "",
    )


def make_context(course: Course, assignment: Assignment, out: Path, **options) -> GradeContext:
    """List the suite once and check grading.yaml's groups against it before grading anything."""
    if not course.suite_dir(assignment).is_dir():
        raise ConfigError(f"{course.path}: {assignment.id} has no grading suite at {course.suite_dir(assignment)}")
    test_ids = list_tests(course.path, assignment.id, course.suite_dir(assignment))
    problems = check_suite_coverage(assignment, test_ids, course.path)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    return GradeContext(course=course, assignment=assignment, test_ids=tuple(test_ids),
                        suite_hash=suite_hash(course, assignment), out=out, **options)


def _existing(context: GradeContext, name: str) -> records.SubmissionResult | None:
    path = context.out / name / "result.json"
    if not path.exists():
        return None
    try:
        result = records.read_result(path)
    except (ValueError, TypeError, KeyError):
        return None
    return result if result.suite_hash == context.suite_hash and result.status != records.GRADER_ERROR else None


def main(*, assignment: str, submissions: list[str], out: str, config: str | None = None, jobs: int = 1,
         regrade: bool = False, stream=sys.stdout) -> int:
    course = load_course(config)
    target = course.assignment(assignment)
    out_dir = Path(out)
    named = [parse_submission_argument(s) for s in submissions]
    names = [n for n, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AutograderError(f"several submissions are named {', '.join(duplicates)}; give them names with NAME=PATH")
    context = make_context(course, target, out_dir)
    results: list[records.SubmissionResult] = []

    def work(item: tuple[str, Path]) -> records.SubmissionResult:
        name, path = item
        previous = None if regrade else _existing(context, name)
        if previous is not None and previous.submission_hash and _same_submission(path, target, previous):
            return previous
        try:
            result = grade_one(context, name, path)
        except Exception:  # a bug of ours: this submission is flagged, the batch goes on
            result = _rejected(context, name, "grader fault while grading this submission")
            result.status = records.GRADER_ERROR
            result.reason = "grader fault: " + traceback.format_exc(limit=3)[-1500:]
        write_result(result, out_dir / name)
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for index, result in enumerate(pool.map(work, named), start=1):
            results.append(result)
            print(f"[{index}/{len(named)}] {result.submission}: {result.score:g}/{result.max_score:g} {result.status}"
                  + (f" ({result.reason.splitlines()[0][:120]})" if result.reason else ""), file=stream, flush=True)
    print_table(results, stream)
    return 0


def _same_submission(path: Path, assignment: Assignment, previous: records.SubmissionResult) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        try:
            staged = stage_submission(path, assignment, Path(scratch))
        except IntakeError:
            return False
        return staged.sha256 == previous.submission_hash


def print_table(results: list[records.SubmissionResult], stream) -> None:
    if not results:
        return
    width = max(len(r.submission) for r in results)
    print(f"\n{'submission'.ljust(width)}  {'score':>13}  status", file=stream)
    for result in results:
        score = f"{result.score:g}/{result.max_score:g}"
        print(f"{result.submission.ljust(width)}  {score:>13}  {result.status}", file=stream)
    flagged = [r.submission for r in results if r.status == records.GRADER_ERROR]
    if flagged:
        print(f"grader errors (regrade these): {', '.join(flagged)}", file=stream)
