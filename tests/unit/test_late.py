"""The late policy: grace, started days, per-day percent, the cap, and where times come from."""
import dataclasses
import datetime as dt
import os

import pytest

from autograder.course.model import LatePolicy
from autograder.course.reader import load_course
from autograder.course.late import (FILE_TIMES, MANIFEST, MISSING, NOT_GIVEN, LateDecision, ManifestError, SubmissionTimes, decide, read_manifest)

from ..conftest import TOY_COURSE

# The toy course: due 2025-03-01T23:59:00+08:00, grace 10 minutes, 10% per day, at most 3 days.
TOY = load_course(TOY_COURSE / "grading.yaml").assignment("a99")
ZONE = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, tzinfo=ZONE)


@pytest.mark.parametrize("submitted, days, final", [
    (at(1, 12), 0, 20.0),               # early
    (at(1, 23, 59), 0, 20.0),           # on the dot
    (at(2, 0, 9), 0, 20.0),             # 10 minutes late: the grace's last minute
    (at(2, 0, 10), 1, 18.0),            # 11 minutes late: one started day, -10%
    (at(3, 0, 9), 1, 18.0),             # 24 h 10 min late is still one day once the grace is taken off
    (at(3, 0, 30), 2, 16.0),
    (at(4, 23, 0), 3, 14.0),            # the last day that still earns points
    (at(5, 1, 0), 4, 0.0),              # past max_days: nothing
])
def test_penalty_counts_started_days_after_the_grace(submitted, days, final):
    decision = decide(TOY, 20.0, submitted, MANIFEST)
    assert (decision.days_late, decision.final_score) == (days, final)
    assert decision.penalty == pytest.approx(20.0 - final)
    assert decision.due == "2025-03-01T23:59:00+08:00"


def test_penalty_is_a_percent_of_the_earned_score_and_never_below_zero():
    assert decide(TOY, 7.5, at(3, 12), MANIFEST).final_score == 6.0   # 2 days: -20% of 7.5
    harsh = dataclasses.replace(TOY, late=LatePolicy(per_day=60, max_days=None))
    assert decide(harsh, 10.0, at(4, 12), MANIFEST).final_score == 0.0  # 3 days * 60% caps at 100%
    assert decide(harsh, 10.0, at(4, 12), MANIFEST).penalty_percent == 100.0


def test_no_due_date_or_no_time_means_no_penalty():
    undated = dataclasses.replace(TOY, due=None)
    assert decide(undated, 12.0, at(9, 9), MANIFEST).final_score == 12.0
    unknown = decide(TOY, 12.0, None, NOT_GIVEN, "no times")
    assert (unknown.final_score, unknown.days_late, unknown.note) == (12.0, 0, "no times")


def test_manifest_keeps_the_latest_time_and_reads_zoneless_times_in_the_due_zone(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\ufeffstudent,submitted_at,comment\n"
                        "ana,2025-03-01T10:00:00Z,first\n"
                        "ana,2025-03-03T10:00:00+08:00,resubmitted\n"
                        "ben,2025-03-02 00:05:00,\n"
                        ",,\n")
    times = read_manifest(manifest, ZONE)
    assert times["ana"][0] == at(3, 10)
    assert times["ben"][0] == at(2, 0, 5) and "no zone" in times["ben"][1]
    assert set(times) == {"ana", "ben"}


@pytest.mark.parametrize("text, message", [
    ("name,time\nana,2025-03-01T10:00:00Z\n", "needs the columns student,submitted_at; found name,time"),
    ("student,submitted_at\nana,yesterday\n", "manifest.csv:2: submitted_at 'yesterday' of ana is not an ISO 8601 time"),
    ("student,submitted_at\n,2025-03-01T10:00:00Z\n", "manifest.csv:2: the student column is empty"),
])
def test_bad_manifests_say_file_line_and_fix(tmp_path, text, message):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        read_manifest(manifest, ZONE)


def test_missing_manifest_names_the_file(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the manifest .*absent.csv"):
        SubmissionTimes.from_options(TOY, str(tmp_path / "absent.csv"), False)
    with pytest.raises(ManifestError, match="either --manifest or --file-times"):
        SubmissionTimes.from_options(TOY, str(tmp_path / "absent.csv"), True)


def test_students_missing_from_the_manifest_are_flagged_not_penalised(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("student,submitted_at\nana,2025-03-03T10:00:00+08:00\n")
    times = SubmissionTimes.from_options(TOY, str(manifest), False)
    assert times.decide(TOY, "ana", tmp_path, 20.0).final_score == 16.0
    missing = times.decide(TOY, "zed", tmp_path, 20.0)
    assert missing.source == MISSING and missing.final_score == 20.0 and "zed is not in the manifest" in missing.note


def test_file_times_take_the_newest_file_of_a_folder(tmp_path):
    folder = tmp_path / "ana"
    (folder / "sub").mkdir(parents=True)
    for name, moment in (("toy.py", at(1, 20)), ("sub/helper.py", at(3, 12))):
        (folder / name).write_text("x = 1\n")
        os.utime(folder / name, (moment.timestamp(), moment.timestamp()))
    os.utime(folder / "sub", (at(1, 1).timestamp(),) * 2)
    os.utime(folder, (at(1, 1).timestamp(),) * 2)
    decision = SubmissionTimes.from_options(TOY, None, True).decide(TOY, "ana", folder, 20.0)
    assert decision.source == FILE_TIMES and decision.days_late == 2 and decision.final_score == 16.0


def test_result_json_round_trip_and_old_results_without_late():
    decision = decide(TOY, 20.0, at(3, 12), MANIFEST)
    assert LateDecision.from_dict(decision.to_dict(), 20.0) == decision
    assert LateDecision.from_dict({}, 13.0) == LateDecision(source=NOT_GIVEN, final_score=13.0)
