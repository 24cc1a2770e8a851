"""`autograder report` end to end: gradebook.csv, per-student feedback, the class report.html
(rendered in headless Chromium), and the terminal summary of what the staff must look at."""
import base64
import csv
import io
import json
import re
import shutil
import subprocess

import pytest

from ..conftest import TOY_COURSE, run_cli

CONFIG = str(TOY_COURSE / "grading.yaml")
SUBS = TOY_COURSE / "subs"
GOOD = (SUBS / "good" / "toy.py").read_text()
INJECTION = "<script>alert('pwned')</script>"
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A small class graded (with a late student and hostile text) and reported once."""
    root = tmp_path_factory.mktemp("report")
    students = root / "class"
    for name in ("good", "bad", "hang"):
        shutil.copytree(SUBS / name, students / name)
    shutil.copytree(SUBS / "good", students / "late_lou")
    (students / "syntax").mkdir()
    (students / "syntax" / "toy.py").write_text("def double(x)\n    return x\n")
    (students / "mallory").mkdir()
    (students / "mallory" / "toy.py").write_text(
        f"print({INJECTION!r})\n" + GOOD.replace("return 1 + f(x)", f"raise ValueError({INJECTION!r})"))
    manifest = root / "manifest.csv"
    manifest.write_text("student,submitted_at\nlate_lou,2025-03-03T12:00:00+08:00\ngood,2025-03-01T12:00:00+08:00\n")
    out = root / "results"
    completed = run_cli("--config", CONFIG, "grade", "a99", str(students), "--out", str(out), "--manifest", str(manifest))
    assert completed.returncode == 0, completed.stderr + completed.stdout
    # A grader fault, as the grader records it: the report must flag it, never turn it into a zero.
    faulty = json.loads((out / "good" / "result.json").read_text())
    faulty.update(submission="unlucky", status="grader-error", score=0.0, suite_hash="0" * 64,
                  reason="4 test(s) hit a grader fault; this submission must be regraded")
    (out / "unlucky").mkdir()
    (out / "unlucky" / "result.json").write_text(json.dumps(faulty))
    report = run_cli("--config", CONFIG, "report", "a99", str(out))
    assert report.returncode == 0, report.stderr + report.stdout
    return out, report


def test_gradebook_is_ready_for_an_lms_import(reported):
    out, _ = reported
    text = (out / "gradebook.csv").read_text()
    assert text.splitlines()[0] == "student,score,max,late_penalty,final,status"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["student"] for row in rows] == sorted(["bad", "good", "hang", "late_lou", "mallory", "syntax", "unlucky"])
    by_student = {row.pop("student"): row for row in rows}
    assert by_student["good"] == {"score": "20", "max": "20", "late_penalty": "0", "final": "20", "status": "graded"}
    assert by_student["late_lou"] == {"score": "20", "max": "20", "late_penalty": "4", "final": "16", "status": "graded"}
    assert by_student["syntax"] == {"score": "0", "max": "20", "late_penalty": "0", "final": "0", "status": "rejected"}
    assert by_student["hang"]["final"] == "4" and by_student["mallory"]["final"] == "16"
    assert by_student["unlucky"] == {"score": "", "max": "20", "late_penalty": "0", "final": "", "status": "grader-error"}


def test_terminal_summary_lists_grader_errors_and_timeouts(reported):
    _, report = reported
    text = report.stdout
    assert "a99_toy: 7 submission(s), 5 graded" in text
    assert "grader errors (the staff's fault: regrade these): 1\n  unlucky: 4 test(s) hit a grader fault" in text
    assert "timeouts (look at these): 1\n  hang: test_double_matches_reference, test_double_matches_twice" in text
    assert "rejected: 1\n  syntax: toy.py, line 1: SyntaxError" in text
    assert "gradebook.csv" in text and "report.html" in text
    assert "the results come from 2 versions of the suite or grader" in text  # "unlucky" was graded by another


def test_feedback_lists_tasks_groups_points_and_the_messages_the_policy_allows(reported):
    out, _ = reported
    markdown = (out / "bad" / "feedback.md").read_text()
    assert "**score 0 / 20; final 0 / 20** (status: graded)" in markdown
    summary = markdown.split("## Summary by task")[1].split("##")[0]  # first: one line per task
    assert "- Task 2: counter: 0 / 6, groups failed: Task 2: counter. Why: " in summary
    assert "| Task 2: counter | 0 / 1 | 0 / 6 |" in markdown  # one row per group, not per parametrization
    assert "ValueError: not yet" in markdown
    assert "Failing test case" in markdown and "values=[" in markdown  # public: the minimal example
    hidden = markdown.split("### Task 1: double (hidden)")[1].split("###")[0]
    assert "double of a matrix" in hidden and "rows=" not in hidden  # hidden: the message, never the inputs
    late = (out / "late_lou" / "feedback.md").read_text()
    assert "submitted 2 day(s) late" in late and "-20% = -4; final 16 / 20" in late
    page = (out / "bad" / "feedback.html").read_text()
    assert "<td>Task 2: counter</td>" in page and "ValueError: not yet" in page


def test_student_text_cannot_inject_markup(reported):
    out, _ = reported
    page = (out / "mallory" / "feedback.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page  # shown, as text, in the error and output
    assert "<script" not in (out / "report.html").read_text().lower()
    fence, outside = None, []
    for line in (out / "mallory" / "feedback.md").read_text().splitlines():
        ticks = re.match(r"^(`{3,})", line)
        if ticks and (fence is None or ticks.group(1) == fence):
            fence = ticks.group(1) if fence is None else None
        elif fence is None:
            outside.append(line)
    assert fence is None and not any("<script" in line for line in outside)  # only ever inside code blocks


def _pngs_in(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _pixels(png: bytes):
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")  # (H, W, channels) floats in [0, 1]


def test_class_report_is_one_offline_file_with_three_plots(reported):
    out, _ = reported
    page = (out / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    plots = _pngs_in(page)
    assert len(plots) == 3
    for png in plots:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = _pixels(png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400 and pixels.std() > 0.05
    for title in ("Score histogram", "Pass rate per group", "Time per submission"):
        assert f"<h2>{title}</h2>" in page
    assert 'href="late_lou/feedback.html"' in page


def test_class_report_shows_pass_rates_per_task_and_the_failure_reasons_per_group(reported):
    out, _ = reported
    page = (out / "report.html").read_text()
    assert "<h2>Pass rate per task</h2>" in page and "<h2>Groups and their most frequent failure reasons</h2>" in page
    reasons = page.split("<h2>Groups and their most frequent failure reasons</h2>")[1].split("<h2>")[0]
    # the students behind a reason are named (and linked) beside its count
    assert re.search(r"<li><strong>\d+</strong> &times; [^<]+<br><small><a href=\"bad/feedback.html\">bad</a>", reasons)
    assert "test_counter_adds" not in reasons  # groups, not parametrized test ids


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (scripts/setup.sh installs it with apt)")
def test_class_report_renders_in_headless_chromium_with_its_plots(reported, tmp_path):
    out, _ = reported
    shot = tmp_path / "report.png"
    completed = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2600", f"--screenshot={shot}",
         (out / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert shot.exists(), completed.stderr[-2000:]
    pixels = _pixels(shot.read_bytes())[:, :, :3]
    assert pixels.shape[:2] == (2600, 1200)
    non_white = (pixels < 0.9).any(axis=2).mean()
    assert non_white > 0.02, "the screenshot is blank"

    def share_of(colour: str) -> float:
        target = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        return (abs(pixels - target).max(axis=2) < 0.06).mean()

    # The plots are drawn, not broken-image icons: their bar colours fill part of the page.
    assert share_of("#4c78a8") > 0.002  # histogram bars and public pass rates
    assert share_of("#f58518") > 0.002  # hidden pass rates
    assert share_of("#72b7b2") > 0.002  # time per submission
    # The class view renders too: Chromium's DOM holds the per-task and per-group tables.
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", (out / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=180).stdout
    assert "Pass rate per task" in dom and "most frequent failure reasons" in dom and "&times;" not in dom
    assert re.search(r"<strong>\d+</strong> × ", dom)  # a reason with its count, as the browser parsed it


def test_report_without_results_is_a_one_line_error(tmp_path):
    completed = run_cli("--config", CONFIG, "report", "a99", str(tmp_path / "nowhere"))
    assert completed.returncode == 2
    assert completed.stderr.startswith("autograder: ") and "no such results folder" in completed.stderr
    (tmp_path / "empty").mkdir()
    completed = run_cli("--config", CONFIG, "report", "a99", str(tmp_path / "empty"))
    assert completed.returncode == 2 and "no result.json of a99_toy found; grade first" in completed.stderr
