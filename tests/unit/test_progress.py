"""Batch progress: a bar with done/total, rate, ETA and failures on a terminal; plain lines otherwise."""
import io

from autograder.course import records
from autograder.pipeline.progress import Progress, duration_text


def result(name: str, status: str = "graded", score: float = 20.0, test_status: str = "passed") -> records.SubmissionResult:
    test = records.TestResult("t.py::test_a", "test_a", "A", test_status, score, 20.0, "public", "")
    return records.SubmissionResult("a99_toy", name, status, score, 20.0, [test])


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_terminal_bar_shows_done_rate_eta_and_failures():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(4, stream, terminal=True, clock=clock)
    progress.start()
    clock.now += 10
    progress.finished(result("ana"))
    clock.now += 10
    progress.finished(result("ben", test_status="timeout", score=0))
    text = stream.getvalue()
    bar = text.splitlines()[-1]
    assert bar.startswith("[############............] 2/4")
    assert "0.10/s" in bar and "ETA 0:20" in bar and "failures 1" in bar
    assert "\x1b[2Kben: 0/20 graded\n" in text  # each result is printed above the bar
    assert "[1/4]" not in text


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(2, stream, terminal=False, clock=FakeClock())
    progress.start("grading 2")
    progress.finished(result("ana"), reused=True)
    progress.finished(result("ben", status="rejected", score=0))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[:3] == ["grading 2", "[1/2] ana: 20/20 graded (already graded, kept)", "[2/2] ben: 0/20 rejected"]
    assert lines[3] == "graded 1 in 0:00, 1 kept from a previous run; failures 1"
    assert "\r" not in stream.getvalue()


def test_rate_ignores_results_kept_from_a_previous_run():
    clock = FakeClock()
    progress = Progress(10, io.StringIO(), terminal=True, clock=clock)
    for name in "abcde":
        progress.finished(result(name), reused=True)
    assert progress.eta() == "?"
    clock.now += 30
    progress.finished(result("f"))
    assert progress.rate() == 1 / 30 and progress.eta() == "2:00"


def test_a_pipe_is_not_a_terminal():
    assert Progress(1, io.StringIO()).terminal is False


def test_durations_read_like_clocks():
    assert [duration_text(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]
