"""The `check` verb for students: run the public tests on a working copy and explain failures.

The first check starts a warm check server (check/server.py) that keeps pytest, torch, the
sandbox's zygote and the collected public suite loaded; later checks are answered by it, in a
second or two instead of the interpreter's and torch's start-up. AUTOGRADER_WARM=0 (or
AUTOGRADER_CHECK_SERVER=0) checks in this process instead.
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from autograder.course import records
from autograder.course.reader import load_course
from autograder.pipeline.feedback import (
    group_body,
    group_heading,
    points,
    task_line,
    tasks_of,
)
from autograder.pipeline.grade_submission import grade_one, make_context
from autograder.pipeline.package import default_copy, graded_copy

STATUS_MARK = {records.PASSED: "PASS", records.FAILED: "FAIL", records.ERROR: "ERROR", records.TIMEOUT: "TIMEOUT",
               records.CRASHED: "CRASH", records.DEFERRED: "LATER", records.GRADER_ERROR: "GRADER-ERROR"}


def main(*, assignment: str, path: str | None = None, config: str | None = None, keyword: str = "",
         limits: dict[str, str] | None = None, stream=sys.stdout) -> int:
    """Exit 0 when every public test passes, 1 otherwise."""
    course = load_course(config, limits=limits)
    target = course.assignment(assignment)
    source = Path(path) if path else default_copy(course, target)
    request = {"config": str(course.path.resolve()), "assignment": target.id, "source": str(source.resolve()),
               "keyword": keyword, "limits": dict(limits or {})}
    from autograder.commands.check import server

    answer = server.ask(request) if server.wanted() else None
    if answer is not None:
        text, code = answer
        stream.write(text)
        return code
    return run(request, stream)


def run(request: dict, stream) -> int:
    """One check, in this process: what the check server does for each request."""
    course = load_course(request["config"], limits=request["limits"])
    target = course.assignment(request["assignment"])
    source, keyword = Path(request["source"]), request["keyword"]
    with tempfile.TemporaryDirectory() as scratch:
        context = make_context(course, target, Path(scratch), visibility="public", keyword=keyword)
        public_ids = tuple(t for t in context.test_ids if (g := target.group_for(t)) is not None and g.visibility == "public")
        context = dataclasses.replace(context, test_ids=public_ids, out=None)
        result = grade_one(context, "check", graded_copy(target, source, Path(scratch) / "copy"))
    if keyword:
        result.tests = [t for t in result.tests if keyword in t.id]
    print(f"{target.id}: public tests on {source}", file=stream)
    if result.reason:
        print(f"  note: {result.reason}", file=stream)
    tasks = tasks_of(result, [g.name for g in target.tests])
    print("", file=stream)
    for task in tasks:
        print(f"  {task_line(task)}", file=stream)
    for task in tasks:
        if task.not_started:
            continue
        for group in task.failed_groups:
            print(f"\n{group_heading(group)}", file=stream)
            for line in group_body(group):
                for part in line.splitlines()[:40]:
                    print(f"  {part}", file=stream)
    public_max = sum(t.max_score for t in result.tests)
    print(f"\npublic tests: {points(result.score)}/{points(public_max)} points "
          f"({sum(t.status == records.PASSED for t in result.tests)}/{len(result.tests)} passed). "
          "Hidden tests grade more cases after you submit.", file=stream)
    return 0 if result.tests and all(t.status == records.PASSED for t in result.tests) else 1
