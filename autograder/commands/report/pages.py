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
from autograder.pipeline.feedback import first_sentence, group_body, group_heading, md_line, points, task_line, tasks_of

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
    line = f"score {points(result.score)} / {points(result.max_score)}"
    if late.days_late:
        line += (f"; submitted {late.days_late} day(s) late ({late.submitted_at}, due {late.due}): "
                 f"-{late.penalty_percent:g}% = -{points(late.penalty)}")
    return line + f"; final {points(late.final_score)} / {points(result.max_score)}"


def feedback_markdown(result: records.SubmissionResult, late: LateDecision, assignment: Assignment) -> str:
    lines = [f"# {assignment.id}: {assignment.title}", "", f"Submission: `{_md_cell(result.submission).replace('`', '')}`",
             "", f"**{score_line(result, late)}** (status: {result.status})", ""]
    if result.reason:
        lines += ["Notes:", "", _fence(result.reason), ""]
    tasks = tasks_of(result, [g.name for g in assignment.tests])
    if tasks:
        lines += ["## Summary by task", ""] + [f"- {md_line(task_line(task))}" for task in tasks] + [""]
    failing = [(task, group) for task in tasks for group in task.failed_groups]
    if failing:
        lines += ["## What went wrong", ""]
        for task, group in failing:
            lines += [f"### {md_line(group_heading(group))}", ""]
            if task.not_started:
                lines += ["Not started: every test of this task raised NotImplementedError.", ""]
                continue
            body = group_body(group)
            for line in body:
                if line.startswith(("Why: ", "Also: ")):
                    head, _, rest = line.partition(": ")
                    lines += [f"**{head}:** {md_line(rest)}", ""]
            rest = [line for line in body if not line.startswith(("Why: ", "Also: "))]
            if rest:
                lines += [md_line(rest[0]), "", _fence("\n".join(rest[1:]) or "(no message)"), ""]
    if tasks:
        lines += ["## Groups", "", "| group | tests passed | points |", "|---|---|---|"]
        for task in tasks:
            for group in task.groups:
                passed = sum(t.status == records.PASSED for t in group.tests)
                lines.append(f"| {_md_cell(group.name)} | {passed} / {len(group.tests)} | "
                             f"{points(group.score)} / {points(group.max_score)} |")
        lines.append("")
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
    tasks = tasks_of(result, [g.name for g in assignment.tests])
    if tasks:
        parts.append("<h2>Summary by task</h2><ul>" + "".join(f"<li>{escape(task_line(task))}</li>" for task in tasks) + "</ul>")
    failing = [(task, group) for task in tasks for group in task.failed_groups]
    if failing:
        parts.append("<h2>What went wrong</h2>")
        for task, group in failing:
            parts.append(f"<h3>{escape(group_heading(group))}</h3>")
            if task.not_started:
                parts.append("<p>Not started: every test of this task raised NotImplementedError.</p>")
                continue
            body = group_body(group)
            parts += [f"<p><strong>{escape(line.partition(': ')[0])}:</strong> {escape(line.partition(': ')[2])}</p>"
                      for line in body if line.startswith(("Why: ", "Also: "))]
            rest = [line for line in body if not line.startswith(("Why: ", "Also: "))]
            if rest:
                parts.append(f"<p>{escape(rest[0])}</p><pre>{escape(chr(10).join(rest[1:]) or '(no message)')}</pre>")
    rows = "".join(
        f"<tr><td>{escape(g.name)}</td><td class=\"n\">{sum(t.status == records.PASSED for t in g.tests)} / {len(g.tests)}</td>"
        f"<td class=\"n\">{points(g.score)} / {points(g.max_score)}</td></tr>" for task in tasks for g in task.groups)
    parts.append(f"<h2>Groups</h2><table><tr><th>group</th><th>tests passed</th><th>points</th></tr>{rows}</table>")
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


def _students_list(students: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"<a href=\"{_href(name)}\">{html.escape(name)}</a>" for name in students[:limit])
    return shown + (f" and {len(students) - limit} more" if len(students) > limit else "")


def _reason_key(reason: str) -> str:
    """Reasons that differ only in their numbers (0.707 * lr, 3.16 * lr) are one misconception."""
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", reason)


def _class_view(data) -> str:
    """Pass rate per task and per group, and each group's most frequent failure reasons (the
    diagnoses, else the clearest failing message), with the students behind each."""
    order = [g.name for g in data.assignment.tests]
    graded = [r for r in data.results if r.status == records.GRADED]
    if not graded:
        return "<p>No graded submission yet.</p>"
    tasks: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    for result in sorted(graded, key=lambda r: r.submission):
        for task in tasks_of(result, order):
            entry = tasks.setdefault(task.title, {"scores": [], "max": task.max_score, "full": 0, "not_started": 0})
            entry["scores"].append(task.score)
            entry["full"] += not task.failed_groups
            entry["not_started"] += bool(task.failed_groups) and task.not_started
            for group in task.groups:
                view = groups.setdefault(group.name, {"visibility": group.visibility, "passed": 0, "total": 0, "reasons": {}})
                view["total"] += 1
                if not group.failing:
                    view["passed"] += 1
                    continue
                reasons = group.reasons() or [first_sentence(group.clearest().feedback) or group.clearest().status]
                seen = set()
                for reason in reasons[:2]:  # the same misconception with other numbers counts once
                    key = _reason_key(reason)
                    if key in seen:
                        continue
                    seen.add(key)
                    entry = view["reasons"].setdefault(key, [reason, []])
                    entry[1].append(result.submission)
    task_rows = "".join(
        f"<tr><td>{html.escape(title)}</td><td class=\"n\">{points(statistics.fmean(e['scores']))} / {points(e['max'])}</td>"
        f"<td class=\"n\">{100 * e['full'] / len(e['scores']):.0f}%</td><td class=\"n\">{e['not_started'] or ''}</td></tr>"
        for title, e in tasks.items())
    group_rows = []
    for name in sorted(groups, key=lambda n: order.index(n) if n in order else len(order)):
        view = groups[name]
        reasons = sorted(view["reasons"].values(), key=lambda item: (-len(item[1]), item[0]))[:5]
        listed = "".join(f"<li><strong>{len(students)}</strong> &times; {html.escape(reason)}<br><small>"
                         f"{_students_list(students)}</small></li>" for reason, students in reasons)
        group_rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(view['visibility'])}</td>"
                          f"<td class=\"n\">{100 * view['passed'] / view['total']:.0f}%</td>"
                          f"<td>{'<ul>' + listed + '</ul>' if listed else ''}</td></tr>")
    return ("<h2>Pass rate per task</h2><table><tr><th>task</th><th>mean points</th><th>full marks</th>"
            f"<th>not started</th></tr>{task_rows}</table>"
            "<h2>Groups and their most frequent failure reasons</h2><p>A group passes when every test in it "
            "passes. Reasons are the diagnoses of the failing tests (else the clearest failing message), "
            "counted once per student.</p><table><tr><th>group</th><th>visibility</th><th>passing</th>"
            f"<th>most frequent failure reasons</th></tr>{''.join(group_rows)}</table>")


def _students_table(data, rows) -> str:
    durations = {r.submission: r.duration_seconds for r in data.results}
    body = "".join(
        f"<tr><td><a href=\"{_href(row.student)}\">{html.escape(row.student)}</a></td>"
        f"<td class=\"n\">{points(row.score)}</td>"
        f"<td class=\"n\">{points(row.late_penalty)}</td><td class=\"n\">{points(row.final)}</td>"
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
             f"<p>Maximum {points(assignment.max_score)} points. Report written "
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
    parts += [_class_view(data), "<h2>Students</h2>", _students_table(data, rows)]
    return _page(f"{assignment.id} class report", "\n".join(parts))
