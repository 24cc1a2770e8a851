"""Item 7: hidden inputs never reach feedback through student-controlled text.

A submission that records the inputs it sees and puts them in an exception message, in the name of
an exception class it defines, or in a string it returns (echoed by a comparison) gets, for hidden
tests, only a built-in exception type and its own file:line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.course import records
from autograder.harness.outcomes import classify, redact
from autograder.sandbox.errors import StudentError

ROOT = Path(__file__).resolve().parents[2]
TOY_COURSE = ROOT / "tests" / "fixtures" / "course"
HONEST_REST = '''
class Counter:
    def __init__(self, start=0):
        self.count = start

    def add(self, n=1):
        self.count += n
        return self

    def __add__(self, other):
        return Counter(self.count + getattr(other, "count", other))

    __radd__ = __add__
'''
LEAKS = {
    "message": '''
def double(x):
    if x.size > 1:
        raise ValueError("SEEN " + repr(x.tolist()))
    return x + x

def apply(f, x):
    raise KeyError("SEEN %r" % (f(x),))
''',
    "class_name": '''
def double(x):
    if x.size > 1:
        raise type("SEEN_" + "_".join(str(int(v)) for v in x.flat), (Exception,), {})()
    return x + x

def apply(f, x):
    raise type("SEEN_%d" % f(x), (ArithmeticError,), {})("SEEN")
''',
    "returned_string": '''
def double(x):
    if x.size > 1:
        return "SEEN " + repr(x.tolist())
    return x + x

def apply(f, x):
    return "SEEN %r" % (f(x),)
''',
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("leaks")
    arguments = []
    for name, source in LEAKS.items():
        (scratch / name).mkdir()
        (scratch / name / "toy.py").write_text(textwrap.dedent(source) + HONEST_REST)
        arguments.append(f"{name}={scratch / name}")
    out = scratch / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "autograder", "--config", str(TOY_COURSE / "grading.yaml"), "grade", "a99",
         *arguments, "--out", str(out), "-j", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_hidden_feedback_carries_no_student_text(graded, name):
    result = json.loads((graded / name / "result.json").read_text())
    hidden = [t for t in result["tests"] if t["visibility"] != "public" and "counter" not in t["id"]]
    assert hidden and all(t["status"] != "passed" for t in hidden)
    for test in hidden:
        assert "SEEN" not in test["feedback"], test["feedback"]


def test_hidden_errors_name_a_builtin_type_and_the_students_line(graded):
    result = json.loads((graded / "message" / "result.json").read_text())
    apply = next(t for t in result["tests"] if "test_apply" in t["id"])
    assert "KeyError" in apply["feedback"] and "toy.py:" in apply["feedback"], apply["feedback"]
    result = json.loads((graded / "class_name" / "result.json").read_text())
    apply = next(t for t in result["tests"] if "test_apply" in t["id"])
    assert "a class your code defines" in apply["feedback"], apply["feedback"]


def test_public_tests_still_show_the_students_message(graded):
    result = json.loads((graded / "message" / "result.json").read_text())
    public = [t for t in result["tests"] if t["visibility"] == "public"]
    assert any("SEEN" in t["feedback"] for t in public), [t["feedback"] for t in public]


def test_classify_redacts_student_text_for_hidden_tests():
    error = StudentError("LeakError", "SEEN [1, 2]", 'File "toy.py", line 7, in f\n', from_worker=True)
    status, message, trace = classify(error, "call", hidden=True)
    assert status == records.ERROR and "SEEN" not in message and trace == "" and "toy.py:7" in message
    status, message, _ = classify(AssertionError("f: expected 1.0, got str 'SEEN [1]' and <student SEEN object>"),
                                  "call", hidden=True)
    assert status == records.FAILED and "SEEN" not in message
    status, message, _ = classify(ValueError("could not convert string to float: 'SEEN'"), "call", hidden=True)
    assert status == records.FAILED and "SEEN" not in message


def test_redaction_keeps_the_graders_own_words():
    assert redact("double(x): expected shape (2, 3), got (3, 2)") == "double(x): expected shape (2, 3), got (3, 2)"
