"""Which device graded which part of each result, and what is still deferred (for `report`)."""
from __future__ import annotations

import html

from autograder.course import records
from autograder.pipeline.merge import device_summary


def class_devices(results: tuple[records.SubmissionResult, ...]) -> dict:
    """summary.json's `devices`: per device, how many submissions and tests it graded; who is still deferred."""
    devices: dict[str, dict] = {}
    deferred: dict[str, int] = {}
    for result in results:
        summary = device_summary(result)
        for name, entry in summary["devices"].items():
            total = devices.setdefault(name, {"submissions": 0, "tests": 0})
            total["submissions"] += 1
            total["tests"] += entry["tests"]
        if summary["deferred"]:
            deferred[result.submission] = len(summary["deferred"])
    return {"devices": devices, "deferred": deferred}


def summary_lines(results: tuple[records.SubmissionResult, ...]) -> list[str]:
    data = class_devices(results)
    lines = [f"graded on {name}: {entry['tests']} test(s) of {entry['submissions']} submission(s)"
             for name, entry in sorted(data["devices"].items())]
    if data["deferred"]:
        who = ", ".join(f"{name} ({count})" for name, count in sorted(data["deferred"].items()))
        lines.append(f"deferred tests (a device this machine lacks; `grade --device cuda`, then `merge`): {who}")
    return lines


def feedback_section(result: records.SubmissionResult) -> str:
    """A Markdown section for feedback.md: the device of each part and the tests still deferred."""
    summary = device_summary(result)
    if len(summary["devices"]) <= 1 and not summary["deferred"]:
        return ""
    lines = ["", "## Devices", ""]
    for name, entry in sorted(summary["devices"].items()):
        lines.append(f"- {name}: {entry['tests']} test(s), {entry['points']:g}/{entry['max_points']:g} points")
    if summary["deferred"]:
        lines.append(f"- deferred (not graded yet, never counted as failed): {len(summary['deferred'])} test(s), "
                     f"{summary['deferred_points']:g} points: " + ", ".join(
                         t.name for t in result.tests if t.status == records.DEFERRED))
    return "\n".join(lines) + "\n"


def report_section(results: tuple[records.SubmissionResult, ...]) -> str:
    """An HTML section for report.html."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(results))
    return f"<section><h2>Devices</h2><ul>{items}</ul></section>" if items else ""
