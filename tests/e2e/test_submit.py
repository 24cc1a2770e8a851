"""`autograder submit` end to end: what a student sees, and the archive the grader then accepts."""
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ..conftest import TOY_COURSE

CONFIG = str(TOY_COURSE / "grading.yaml")
REFERENCE = TOY_COURSE / "solutions" / "a99_toy" / "toy.py"


@pytest.fixture
def copy(tmp_path) -> Path:
    """A student's working folder: the module plus things that must not be packed."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copyfile(REFERENCE, folder / "toy.py")
    (folder / "scratch.py").write_text("import requests\n")
    (folder / "notes.txt").write_text("todo")
    return folder


def submit(cli, *args: str, cwd: Path):
    return cli("--config", CONFIG, "submit", "a99", *args, cwd=cwd)


def test_submit_packs_only_the_graded_files_into_an_archive_named_for_the_assignment(cli, copy, tmp_path):
    done = submit(cli, str(copy), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    archive = tmp_path / "out" / "a99_toy_submission.zip"
    assert f"wrote {archive}" in done.stdout
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.namelist() == ["toy.py"]
        assert bundle.read("toy.py") == REFERENCE.read_bytes()
    first = archive.read_bytes()
    assert submit(cli, str(copy), "--out", str(tmp_path / "out"), cwd=tmp_path).returncode == 0
    assert archive.read_bytes() == first   # same files, same bytes


def test_submitted_archive_is_graded_like_the_folder(cli, copy, tmp_path):
    assert submit(cli, str(copy), "--out", str(tmp_path), cwd=tmp_path).returncode == 0
    done = cli("--config", CONFIG, "grade", "a99", f"alice={tmp_path / 'a99_toy_submission.zip'}",
               "--out", str(tmp_path / "results"))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "results" / "alice" / "result.json").read_text())
    assert (result["score"], result["status"]) == (20, "graded")


@pytest.mark.parametrize("source, problem", [
    ("import numpy.linalg\n" + REFERENCE.read_text(), "toy.py, line 1: imports numpy.linalg, which is forbidden in a99_toy"),
    ("import torch\n" + REFERENCE.read_text(), "toy.py, line 1: imports torch; a99_toy allows only numpy, math, the standard library"),
    (REFERENCE.read_text().replace("def double(x):", "def double(x)"), "toy.py, line 5: SyntaxError: expected ':'"),
    (REFERENCE.read_text().replace("class Counter:", "class Tally:"), "toy.py: does not define Counter; their tests will fail"),
    ("def double(x):\n    return x\n\nclass Counter:\n    pass\n\nx = 1\ndef f():\n    nonlocal x\n",
     "toy.py, line 9: no binding for nonlocal 'x' found"),
])
def test_submit_reports_each_problem_in_one_line_and_packs_nothing(cli, copy, tmp_path, source, problem):
    (copy / "toy.py").write_text(source)
    done = submit(cli, cwd=copy)          # default: the current folder
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"problem: {problem}" in lines, done.stdout
    assert "not packed: fix the" in done.stdout
    assert not list(copy.glob("*.zip"))


def test_submit_refuses_a_missing_module_and_an_oversized_one(cli, copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = submit(cli, str(empty), cwd=tmp_path)
    assert done.returncode == 1 and f"problem: {empty / 'toy.py'}: missing; the submission must contain toy.py" in done.stdout
    (copy / "toy.py").write_text(REFERENCE.read_text() + "#" * (2 << 20) + "\n")
    done = submit(cli, str(copy), cwd=tmp_path)
    assert done.returncode == 1 and "problem: toy.py: 2048 KiB is over the 1024 KiB limit for a source file" in done.stdout


def test_submit_says_which_tasks_are_unfinished_but_still_packs(cli, copy, tmp_path):
    source = REFERENCE.read_text().replace("    return f(x) + 1\n", '    raise NotImplementedError("Task 3: apply")\n')
    (copy / "toy.py").write_text(source)
    done = submit(cli, str(copy), "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0
    assert "note: not done yet: Task 3: apply still raises NotImplementedError" in done.stdout
    assert (tmp_path / "a99_toy_submission.zip").is_file()


def test_submit_accepts_the_notebook_and_reports_its_problems(cli, tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np", metadata={"tags": ["graded"]}),
        nbformat.v4.new_code_cell(REFERENCE.read_text().split("def double", 1)[0] + "def double(x):\n    return x * 2\n",
                                  metadata={"tags": ["graded"]}),
        nbformat.v4.new_code_cell("class Counter:\n    pass", metadata={"tags": ["graded"]}),
        nbformat.v4.new_code_cell("def apply(f, x:\n    pass", metadata={"tags": ["graded"]}),
    ])
    path = tmp_path / "a99_toy.ipynb"
    path.write_text(nbformat.writes(notebook))
    done = submit(cli, str(path), "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "note: a99_toy.ipynb: graded cell 4 (def apply(f, x:) has a syntax error" in done.stdout
    with zipfile.ZipFile(tmp_path / "a99_toy_submission.zip") as bundle:
        assert bundle.namelist() == ["a99_toy.ipynb"]
