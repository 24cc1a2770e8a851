"""`autograder export gradescope`: unpack the bundle into a fake /autograder and run it as Gradescope would."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ..conftest import ROOT, TOY_COURSE

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def export(cli, config: Path, assignment: str, zip_path: Path) -> Path:
    done = cli("--config", str(config), "export", "gradescope", assignment, "--out", str(zip_path))
    assert done.returncode == 0, done.stdout + done.stderr
    return zip_path


def unpack(zip_path: Path, root: Path) -> Path:
    """Lay the bundle out as Gradescope does: /autograder/source, then run_autograder beside it."""
    with zipfile.ZipFile(zip_path) as bundle:
        bundle.extractall(root / "source")
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    return root


def run_autograder(root: Path, submission: Path) -> dict:
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    if submission.is_dir():
        shutil.copytree(submission, root / "submission")
    else:
        (root / "submission").mkdir()
        shutil.copyfile(submission, root / "submission" / submission.name)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    env.pop("AUTOGRADER_CONFIG", None)
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"from {root / 'source' / 'autograder'}" in done.stdout   # the bundled package graded, not the repository's
    return json.loads((root / "results" / "results.json").read_text())


def assert_valid_results(results: dict) -> None:
    """The fields and types of Gradescope's results.json specification that the bundle writes."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["tests"], list)
    assert results.get("visibility", "visible") in VISIBILITIES
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITIES
    assert abs(sum(t["score"] for t in results["tests"]) - results["score"]) < 1e-3   # shares are rounded to 1e-6


def test_gradescope_bundle_has_the_documented_layout_and_is_reproducible(cli, tmp_path):
    first = export(cli, TOY_COURSE / "grading.yaml", "a99", tmp_path / "one.zip")
    second = export(cli, TOY_COURSE / "grading.yaml", "a99", tmp_path / "two.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as bundle:
        names = bundle.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in bundle.infolist()}
    for name in ("setup.sh", "run_autograder", "grading.yaml", "pyproject.toml", "autograder/pipeline/run.py",
                 "autograder/runtime/worker.py", "tests/grading/a99_toy/test_hidden.py",
                 "tests/grading/a99_toy/test_public.py", "solutions/a99_toy/toy.py"):
        assert name in names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not any("__pycache__" in name or "subs/" in name for name in names)


def test_gradescope_bundle_grades_submissions_into_results_json(cli, tmp_path):
    root = unpack(export(cli, TOY_COURSE / "grading.yaml", "a99", tmp_path / "toy.zip"), tmp_path / "autograder")
    good = run_autograder(root, TOY_COURSE / "subs" / "good")
    assert_valid_results(good)
    assert good["score"] == 20 and all(t["status"] == "passed" for t in good["tests"])
    bad = run_autograder(root, TOY_COURSE / "subs" / "bad")
    assert_valid_results(bad)
    assert 0 <= bad["score"] < 20
    failed = [t for t in bad["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] for t in failed)
    hidden = [t for t in bad["tests"] if t["visibility"] == "after_published"]
    assert hidden and all(t["tags"] for t in hidden)


def test_gradescope_bundle_scores_the_example_submissions_as_expected(cli, tmp_path):
    expected = yaml.safe_load((ROOT / "examples" / "submissions" / "a03_sgd" / "expected.yaml").read_text())
    root = unpack(export(cli, ROOT / "grading.yaml", "a03", tmp_path / "a03.zip"), tmp_path / "autograder")
    for name in ("partial", "syntax_error"):
        results = run_autograder(root, ROOT / "examples" / "submissions" / "a03_sgd" / name)
        assert_valid_results(results)
        assert results["score"] == pytest.approx(expected[name]), (name, results["output"])


def test_gradescope_bundle_reports_its_own_fault_instead_of_a_silent_zero(cli, tmp_path):
    root = unpack(export(cli, TOY_COURSE / "grading.yaml", "a99", tmp_path / "toy.zip"), tmp_path / "autograder")
    (root / "source" / "grading.yaml").write_text("course: broken\nassignments: [\n")
    results = run_autograder(root, TOY_COURSE / "subs" / "good")
    assert results["score"] == 0 and results["tests"] == []
    assert "not your fault: the course staff will regrade" in results["output"]
