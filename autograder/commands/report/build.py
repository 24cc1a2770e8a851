"""The `report` verb: from a results folder to gradebook.csv, per-student feedback, and a
class report.html, with a terminal summary of what the staff must look at."""
from __future__ import annotations

import csv
import io
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.commands.report.devices import class_devices, feedback_section, report_section
from autograder.commands.report.devices import summary_lines as device_lines
from autograder.course import records
from autograder.course.late import LateDecision
from autograder.course.model import Assignment
from autograder.course.reader import load_course
from autograder.errors import AutograderError
from autograder.pipeline.feedback import points
from autograder.pipeline.results import write_atomic

GRADEBOOK_COLUMNS = ("student", "score", "max", "late_penalty", "final", "status")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection list


@dataclass(frozen=True)
class GradebookRow:
    """One student's line: a grader-error has no score, so an LMS import never records a zero."""

    student: str
    score: float | None
    max_score: float
    late_penalty: float
    final: float | None
    status: str


@dataclass(frozen=True)
class ClassResults:
    """Every result of one assignment in a results folder, and what could not be read."""

    assignment: Assignment
    course_name: str
    results: tuple[records.SubmissionResult, ...]
    skipped: tuple[str, ...]

    def late(self, result: records.SubmissionResult) -> LateDecision:
        return LateDecision.from_dict(result.late, result.score)

    def to_look_at(self) -> dict[str, list[tuple[str, str]]]:
        """(student, detail) per kind of trouble: grader errors, timeouts, crashes, rejections."""
        trouble: dict[str, list[tuple[str, str]]] = {"grader-error": [], "timeout": [], "crashed": [], "rejected": []}
        for result in self.results:
            if result.status == records.GRADER_ERROR:
                trouble["grader-error"].append((result.submission, _first_line(result.reason)))
            if result.status == records.REJECTED:
                trouble["rejected"].append((result.submission, _first_line(result.reason)))
            for status in (records.TIMEOUT, records.CRASHED):
                names = [t.name for t in result.tests if t.status == status]
                if names:
                    trouble[status].append((result.submission, ", ".join(names)))
        return trouble


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def number(value: float | None) -> str:
    """A score for gradebook.csv (an LMS import): 17.5, 20, 0.3333. People read points() instead."""
    if value is None:
        return ""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def load_results(results_dir: Path, assignment: Assignment, course_name: str = "") -> ClassResults:
    """Read RESULTS_DIR/<student>/result.json of this assignment; others are listed as skipped."""
    if not results_dir.is_dir():
        raise AutograderError(f"{results_dir}: no such results folder; give the folder that `autograder grade --out` wrote")
    results, skipped = [], []
    for path in sorted(results_dir.glob("*/result.json")):
        try:
            result = records.read_result(path)
        except (ValueError, TypeError, KeyError, OSError) as error:
            skipped.append(f"{path}: unreadable ({error})")
            continue
        if result.assignment != assignment.id:
            skipped.append(f"{path}: a result of {result.assignment}, not {assignment.id}")
            continue
        results.append(result)
    if not results:
        raise AutograderError(f"{results_dir}: no result.json of {assignment.id} found; grade first with "
                              f"`autograder grade {assignment.alias} SUBMISSIONS --out {results_dir}`")
    return ClassResults(assignment, course_name, tuple(results), tuple(skipped))


def gradebook_rows(data: ClassResults) -> list[GradebookRow]:
    rows = []
    for result in sorted(data.results, key=lambda r: r.submission):
        if result.status == records.GRADER_ERROR:
            rows.append(GradebookRow(result.submission, None, result.max_score, 0.0, None, result.status))
            continue
        late = data.late(result)
        rows.append(GradebookRow(result.submission, result.score, result.max_score, late.penalty, late.final_score, result.status))
    return rows


def _cell(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ (or a tab or CR before them) as formulas: such a student id is quoted."""
    quoted = text.startswith(FORMULA_STARTS)
    text = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)  # no row break inside a cell
    return "'" + text if quoted else text


def gradebook_csv(rows: list[GradebookRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GRADEBOOK_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.student), number(row.score), number(row.max_score), number(row.late_penalty),
                         number(row.final), row.status])
    return buffer.getvalue()


def summary_lines(data: ClassResults, written: list[Path]) -> list[str]:
    """The terminal summary: counts, score statistics, and the students to look at."""
    graded = [r for r in data.results if r.status == records.GRADED]
    finals = [data.late(r).final_score for r in graded]
    max_score = data.assignment.max_score
    lines = [f"{data.assignment.id}: {len(data.results)} submission(s), {len(graded)} graded"]
    if finals:
        lines.append(f"final scores: mean {statistics.fmean(finals):.2f}, median {statistics.median(finals):.2f}, "
                     f"min {points(min(finals))}, max {points(max(finals))} of {points(max_score)}")
    lines += [f"wrote {path}" for path in written]
    lines += device_lines(data.results)
    labels = {"grader-error": "grader errors (the staff's fault: regrade these)", "timeout": "timeouts (look at these)",
              "crashed": "crashed workers", "rejected": "rejected"}
    for kind, entries in data.to_look_at().items():
        if entries:
            lines.append(f"{labels[kind]}: {len(entries)}")
            lines += [f"  {student}: {detail}" for student, detail in entries]
    versions = {r.suite_hash for r in data.results}
    if len(versions) > 1:
        lines.append(f"the results come from {len(versions)} versions of the suite or grader: grade the class again "
                     "into the same folder to bring every result to the current one")
    lines += [f"skipped {entry}" for entry in data.skipped]
    return lines


def _publish(path: Path, text: str) -> None:
    """Written atomically and readable by all: the report is meant to be shared with the staff."""
    write_atomic(path, text)
    os.chmod(path, 0o644)


def main(*, assignment: str, results: str, out: str | None = None, config: str | None = None, stream=sys.stdout) -> int:
    from autograder.commands.report.pages import (
        class_report_html,
        feedback_html,
        feedback_markdown,
    )
    from autograder.pipeline.progress import SafeStream

    stream = SafeStream(stream)
    course = load_course(config)
    target = course.assignment(assignment)
    results_dir = Path(results)
    out_dir = Path(out) if out else results_dir
    data = load_results(results_dir, target, course.name)
    rows = gradebook_rows(data)
    _publish(out_dir / "gradebook.csv", gradebook_csv(rows))
    for result in data.results:
        late = data.late(result)
        folder = out_dir / result.submission
        _publish(folder / "feedback.md", feedback_markdown(result, late, target) + feedback_section(result))
        _publish(folder / "feedback.html", feedback_html(result, late, target))
    _publish(out_dir / "report.html", class_report_html(data, rows).replace("</body>", report_section(data.results) + "</body>", 1))
    _publish(out_dir / "summary.json", json.dumps({
        "assignment": target.id, "submissions": len(data.results),
        "to_look_at": {kind: [list(entry) for entry in entries] for kind, entries in data.to_look_at().items()},
        **class_devices(data.results),
    }, indent=2) + "\n")
    written = [out_dir / "gradebook.csv", out_dir / "report.html",
               Path(f"{out_dir}/<student>/feedback.md and feedback.html ({len(data.results)} students)")]
    for line in summary_lines(data, written):
        print(line, file=stream)
    return 0
