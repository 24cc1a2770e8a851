"""Batch progress: a one-line bar on a terminal (done/total, rate, ETA, failures so far),
one plain line per submission otherwise (logs, CI, pipes)."""
from __future__ import annotations

import os
import time
from typing import Callable, TextIO

from autograder.course import records
from autograder.pipeline.feedback import points

BAR_WIDTH = 24


class SafeStream:
    """Output that a closed reader (`grade ... | head`) cannot turn into a stopped batch."""

    def __init__(self, stream: TextIO):
        self.stream, self.broken = stream, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._silence()

    def isatty(self) -> bool:
        return not self.broken and is_terminal(self.stream)

    def _silence(self) -> None:
        self.broken = True
        try:  # later writes by the interpreter (its exit flush) go nowhere instead of raising
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def is_terminal(stream: TextIO) -> bool:
    """A bar only where someone watches it: a TTY whose TERM can move the cursor."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def duration_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def is_failure(result: records.SubmissionResult) -> bool:
    """What the bar counts as a failure: not graded, or a test that timed out or crashed."""
    return result.status != records.GRADED or any(t.status in (records.TIMEOUT, records.CRASHED) for t in result.tests)


def result_line(result: records.SubmissionResult, reused: bool = False) -> str:
    reason = result.reason.splitlines()[0][:120] if result.reason else ""
    line = f"{result.submission}: {points(result.score)}/{points(result.max_score)} {result.status}"
    late = result.late or {}
    if late.get("days_late"):
        line += f", {late['days_late']} day(s) late: final {late.get('final_score', 0):g}"
    if reused:
        line += " (already graded, kept)"
    return line + (f" ({reason})" if reason else "")


class Progress:
    """Reports each finished submission; `clock` is injectable so tests need no sleeping."""

    def __init__(self, total: int, stream: TextIO, *, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.stream, self.clock = total, stream, clock
        self.terminal = is_terminal(stream) if terminal is None else terminal
        self.started = clock()
        self.done = self.graded_now = self.reused = self.failures = 0

    def rate(self) -> float:
        """Submissions graded per second in this run (results kept from a past run are free)."""
        elapsed = self.clock() - self.started
        return self.graded_now / elapsed if elapsed > 0 and self.graded_now else 0.0

    def eta(self) -> str:
        rate = self.rate()
        return duration_text((self.total - self.done) / rate) if rate else "?"

    def bar(self) -> str:
        filled = int(BAR_WIDTH * self.done / self.total) if self.total else BAR_WIDTH
        return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total}"
                f"  {self.rate():.2f}/s  ETA {self.eta()}  failures {self.failures}")

    def start(self, note: str = "") -> None:
        if note:
            print(note, file=self.stream, flush=True)
        if self.terminal and self.total:
            self.stream.write("\r" + self.bar())
            self.stream.flush()

    def finished(self, result: records.SubmissionResult, *, reused: bool = False) -> None:
        self.done += 1
        self.reused += reused
        self.graded_now += not reused
        self.failures += is_failure(result)
        line = result_line(result, reused)
        if self.terminal:
            # the line goes above the bar, which is redrawn at the bottom
            self.stream.write("\r\x1b[2K" + line + "\n" + self.bar())
        else:
            self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.terminal and self.total:
            self.stream.write("\n")
        elapsed = self.clock() - self.started
        kept = f", {self.reused} kept from a previous run" if self.reused else ""
        print(f"graded {self.graded_now} in {duration_text(elapsed)}{kept}; failures {self.failures}",
              file=self.stream, flush=True)
