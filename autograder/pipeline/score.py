"""Scoring: grading.yaml turns test outcomes into points and feedback.

A group's points are shared equally by its tests; a test earns its share when it passes.
Deferred tests (a device this machine lacks) earn nothing yet and are listed, never failed.
Feedback follows the policy: `full` (message and hypothesis' minimal example), `message`
(what was compared, never the inputs), `status` (nothing but the status).
"""
from __future__ import annotations

import math

from autograder.course import records
from autograder.course.model import Assignment, TestGroup


def _test_name(test_id: str) -> str:
    return test_id.split("::", 1)[-1]


def feedback_level(assignment: Assignment, group: TestGroup | None) -> str:
    if group is not None and group.feedback:
        return group.feedback
    if group is not None and group.visibility == "public":
        return assignment.feedback.public
    return assignment.feedback.hidden


def without_introspection(message: str) -> str:
    """Cut pytest's assertion introspection after the `assert ...` line: its `where` lines
    show the arguments of the calls in the assert, which in a hidden test are hidden inputs."""
    lines = message.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("assert "):
            return "\n".join(lines[: index + 1])
    return message


def feedback_text(outcome: records.TestOutcome, level: str) -> str:
    if outcome.status == records.PASSED or level == "status":
        return ""
    parts = [outcome.message if level == "full" else without_introspection(outcome.message)]
    if outcome.traceback:
        parts.append(outcome.traceback.rstrip())
    if level == "full" and outcome.example:
        parts.append(outcome.example.rstrip())
    return "\n".join(p for p in parts if p)


def score_tests(assignment: Assignment, test_ids: list[str], run: records.SuiteRun) -> list[records.TestResult]:
    """One TestResult per expected test id; a test that never reported is timeout or grader-error."""
    by_id = {outcome.id: outcome for outcome in run.outcomes}
    members: dict[str, list[str]] = {}
    for test_id in test_ids:
        group = assignment.group_for(test_id)
        if group is not None:
            members.setdefault(group.name, []).append(test_id)
    results = []
    for test_id in test_ids:
        group = assignment.group_for(test_id)
        if group is None:
            continue  # explicitly unscored
        share = group.points / len(members[group.name])
        outcome = by_id.get(test_id)
        if outcome is None:
            if run.fault == "timeout":
                outcome = records.TestOutcome(test_id, records.TIMEOUT, f"not run: the submission ran past its time limit")
            else:
                outcome = records.TestOutcome(test_id, records.GRADER_ERROR, f"not run: {run.fault or 'no outcome recorded'}")
        results.append(records.TestResult(
            id=test_id, name=_test_name(test_id), group=group.name, status=outcome.status,
            score=share if outcome.status == records.PASSED else 0.0, max_score=share,
            visibility=group.visibility, feedback=feedback_text(outcome, feedback_level(assignment, group)),
            duration=round(outcome.duration, 3),
            diagnosis=outcome.diagnosis if feedback_level(assignment, group) != "status" else "",
        ))
    return results


def total(tests: list[records.TestResult]) -> float:
    """The exact sum of the tests' exact shares (rounded only to drop float noise such as
    99.99999999999999: what people read is shown with two decimals)."""
    return round(math.fsum(test.score for test in tests), 9)


def submission_status(tests: list[records.TestResult], run: records.SuiteRun) -> tuple[str, str]:
    """(status, reason) of a graded submission: grader faults are flagged, never hidden."""
    if run.rejected:
        return records.REJECTED, f"the module could not be imported: {run.rejected}"
    faults = [t for t in tests if t.status == records.GRADER_ERROR]
    if faults:
        return records.GRADER_ERROR, f"{len(faults)} test(s) hit a grader fault; this submission must be regraded"
    if run.fault and run.fault != "timeout":
        return records.GRADER_ERROR, run.fault
    return records.GRADED, ""
