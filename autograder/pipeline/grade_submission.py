"""Grade one submission through the whole pipeline: intake, static scan, sandboxed run, score.

`make_context` lists the suite once per batch and checks grading.yaml's groups against it;
`grade_one` turns one submission (folder, archive, .py or notebook) into a SubmissionResult.
Every verb that grades (grade, check, verify, export) goes through here.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.course import records
from autograder.course.late import SubmissionTimes
from autograder.course.model import Assignment, Course
from autograder.course.reader import check_suite_coverage
from autograder.errors import ConfigError, IntakeError
from autograder.pipeline.intake import stage_submission
from autograder.pipeline.results import environment_versions, suite_hash, suite_version
from autograder.pipeline.pytest_run import device_of_test
from autograder.pipeline.run import RunRequest, list_tests, oracle_cache_for, run_suite
from autograder.pipeline.scan import check_submission
from autograder.pipeline.score import score_tests, submission_status, total


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
    times: SubmissionTimes = SubmissionTimes()
    suite_version: str = ""
    part: str = ""          # "cuda": grade only the CUDA tests, into a device-tagged partial result


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


SEEDS = {"hypothesis": "derandomize=True (seed from each test's name)"}


def rejected(context: GradeContext, name: str, reason: str, sha: str = "") -> records.SubmissionResult:
    """A submission that never ran: every scored test is an error with the reason, scored as usual."""
    not_run = records.SuiteRun(outcomes=tuple(records.TestOutcome(t, records.ERROR, f"not run: {reason}")
                                              for t in context.test_ids))
    return records.SubmissionResult(
        assignment=context.assignment.id, submission=name, status=records.REJECTED, score=0.0,
        max_score=context.assignment.max_score, tests=score_tests(context.assignment, list(context.test_ids), not_run),
        reason=reason, submission_hash=sha, suite_hash=context.suite_hash, versions=environment_versions(),
        device=context.device, seeds=dict(SEEDS), suite_version=context.suite_version, part=context.part,
    )


def grade_one(context: GradeContext, name: str, source: Path) -> records.SubmissionResult:
    """Grade one submission; every problem with it ends up in the returned result."""
    started, clock = _now(), time.monotonic()
    assignment = context.assignment
    with tempfile.TemporaryDirectory(prefix="autograder-stage-") as scratch:
        try:
            staged = stage_submission(source, assignment, Path(scratch) / "stage")
        except IntakeError as error:
            result = rejected(context, name, str(error))
        else:
            problems = check_submission(staged.directory, assignment)
            fatal = [p.message for p in problems if p.fatal]
            if fatal:
                result = rejected(context, name, "; ".join(fatal), staged.sha256)
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
        limits=dict(context.course.limit_overrides), device=context.part, oracle_cache=oracle_cache_for(context.suite_hash),
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
        suite_hash=context.suite_hash, versions=environment_versions(), device=run.device or context.device,
        seeds=dict(SEEDS), isolation=run.isolation,
        output=run.output if assignment.feedback.show_output else "",
        suite_version=context.suite_version, part=context.part, timings=run.timings,
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
    part = options.pop("part", "")
    if part:  # a device-tagged partial result: only the tests parametrized for that device
        test_ids = [test_id for test_id in test_ids if device_of_test(test_id) == part]
        if not test_ids:
            raise ConfigError(f"{course.path}: {assignment.id} has no tests parametrized for {part} (its devices: "
                              f"{', '.join(assignment.devices)}); --device {part} would grade nothing")
        options.setdefault("device", part)
    return GradeContext(course=course, assignment=assignment, test_ids=tuple(test_ids),
                        suite_hash=suite_hash(course, assignment), out=out, part=part,
                        suite_version=suite_version(course, assignment), **options)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
