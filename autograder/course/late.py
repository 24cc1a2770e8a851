"""Late policy: when each submission came in, how late that is, and the score after penalty.

grading.yaml gives `due` and `late: {grace_minutes, per_day, max_days}`. Lateness beyond
the grace is counted in started days; each costs `per_day` percent of the score, and a
submission more than `max_days` days late scores 0. Times come from a manifest CSV
(columns student, submitted_at) or, when asked, from the submission's file times.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from autograder.course.model import Assignment, LatePolicy
from autograder.errors import AutograderError

MANIFEST, FILE_TIMES, NOT_GIVEN, MISSING = "manifest", "file-times", "none", "missing"
DAY_MINUTES = 24 * 60


class ManifestError(AutograderError):
    """The manifest CSV cannot be read: the message names the file, the line and the fix."""


@dataclass(frozen=True)
class LateDecision:
    """What the late policy decided for one submission; stored as result.json's `late`."""

    source: str                    # manifest | file-times | none | missing
    submitted_at: str = ""         # ISO 8601 with zone, "" when unknown
    due: str = ""
    minutes_late: float = 0.0      # after the due date, before the grace is taken off
    days_late: int = 0             # started days beyond the grace
    penalty_percent: float = 0.0
    penalty: float = 0.0           # points taken off the score
    final_score: float = 0.0
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, score: float) -> "LateDecision":
        """Read result.json's `late`; an empty or old one means no penalty."""
        names = {f.name for f in fields(cls)}
        if not data or "source" not in data:
            return cls(source=NOT_GIVEN, final_score=score)
        return cls(**{key: value for key, value in data.items() if key in names})


def days_late(minutes_late: float, policy: LatePolicy) -> int:
    """Started days of lateness once the grace is taken off (0 within the grace)."""
    beyond = minutes_late - policy.grace_minutes
    return 0 if beyond <= 0 else math.ceil(beyond / DAY_MINUTES)


def penalty_percent(days: int, policy: LatePolicy) -> float:
    if days <= 0:
        return 0.0
    if policy.max_days is not None and days > policy.max_days:
        return 100.0
    return min(100.0, days * policy.per_day)


def decide(assignment: Assignment, score: float, submitted_at: dt.datetime | None, source: str,
           note: str = "") -> LateDecision:
    """Apply the assignment's late policy to a score earned by a submission made at `submitted_at`."""
    due = assignment.due
    if due is None or submitted_at is None:
        return LateDecision(source=source, submitted_at=_iso(submitted_at), due=_iso(due),
                            final_score=round(score, 4), note=note)
    minutes = max(0.0, (submitted_at - due).total_seconds() / 60)
    days = days_late(minutes, assignment.late)
    percent = penalty_percent(days, assignment.late)
    penalty = round(score * percent / 100, 4)
    return LateDecision(
        source=source, submitted_at=_iso(submitted_at), due=_iso(due), minutes_late=round(minutes, 2),
        days_late=days, penalty_percent=percent, penalty=penalty, final_score=round(score - penalty, 4), note=note,
    )


def _iso(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def parse_time(text: str, zone: dt.tzinfo | None) -> tuple[dt.datetime, str]:
    """An ISO 8601 time; one without a zone is read in `zone` (the due date's) and says so."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is not None:
        return value, ""
    zone = zone or dt.timezone.utc
    return value.replace(tzinfo=zone), f"time {text.strip()!r} has no zone: read in {value.replace(tzinfo=zone).strftime('%z')}"


def read_manifest(path: Path, zone: dt.tzinfo | None) -> dict[str, tuple[dt.datetime, str]]:
    """student -> (submitted_at, note) from a CSV with the columns student, submitted_at.

    A student listed several times keeps the latest time (the submission being graded).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ManifestError(f"cannot read the manifest {path}: {error.strerror}; give a CSV with the columns student,submitted_at") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    if "student" not in columns or "submitted_at" not in columns:
        raise ManifestError(f"{path}:1: the manifest needs the columns student,submitted_at; found {','.join(columns) or 'no header'}")
    times: dict[str, tuple[dt.datetime, str]] = {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        student, stamp = row.get("student", ""), row.get("submitted_at", "")
        if not student and not stamp:
            continue
        if not student:
            raise ManifestError(f"{path}:{line}: the student column is empty; every row names a student")
        try:
            moment, note = parse_time(stamp, zone)
        except ValueError:
            raise ManifestError(f"{path}:{line}: submitted_at {stamp!r} of {student} is not an ISO 8601 time "
                                "such as 2025-03-01T23:59:00+08:00") from None
        if student not in times or moment > times[student][0]:
            times[student] = (moment, note)
    return times


def file_time(path: Path) -> dt.datetime:
    """The newest modification time among a submission's files (the archive's own for an archive)."""
    path = Path(path)
    newest = path.lstat().st_mtime
    if path.is_dir():
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
            for name in files:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return dt.datetime.fromtimestamp(newest, dt.timezone.utc)


@dataclass(frozen=True)
class SubmissionTimes:
    """Where submission times come from for one batch: a manifest, the files, or nowhere."""

    source: str = NOT_GIVEN
    manifest: dict | None = None
    manifest_path: str = ""

    @classmethod
    def from_options(cls, assignment: Assignment, manifest: str | None, use_file_times: bool) -> "SubmissionTimes":
        if manifest and use_file_times:
            raise ManifestError("give either --manifest or --file-times, not both")
        if manifest:
            zone = assignment.due.tzinfo if assignment.due else None
            return cls(MANIFEST, read_manifest(Path(manifest), zone), str(manifest))
        return cls(FILE_TIMES if use_file_times else NOT_GIVEN)

    def decide(self, assignment: Assignment, name: str, path: Path, score: float) -> LateDecision:
        if self.source == MANIFEST:
            if name not in (self.manifest or {}):
                return decide(assignment, score, None, MISSING, f"{name} is not in the manifest {self.manifest_path}; no late penalty applied")
            moment, note = self.manifest[name]
            return decide(assignment, score, moment, MANIFEST, note)
        if self.source == FILE_TIMES:
            try:
                return decide(assignment, score, file_time(path), FILE_TIMES)
            except OSError as error:
                return decide(assignment, score, None, MISSING, f"cannot read the time of {path}: {error.strerror}")
        note = "no submission times given (grade with --manifest or --file-times)" if assignment.due else ""
        return decide(assignment, score, None, NOT_GIVEN, note)
