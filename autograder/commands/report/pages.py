"""The report's pages: per-student feedback.md and feedback.html, and the class report.html.

Everything a submission produced (messages, output, its name) is student-controlled text:
it is escaped in HTML and fenced in Markdown. Test feedback is already filtered by the
feedback policy when result.json is written, so the pages show what it holds.
"""
from __future__ import annotations

import datetime as dt
import html
import re
import statistics
import urllib.parse

from autograder.course import records
from autograder.course.late import LateDecision
from autograder.course.model import Assignment

OUTPUT_LIMIT = 4000
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1000px;
color:#222;padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.n{text-align:right}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.passed{color:#1a7f37}.failed,.error,.rejected{color:#b42318}.timeout,.crashed{color:#b54708}
.grader-error{color:#fff;background:#b42318;padding:0 .3rem}.deferred{color:#666}
.big{font-size:1.3rem;font-weight:600}img{max-width:100%;border:1px solid #eee}
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _fence(text: str) -> str:
    """A Markdown code block that the text inside cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text.rstrip()}\n{ticks}"


def _href(student: str) -> str:
    return html.escape(urllib.parse.quote(student), quote=True) + "/feedback.html"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _truncate(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + f"\n... ({len(text) - OUTPUT_LIMIT} more characters)"


def score_line(result: records.SubmissionResult, late: LateDecision) -> str:
    if result.status == records.GRADER_ERROR:
        return "not graded yet: the grader failed on this submission (staff will regrade it)"
    line = f"score {result.score:g} / {result.max_score:g}"
    if late.days_late:
        line += (f"; submitted {late.days_late} day(s) late ({late.submitted_at}, due {late.due}): "
                 f"-{late.penalty_percent:g}% = -{late.penalty:g}")
    return line + f"; final {late.final_score:g} / {result.max_score:g}"


def _problems(result: records.SubmissionResult) -> list[records.TestResult]:
    return [t for t in result.tests if t.status != records.PASSED and t.feedback]


def feedback_markdown(result: records.SubmissionResult, late: LateDecision, assignment: Assignment) -> str:
    lines = [f"# {assignment.id}: {assignment.title}", "", f"Submission: `{_md_cell(result.submission).replace('`', '')}`",
             "", f"**{score_line(result, late)}** (status: {result.status})", ""]
    if result.reason:
        lines += ["Notes:", "", _fence(result.reason), ""]
    lines += ["| test | group | status | points |", "|---|---|---|---|"]
    for test in result.tests:
        lines.append(f"| {_md_cell(test.name)} | {_md_cell(test.group)} | {test.status} | {test.score:g} / {test.max_score:g} |")
    problems = _problems(result)
    if problems:
        lines += ["", "## What went wrong", ""]
        for test in problems:
            lines += [f"### {_md_cell(test.name)} ({test.status})", "", _fence(test.feedback), ""]
    if result.output.strip():
        lines += ([""] if lines[-1] else []) + ["## Output of your code", "", _fence(_truncate(result.output)), ""]
    return "\n".join(lines).rstrip() + "\n"


def feedback_html(result: records.SubmissionResult, late: LateDecision, assignment: Assignment) -> str:
    escape = html.escape
    parts = [f"<h1>{escape(assignment.id)}: {escape(assignment.title)}</h1>",
             f"<p>Submission: <code>{escape(result.submission)}</code></p>",
             f"<p class=\"big\">{escape(score_line(result, late))}</p>",
             f"<p>Status: <span class=\"{escape(result.status)}\">{escape(result.status)}</span></p>"]
    if result.reason:
        parts.append(f"<h2>Notes</h2><pre>{escape(result.reason)}</pre>")
    rows = "".join(
        f"<tr><td>{escape(t.name)}</td><td>{escape(t.group)}</td><td class=\"{escape(t.status)}\">{escape(t.status)}</td>"
        f"<td class=\"n\">{t.score:g} / {t.max_score:g}</td></tr>" for t in result.tests)
    parts.append(f"<h2>Tests</h2><table><tr><th>test</th><th>group</th><th>status</th><th>points</th></tr>{rows}</table>")
    problems = _problems(result)
    if problems:
        parts.append("<h2>What went wrong</h2>")
        parts += [f"<h3>{escape(t.name)} <span class=\"{escape(t.status)}\">({escape(t.status)})</span></h3>"
                  f"<pre>{escape(t.feedback)}</pre>" for t in problems]
    if result.output.strip():
        parts.append(f"<h2>Output of your code</h2><pre>{escape(_truncate(result.output))}</pre>")
    return _page(f"{assignment.id} feedback: {result.submission}", "\n".join(parts))


def _stats_table(data, rows) -> str:
    graded = [row for row in rows if row.status == records.GRADED]
    finals = [row.final for row in graded]
    cells = [("submissions", len(rows)), ("graded", len(graded)),
             ("rejected", sum(row.status == records.REJECTED for row in rows)),
             ("grader errors", sum(row.status == records.GRADER_ERROR for row in rows)),
             ("late", sum(1 for r in data.results if data.late(r).days_late))]
    if finals:
        cells += [("mean final", f"{statistics.fmean(finals):.2f}"), ("median final", f"{statistics.median(finals):.2f}"),
                  ("full marks", sum(final >= data.assignment.max_score for final in finals))]
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td class=\"n\">{v}</td></tr>" for k, v in cells) + "</table>"


def _tests_table(data) -> str:
    counts: dict[str, dict[str, int]] = {}
    for result in data.results:
        if result.status != records.GRADED:
            continue
        for test in result.tests:
            counts.setdefault(test.id, {}).setdefault(test.status, 0)
            counts[test.id][test.status] += 1
    header = "".join(f"<th>{status}</th>" for status in records.TEST_STATUSES)
    body = "".join(
        f"<tr><td>{html.escape(test_id)}</td>" + "".join(f"<td class=\"n\">{by_status.get(s, 0) or ''}</td>" for s in records.TEST_STATUSES)
        + "</tr>" for test_id, by_status in counts.items())
    return f"<table><tr><th>test</th>{header}</tr>{body}</table>"


def _students_table(data, rows) -> str:
    durations = {r.submission: r.duration_seconds for r in data.results}
    body = "".join(
        f"<tr><td><a href=\"{_href(row.student)}\">{html.escape(row.student)}</a></td>"
        f"<td class=\"n\">{'' if row.score is None else f'{row.score:g}'}</td>"
        f"<td class=\"n\">{row.late_penalty:g}</td><td class=\"n\">{'' if row.final is None else f'{row.final:g}'}</td>"
        f"<td class=\"{html.escape(row.status)}\">{html.escape(row.status)}</td><td class=\"n\">{durations.get(row.student, 0):.1f}</td></tr>"
        for row in rows)
    return ("<table><tr><th>student</th><th>score</th><th>late penalty</th><th>final</th><th>status</th><th>time (s)</th></tr>"
            f"{body}</table>")


def class_report_html(data, rows) -> str:
    """The class report: statistics, plots, students to look at, per-test and per-student tables."""
    from autograder.commands.report.plots import class_plots

    assignment = data.assignment
    finals = {r.submission: data.late(r).final_score for r in data.results}
    plots, note = class_plots(list(data.results), finals, assignment.max_score)
    parts = [f"<h1>{html.escape(data.course_name)}: {html.escape(assignment.id)} ({html.escape(assignment.title)})</h1>",
             f"<p>Maximum {assignment.max_score:g} points. Report written "
             f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}.</p>", _stats_table(data, rows)]
    trouble = data.to_look_at()
    if any(trouble.values()):
        parts.append("<h2>To look at</h2><ul>")
        for kind, entries in trouble.items():
            parts += [f"<li><span class=\"{kind}\">{kind}</span> <a href=\"{_href(student)}\">"
                      f"{html.escape(student)}</a>: {html.escape(detail)}</li>" for student, detail in entries]
        parts.append("</ul>")
    if note:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    for plot in plots:
        parts.append(f"<h2>{html.escape(plot.title)}</h2><img src=\"{plot.data_uri}\" alt=\"{html.escape(plot.alt, quote=True)}\">")
    parts += ["<h2>Tests (graded submissions)</h2>", _tests_table(data), "<h2>Students</h2>", _students_table(data, rows)]
    return _page(f"{assignment.id} class report", "\n".join(parts))
