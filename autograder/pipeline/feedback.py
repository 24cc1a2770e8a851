"""What a student reads: a per-task summary first, then one section per failing group.

result.json keeps one TestResult per test id with exact points; a person reads tasks and
groups. A task is the "Task N" / "Tasks N.M-N.K" prefix of its group names (groups without
one, e.g. "All: float32 in, float32 out", are cross-cutting: they re-check every task's
formulas). A failing group shows its clearest failing case (one with a diagnosis first),
not one row per parametrization. Points are shown with at most two decimals.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.course import records

CROSS_CUTTING = "Cross-cutting checks (they re-check the formulas of every task)"
NOT_STARTED_MARK = "NotImplementedError"
_TASK = re.compile(r"^(Tasks?\s+[0-9][0-9.]*(?:\s*-\s*[0-9][0-9.]*)?)\b")
# pytest's assertion introspection and diff lines: noise for a student, and in hidden tests
# they would show hidden inputs.
_DIFF_LINE = re.compile(r"^\s*(assert\s|where\s|and\s+[^a-z]|[+\-?]\s|E\s|At index|Full diff|Use -v)")


def points(value: float | None) -> str:
    """A number of points as people read it: at most two decimals (17.5, 20, 3.33)."""
    if value is None:
        return ""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def task_key(group: str) -> str:
    match = _TASK.match(group)
    return match.group(1) if match else ""


def _clean_group(name: str) -> str:
    return re.sub(r"\s*\((public|hidden)\)\s*$", "", name).strip()


def _common_title(key: str, groups: list[str]) -> str:
    """"Task 4 Adam" from "Task 4 Adam (public)" and "Task 4 Adam trajectories"."""
    words = [_clean_group(g).split() for g in groups]
    common = []
    for column in zip(*words):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    title = " ".join(common).rstrip(":,")
    return title if len(title) >= len(key) else key


@dataclass
class GroupView:
    name: str
    visibility: str
    score: float = 0.0
    max_score: float = 0.0
    tests: list[records.TestResult] = field(default_factory=list)

    @property
    def failing(self) -> list[records.TestResult]:
        return [t for t in self.tests if t.status not in (records.PASSED, records.DEFERRED)]

    @property
    def not_started(self) -> bool:
        return bool(self.tests) and all(_not_implemented(t) for t in self.tests)

    def clearest(self) -> records.TestResult | None:
        """The failing case that explains most: a diagnosis first, then a failed comparison
        over an error, then the shortest message."""
        failing = self.failing
        if not failing:
            return None
        return min(failing, key=lambda t: (not t.diagnosis, t.status != records.FAILED, len(t.feedback)))

    def reasons(self) -> list[str]:
        """The distinct diagnoses of the group's failures, most frequent first."""
        counts: dict[str, int] = {}
        for test in self.failing:
            if test.diagnosis:
                counts[test.diagnosis] = counts.get(test.diagnosis, 0) + 1
        return sorted(counts, key=lambda d: -counts[d])


@dataclass
class TaskView:
    key: str
    title: str
    groups: list[GroupView]

    @property
    def score(self) -> float:
        return sum(g.score for g in self.groups)

    @property
    def max_score(self) -> float:
        return sum(g.max_score for g in self.groups)

    @property
    def failed_groups(self) -> list[GroupView]:
        return [g for g in self.groups if g.failing]

    @property
    def not_started(self) -> bool:
        return all(g.not_started for g in self.groups)

    def why(self) -> str:
        for group in self.failed_groups:
            reasons = group.reasons()
            if reasons:
                return reasons[0]
        for group in self.failed_groups:
            case = group.clearest()
            if case is not None and case.feedback:
                return first_sentence(case.feedback)
        return ""


def _not_implemented(test: records.TestResult) -> bool:
    """The test stopped at the stub's NotImplementedError (raised, or raised where an
    expect_raises test wanted another exception)."""
    return (test.status in (records.ERROR, records.FAILED)
            and f"raised {NOT_STARTED_MARK}" in test.feedback.split("\n", 1)[0])


def first_sentence(text: str) -> str:
    line = (student_text(text).strip().splitlines() or [""])[0]
    return line[:300]


_LIBRARY_FRAME = re.compile(r'^\s*File "[^"]*(site-packages|dist-packages|/lib/python3|autograder/)[^"]*"')


def student_text(feedback: str) -> str:
    """A feedback message without pytest's introspection and diff lines, and without the
    traceback frames of libraries and of the grader's runtime (only the student's own frames)."""
    lines, skip = [], False
    for line in feedback.splitlines():
        if _LIBRARY_FRAME.match(line):
            skip = True  # the frame line and its source line
            continue
        if skip and line.startswith("    "):
            skip = False
            continue
        skip = False
        if not _DIFF_LINE.match(line):
            lines.append(line)
    return "\n".join(lines).strip()


def _task_order(key: str) -> tuple:
    numbers = re.findall(r"[0-9]+", key)
    return (not key, [int(n) for n in numbers])


def tasks_of(result: records.SubmissionResult, order: list[str] | None = None) -> list[TaskView]:
    """The result's tests folded into groups, and groups into tasks, in suite order
    (`order`: the group names as grading.yaml lists them; else public groups first)."""
    groups: dict[str, GroupView] = {}
    rank = {name: index for index, name in enumerate(order or [])}
    tests = sorted(result.tests, key=lambda t: (rank.get(t.group, len(rank)), t.visibility != "public"))
    for test in tests:
        view = groups.setdefault(test.group, GroupView(test.group, test.visibility))
        view.tests.append(test)
        view.score += test.score
        view.max_score += test.max_score
    tasks: dict[str, list[GroupView]] = {}
    for view in groups.values():
        tasks.setdefault(task_key(view.name), []).append(view)
    ordered = sorted(tasks, key=_task_order)
    return [TaskView(k, _common_title(k, [g.name for g in tasks[k]]) if k else CROSS_CUTTING, tasks[k]) for k in ordered]


def task_line(task: TaskView) -> str:
    """"Task 4 Adam: 3.5 / 16, groups failed: ...; why: ..." (one line per task)."""
    head = f"{task.title}: {points(task.score)} / {points(task.max_score)}"
    if task.not_started and task.failed_groups:
        return f"{task.title}: not started ({points(task.max_score)} point{'' if task.max_score == 1 else 's'} open)"
    failed = task.failed_groups
    if not failed:
        return head
    line = head + ", groups failed: " + "; ".join(_clean_group(g.name) for g in failed)
    why = task.why()
    return line + (f". Why: {why}" if why else "")


def group_heading(group: GroupView) -> str:
    failing = len(group.failing)
    return (f"{group.name}: {points(group.score)} / {points(group.max_score)} "
            f"({failing} of {len(group.tests)} test{'s' if len(group.tests) != 1 else ''} failed)")


def group_body(group: GroupView) -> list[str]:
    """The failing group's explanation: the diagnosis, then its clearest failing case."""
    lines = []
    reasons = group.reasons()
    if reasons:
        lines.append("Why: " + reasons[0])
        lines += [f"Also: {reason}" for reason in reasons[1:3]]
    case = group.clearest()
    if case is not None:
        text = student_text(case.feedback) if case.feedback else f"({case.status})"
        name = case.name if group.visibility == "public" else case.name.split("[", 1)[0]  # hidden ids carry inputs
        if text:
            lines.append(f"Clearest failing case ({name}, {case.status}):")
            lines.append(text)
    return lines


def summary_lines(result: records.SubmissionResult, order: list[str] | None = None) -> list[str]:
    return [task_line(task) for task in tasks_of(result, order)]


def gradescope_tests(result: records.SubmissionResult, visibility: dict[str, str],
                     order: list[str] | None = None) -> list[dict]:
    """One Gradescope test per group (not per parametrization), with the group's explanation."""
    tests = []
    for task in tasks_of(result, order):
        for group in task.groups:
            failing = bool(group.failing)
            tests.append({
                "score": group.score, "max_score": group.max_score, "name": group.name,
                "number": str(len(tests) + 1), "status": "failed" if failing else "passed",
                "output": "\n".join([group_heading(group)] + group_body(group)) if failing else "",
                "visibility": visibility[group.visibility], "tags": [task.title],
            })
    return tests


def md_line(text: str) -> str:
    """Student-influenced text on one Markdown line: no markup, no raw HTML, no line breaks."""
    text = re.sub(r"([\\`*_\[\]#|])", r"\\\1", text.replace("\n", " "))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
