"""Item 9: gradebook cells cannot become formulas; a refused submission name does not stop the batch."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.commands.grade import expand_submissions
from autograder.commands.report.build import GradebookRow, gradebook_csv
from autograder.course.reader import load_course

ROOT = Path(__file__).resolve().parents[2]
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"


@pytest.mark.parametrize("student", ["-2+3", "=HYPERLINK(\"x\")", "+1", "@SUM(A1)", "\t=1+1", "\r-1", "-cmd|' /C calc'!A0"])
def test_formula_like_student_ids_are_quoted(student):
    text = gradebook_csv([GradebookRow(student, 10.0, 20.0, 0.0, 10.0, "graded")])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 2 and rows[1][0].startswith("'") and rows[1][1:] == ["10", "20", "0", "10", "graded"], rows


def test_plain_student_ids_are_unchanged():
    text = gradebook_csv([GradebookRow("alice_01", 10.0, 20.0, 0.0, 10.0, "graded")])
    assert text.splitlines()[1].startswith("alice_01,")


def test_an_unusable_name_is_refused_and_the_rest_are_kept(tmp_path):
    assignment = load_course(TOY_COURSE / "grading.yaml").assignment("a99")
    good = TOY_COURSE / "subs" / "good"
    refused: list[str] = []
    named = expand_submissions([f"ok={good}", f"../escape={good}", f".hidden={good}", f"tab\tname={good}"],
                               assignment, tmp_path / "out", refused)
    assert [name for name, _ in named] == ["ok"]
    assert len(refused) == 3 and all("cannot name a submission" in reason for reason in refused)


def test_a_batch_with_a_refused_name_grades_the_others(tmp_path):
    out = tmp_path / "out"
    good = TOY_COURSE / "subs" / "good"
    completed = subprocess.run(
        [sys.executable, "-m", "autograder", "--config", str(TOY_COURSE / "grading.yaml"), "grade", "a99",
         f"honest={good}", f"bad/name={good}", "--out", str(out), "-j", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, AUTOGRADER_WARM="0", PYTHONDONTWRITEBYTECODE="1"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "refused: " in completed.stdout and "cannot name a submission" in completed.stdout
    assert json.loads((out / "honest" / "result.json").read_text())["score"] == 20
