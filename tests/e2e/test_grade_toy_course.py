"""`autograder grade` end to end on the toy course: real CLI, real worker processes, real files."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from autograder.course.records import RESULT_SCHEMA

from ..conftest import TOY_COURSE

# The toy course's subs hang, exit and hide imports at run time: the run-time layers are under test.
pytestmark = pytest.mark.usefixtures("language_surface_open")

CONFIG = str(TOY_COURSE / "grading.yaml")
REFERENCE = TOY_COURSE / "solutions" / "a99_toy"
SUBS = TOY_COURSE / "subs"

# The Gradescope results.json specification, as far as the autograder writes it.
GRADESCOPE_SCHEMA = {
    "type": "object",
    "required": ["score", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "integer"}, "output": {"type": "string"},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "tests": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["max_score", "name"],
            "properties": {
                "score": {"type": "number"}, "max_score": {"type": "number"}, "name": {"type": "string"},
                "number": {"type": "string"}, "output": {"type": "string"}, "tags": {"type": "array"},
                "status": {"enum": ["passed", "failed"]},
                "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
            },
        }},
    },
}


def grade(cli, out: Path, *submissions: str):
    completed = cli("--config", CONFIG, "grade", "a99", *submissions, "--out", str(out), "--regrade")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed


def result(out: Path, name: str) -> dict:
    return json.loads((out / name / "result.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from ..conftest import run_cli

    out = tmp_path_factory.mktemp("results")
    completed = grade(run_cli, out, f"reference={REFERENCE}", str(SUBS / "good"), str(SUBS / "bad"), str(SUBS / "hang"))
    return out, completed


def test_scores_are_exact_for_every_example(graded):
    out, completed = graded
    assert result(out, "reference")["score"] == 20
    assert result(out, "good")["score"] == 20
    assert result(out, "bad")["score"] == 0
    assert result(out, "hang")["score"] == 4
    assert re.search(r"reference\s+20/20\s+graded", completed.stdout)


def test_result_json_follows_the_schema(graded):
    out, _ = graded
    for name in ("reference", "good", "bad", "hang"):
        data = result(out, name)
        jsonschema.validate(data, RESULT_SCHEMA)
        assert data["max_score"] == 20 and data["assignment"] == "a99_toy"
        assert len(data["submission_hash"]) == 64 and len(data["suite_hash"]) == 64
        assert {"python", "torch", "numpy", "hypothesis", "autograder"} <= set(data["versions"])


def test_gradescope_json_is_valid_and_agrees_with_result(graded):
    out, _ = graded
    for name in ("reference", "bad"):
        gradescope = json.loads((out / name / "gradescope.json").read_text())
        jsonschema.validate(gradescope, GRADESCOPE_SCHEMA)
        assert gradescope["score"] == result(out, name)["score"]
        assert sum(t["max_score"] for t in gradescope["tests"]) == pytest.approx(20)


def test_statuses_say_what_the_student_code_did(graded):
    out, _ = graded
    bad = {t["name"]: t for t in result(out, "bad")["tests"]}
    assert bad["test_counter_adds_and_forwards_operators"]["status"] == "error"
    assert "ValueError: not yet" in bad["test_counter_adds_and_forwards_operators"]["feedback"]
    assert bad["test_double_matches_reference"]["status"] == "failed"
    assert "double of a matrix" in bad["test_double_matches_reference"]["feedback"]
    hang = {t["name"]: t for t in result(out, "hang")["tests"]}
    assert hang["test_double_matches_twice"]["status"] == "timeout"
    assert hang["test_counter_adds_and_forwards_operators"]["status"] == "crashed"
    assert hang["test_apply_calls_back"]["status"] == "passed"


def test_public_feedback_shows_the_minimal_example_and_hidden_feedback_does_not(graded):
    out, _ = graded
    bad = {t["name"]: t for t in result(out, "bad")["tests"]}
    assert "Failing test case" in bad["test_double_matches_twice"]["feedback"]
    assert "values=[" in bad["test_double_matches_twice"]["feedback"]
    hidden = bad["test_double_matches_reference"]["feedback"]
    assert "rows=" not in hidden and "Failing test case" not in hidden


def test_grading_twice_gives_identical_results_apart_from_timestamps(graded, cli, tmp_path):
    out, _ = graded
    grade(cli, tmp_path, f"reference={REFERENCE}", str(SUBS / "bad"))
    for name in ("reference", "bad"):
        first, second = result(out, name), result(tmp_path, name)
        for data in (first, second):
            for key in ("started_at", "finished_at", "duration_seconds", "timings"):
                data.pop(key)
            for test in data["tests"]:
                test.pop("duration")
        assert first == second


BROKEN = {
    "syntax_error": ("def double(x)\n    return x\n", "SyntaxError"),
    "forbidden_import": ("import numpy.linalg\ndef double(x):\n    return x\n", "imports numpy.linalg, which is forbidden"),
    "torch_import": ("import torch\ndef double(x):\n    return x\n", "imports torch; a99_toy allows only numpy, math, the standard library"),
    "forbidden_call": ("import numpy as np\ndef double(x):\n    return np.linalg.solve(x, x)\n", "uses numpy.linalg.solve, which is forbidden"),
    "import_crash": ("raise RuntimeError('boom at import')\n", "boom at import"),
}


def test_broken_submissions_get_one_line_reasons_and_the_batch_goes_on(cli, tmp_path):
    submissions = []
    for name, (source, _) in BROKEN.items():
        (tmp_path / "subs" / name).mkdir(parents=True)
        (tmp_path / "subs" / name / "toy.py").write_text(source)
        submissions.append(str(tmp_path / "subs" / name))
    missing_function = tmp_path / "subs" / "missing_function"
    missing_function.mkdir()
    (missing_function / "toy.py").write_text((SUBS / "good" / "toy.py").read_text().split("class Counter")[0])
    wrong_signature = tmp_path / "subs" / "wrong_signature"
    wrong_signature.mkdir()
    (wrong_signature / "toy.py").write_text((SUBS / "good" / "toy.py").read_text().replace("def double(x)", "def double(x, factor)"))
    out = tmp_path / "out"
    grade(cli, out, *submissions, str(tmp_path / "subs" / "absent"), str(missing_function), str(wrong_signature), str(SUBS / "good"))
    for name, (_, reason) in BROKEN.items():
        data = result(out, name)
        assert data["status"] == "rejected" and data["score"] == 0, name
        assert reason in data["reason"], (name, data["reason"])
        assert "\n" not in data["reason"].strip()
    assert "no such file or folder" in result(out, "absent")["reason"]
    missing = result(out, "missing_function")
    assert missing["status"] == "graded" and missing["score"] == 10  # double is right: 4 + 6
    assert "does not define Counter" in missing["reason"]
    wrong = {t["name"]: t for t in result(out, "wrong_signature")["tests"]}
    assert wrong["test_double_matches_twice"]["status"] == "error"
    assert "missing 1 required positional argument" in wrong["test_double_matches_twice"]["feedback"]
    assert result(out, "good")["score"] == 20


def test_archives_and_single_files_are_accepted(cli, tmp_path):
    good = SUBS / "good"
    nested = tmp_path / "bundle" / "student-42" / "src"
    nested.mkdir(parents=True)
    shutil.copy(good / "toy.py", nested / "toy.py")
    shutil.make_archive(str(tmp_path / "student-42"), "zip", root_dir=tmp_path / "bundle")
    shutil.make_archive(str(tmp_path / "student-43"), "gztar", root_dir=tmp_path / "bundle")
    single = tmp_path / "student-44.py"
    shutil.copy(good / "toy.py", single)
    out = tmp_path / "out"
    grade(cli, out, str(tmp_path / "student-42.zip"), str(tmp_path / "student-43.tar.gz"), str(single))
    for name in ("student-42", "student-43", "student-44"):
        assert result(out, name)["score"] == 20, name


def test_unknown_assignment_is_a_one_line_usage_error(cli, tmp_path):
    completed = cli("--config", CONFIG, "grade", "a98", str(SUBS / "good"), "--out", str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("autograder: unknown assignment 'a98'")
    assert "Traceback" not in completed.stderr


def test_an_import_hidden_from_the_static_scan_is_refused_at_run_time(cli, tmp_path):
    """`importlib.import_module("to" + "rch")` passes the AST scan; the worker refuses it."""
    grade(cli, tmp_path, str(SUBS / "sneaky_import"))
    tests = {t["name"]: t for t in result(tmp_path, "sneaky_import")["tests"]}
    double = tests["test_double_matches_reference"]
    assert double["status"] == "error"
    assert "ForbiddenImportError" in double["feedback"]  # a hidden test: the type and the line, never a message
    assert "toy.py:" in double["feedback"]
    assert tests["test_apply_calls_back"]["status"] == "passed"  # __import__ of the standard library is fine
    assert result(tmp_path, "sneaky_import")["score"] == 10


def test_the_allow_list_refuses_a_hidden_import_before_it_runs(tmp_path):
    """With the language surface in force (the default), the same trick never runs: refused, naming the line."""
    completed = subprocess.run([sys.executable, "-m", "autograder", "--config", str(CONFIG), "grade", "a99",
                                str(SUBS / "sneaky_import"), "--out", str(tmp_path)], capture_output=True, text=True,
                               timeout=600, env={k: v for k, v in os.environ.items() if k != "AUTOGRADER_LANGUAGE_SURFACE"})
    assert completed.returncode == 0, completed.stderr
    refused = result(tmp_path, "sneaky_import")
    assert refused["status"] == "rejected" and "toy.py, line" in refused["reason"] and "importlib" in refused["reason"]


def test_command_line_limit_beats_the_environment_and_the_file(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CALL_SECONDS", "2")
    completed = cli("--config", CONFIG, "grade", "a99", str(SUBS / "hang"), "--out", str(tmp_path), "--regrade",
                    "--limit", "call_seconds=1")
    assert completed.returncode == 0, completed.stderr
    tests = {t["name"]: t for t in result(tmp_path, "hang")["tests"]}
    assert "ran past 1 s limit" in tests["test_double_matches_twice"]["feedback"]
    bad = cli("--config", CONFIG, "grade", "a99", str(SUBS / "hang"), "--out", str(tmp_path), "--limit", "cpu=1")
    assert bad.returncode == 2 and "--limit 'cpu=1'" in bad.stderr
