"""Merging the device parts of a submission's grade: the whole result a CPU machine wrote (its
CUDA tests `deferred`) and the partial result `grade --device cuda` wrote on a GPU node.

The merged result keeps the whole result's tests, with each test the GPU part graded taken
from that part; every test records the device (by name) that graded it, and `parts` keeps
each part's reproducibility record (device, suite hash, versions, seeds, isolation, times).
Parts of different suite versions, assignments or submissions are never combined.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from autograder.course import records
from autograder.errors import AutograderError
from autograder.pipeline.score import total

CPU = "cpu"


class MergeRefused(AutograderError):
    """Two results that must not be combined; the message is one line naming both."""


@dataclass(frozen=True)
class Located:
    """A result and the file it was read from (for messages)."""

    result: records.SubmissionResult
    where: str


def part_record(result: records.SubmissionResult, part: str, tests: int) -> dict:
    """One device part's reproducibility record: enough to replay that part of the grade."""
    return {
        "part": part, "device": result.device, "tests": tests, "status": result.status,
        "suite_hash": result.suite_hash, "suite_version": result.suite_version, "submission_hash": result.submission_hash,
        "versions": dict(result.versions), "seeds": dict(result.seeds), "isolation": dict(result.isolation),
        "started_at": result.started_at, "finished_at": result.finished_at, "duration_seconds": result.duration_seconds,
    }


def _version(result: records.SubmissionResult) -> str:
    return result.suite_version or result.suite_hash


def check_compatible(whole: Located, part: Located) -> None:
    """Refuse, in one line, parts that are not of the same assignment, suite version and submission."""
    a, b = whole.result, part.result
    if a.assignment != b.assignment:
        raise MergeRefused(f"{part.where} is a result of {b.assignment}, {whole.where} of {a.assignment}: "
                           "only results of one assignment merge")
    if _version(a) != _version(b):
        raise MergeRefused(f"{whole.where} and {part.where} come from different suite versions "
                           f"({_version(a)[:12]} vs {_version(b)[:12]}): grade both parts with the same suite")
    if a.submission_hash and b.submission_hash and a.submission_hash != b.submission_hash:
        raise MergeRefused(f"{whole.where} and {part.where} graded different submissions of {a.submission} "
                           f"(hash {a.submission_hash[:12]} vs {b.submission_hash[:12]}): grade the same files on both devices")


def merge_results(whole: Located, parts: list[Located]) -> records.SubmissionResult:
    """The whole result with each device part's tests in place; refuses incompatible parts."""
    merged = dataclasses.replace(whole.result, tests=[dataclasses.replace(t) for t in whole.result.tests])
    records_by_part = {record["part"]: record for record in whole.result.parts} or {
        CPU: part_record(whole.result, CPU, len(whole.result.tests))}
    by_id = {test.id: index for index, test in enumerate(merged.tests)}
    cpu_device = records_by_part.get(CPU, {}).get("device", whole.result.device)
    for test in merged.tests:
        if not test.device and test.status != records.DEFERRED:
            test.device = cpu_device
    seen: set[str] = set()
    for located in parts:
        part = located.result
        check_compatible(whole, located)
        if part.part in seen:
            raise MergeRefused(f"{located.where}: a second {part.part} part of {part.submission}; give one per device")
        seen.add(part.part)
        unknown = [test.id for test in part.tests if test.id not in by_id]
        if unknown:
            raise MergeRefused(f"{located.where}: test {unknown[0]} is not in {whole.where}; "
                               "the two parts do not come from the same suite")
        for test in part.tests:
            merged.tests[by_id[test.id]] = dataclasses.replace(test, device=part.device if test.status != records.DEFERRED else "")
        records_by_part[part.part] = part_record(part, part.part, len(part.tests))
    merged.parts = [records_by_part[name] for name in sorted(records_by_part, key=lambda p: (p != CPU, p))]
    merged.device = ", ".join(record["device"] for record in merged.parts)
    _settle(merged, whole.result, [located.result for located in parts])
    return merged


def _settle(merged: records.SubmissionResult, whole: records.SubmissionResult,
            parts: list[records.SubmissionResult]) -> None:
    """Score, status and reason of the merged result; the late policy re-applied to the new score."""
    if whole.status == records.REJECTED:
        merged.score = 0.0
        return
    merged.score = total(merged.tests)
    faults = [p for p in parts if p.status == records.GRADER_ERROR] + ([whole] if whole.status == records.GRADER_ERROR else [])
    if faults or any(t.status == records.GRADER_ERROR for t in merged.tests):
        merged.status = records.GRADER_ERROR
        merged.reason = "; ".join(filter(None, [f.reason for f in faults])) or "a test hit a grader fault; regrade"
    reasons = [f"{p.part} part: {p.reason}" for p in parts if p.reason and p.status != records.GRADER_ERROR]
    if reasons:
        merged.reason = "; ".join(filter(None, [merged.reason, *reasons]))
    merged.duration_seconds = round(whole.duration_seconds + sum(p.duration_seconds for p in parts), 3)
    late = dict(merged.late or {})
    if late.get("source"):
        penalty = round(merged.score * float(late.get("penalty_percent", 0.0)) / 100, 4)
        late.update(penalty=penalty, final_score=round(merged.score - penalty, 4))
        merged.late = late


def deferred_tests(result: records.SubmissionResult) -> list[records.TestResult]:
    return [test for test in result.tests if test.status == records.DEFERRED]


def device_summary(result: records.SubmissionResult) -> dict:
    """Which device graded how many tests and points, and what is still deferred."""
    devices: dict[str, dict] = {}
    for test in result.tests:
        if test.status == records.DEFERRED:
            continue
        name = test.device or result.device
        entry = devices.setdefault(name, {"tests": 0, "points": 0.0, "max_points": 0.0})
        entry["tests"] += 1
        entry["points"] = round(entry["points"] + test.score, 4)
        entry["max_points"] = round(entry["max_points"] + test.max_score, 4)
    deferred = deferred_tests(result)
    return {"devices": devices, "deferred": [test.id for test in deferred],
            "deferred_points": round(sum(test.max_score for test in deferred), 4)}
