"""Notebook submissions end to end: the release notebook, filled or broken, graded by the real CLI."""
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.course.reader import load_course
from autograder.pipeline.notebook import GRADED_TAG, fill_notebook

from ..conftest import ROOT, TOY_COURSE


@pytest.fixture(scope="module")
def toy_release(tmp_path_factory) -> Path:
    """The toy course with its release written (assignments/a99_toy/)."""
    from autograder.commands.release.build import build_release, write_release

    course_dir = Path(shutil.copytree(TOY_COURSE, tmp_path_factory.mktemp("toy") / "course"))
    course = load_course(course_dir / "grading.yaml")
    assignment = course.assignment("a99")
    write_release(course, assignment, build_release(course, assignment))
    return course_dir


def _notebook(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(course / "assignments" / "a99_toy" / "a99_toy.ipynb", as_version=4)


def _reference_notebook(course: Path) -> nbformat.NotebookNode:
    text = (course / "assignments" / "a99_toy" / "a99_toy.ipynb").read_text()
    reference = (course / "solutions" / "a99_toy" / "toy.py").read_text()
    return nbformat.reads(fill_notebook(text, reference), as_version=4)


def _graded(notebook) -> list:
    return [cell for cell in notebook.cells if GRADED_TAG in cell.metadata.get("tags", [])]


def _cell_defining(notebook, text: str):
    return next(cell for cell in _graded(notebook) if text in cell.source)


def _variants(course: Path) -> dict[str, object]:
    """name -> notebook (or raw text) of every kind of broken or messy notebook."""
    variants: dict[str, object] = {"reference": _reference_notebook(course), "stub": _notebook(course)}
    variants["invalid_json"] = '{"cells": [ {"cell_type": "code", "source": "def double(x'

    deleted = _reference_notebook(course)
    deleted.cells.remove(_cell_defining(deleted, "def double"))
    variants["deleted_cell"] = deleted

    broken = _reference_notebook(course)
    _cell_defining(broken, "class Counter").source += "\n    def oops(self:\n        pass"
    variants["syntax_error_cell"] = broken

    magics = _reference_notebook(course)
    first = _graded(magics)[0]
    first.source = "%matplotlib inline\n!pip install numpy\n" + first.source + "\nfiles = !ls\nnp.sum?\n"
    magics.cells.insert(3, nbformat.v4.new_code_cell("%%bash\necho hello", metadata={"tags": [GRADED_TAG]}))
    variants["magics_and_shell"] = magics

    widgets = _reference_notebook(course)
    widgets.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"abc": {"model_name": "IntSliderModel", "state": {"value": 3}}}, "version_major": 2}}
    _graded(widgets)[0].outputs = [nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "x" * 5000})]
    variants["widget_state"] = widgets

    duplicated = _reference_notebook(course)
    cell = _cell_defining(duplicated, "def double")
    duplicated.cells.insert(duplicated.cells.index(cell) + 1, nbformat.from_dict(dict(cell, id="copy-1")))
    variants["duplicated_cell"] = duplicated

    reordered = _reference_notebook(course)
    header = _graded(reordered)[0]          # docstring and `import numpy as np`
    reordered.cells.remove(header)
    reordered.cells.append(header)
    variants["reordered_cells"] = reordered

    converted = _reference_notebook(course)
    cell = _cell_defining(converted, "def apply")
    converted.cells[converted.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    variants["converted_cell"] = converted

    untagged = _reference_notebook(course)
    for cell in untagged.cells:
        cell.metadata.pop("tags", None)
    untagged.cells.append(nbformat.v4.new_code_cell("print(double(3))"))
    variants["lost_tags"] = untagged
    return variants


EXPECTED = {   # name -> (score of 20, status, what the one-line reason says)
    "reference": (20, "graded", ""),
    "stub": (0, "graded", ""),
    "invalid_json": (0, "rejected", "not a valid notebook (invalid JSON at line 1"),
    "deleted_cell": (10, "graded", "the graded cells do not define double (was a graded cell deleted?)"),
    "syntax_error_cell": (14, "graded", "has a syntax error on its line"),
    "magics_and_shell": (20, "graded", "(%%bash) holds the %%bash cell magic, not Python, and was not graded"),
    "widget_state": (20, "graded", ""),
    "duplicated_cell": (20, "graded", "duplicates cell"),
    "reordered_cells": (20, "graded", ""),
    "converted_cell": (16, "graded", "are no longer code cells and were not graded; change them back to Code"),
    "lost_tags": (20, "graded", "no cell is tagged 'graded'"),
}


def test_notebooks_messy_or_broken_are_graded_or_refused_in_one_line(cli, toy_release, tmp_path):
    arguments = []
    for name, notebook in _variants(toy_release).items():
        path = tmp_path / "subs" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        path.write_text(notebook if isinstance(notebook, str) else nbformat.writes(notebook))
        arguments.append(str(path))
    done = cli("--config", str(toy_release / "grading.yaml"), "grade", "a99", *arguments,
               "--out", str(tmp_path / "out"), "-j", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    for name, (score, status, reason) in EXPECTED.items():
        result = json.loads((tmp_path / "out" / name / "result.json").read_text())
        assert (result["score"], result["status"]) == (score, status), (name, result["reason"])
        assert reason in result["reason"], (name, result["reason"])
        for note in result["reason"].split("; "):
            assert "\n" not in note and len(note) < 300, (name, note)


def test_release_notebook_of_a_real_assignment_scores_full_marks_filled_and_zero_as_stub(cli, tmp_path):
    release = ROOT / "assignments" / "a03_sgd"
    filled = tmp_path / "reference.ipynb"
    filled.write_text(fill_notebook((release / "a03_sgd.ipynb").read_text(),
                                    (ROOT / "solutions" / "a03_sgd" / "sgd.py").read_text()))
    stub = tmp_path / "stub.ipynb"
    shutil.copyfile(release / "a03_sgd.ipynb", stub)
    done = cli("grade", "a03", str(filled), str(stub), "--out", str(tmp_path / "out"), "-j", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    reference = json.loads((tmp_path / "out" / "reference" / "result.json").read_text())
    assert (reference["score"], reference["max_score"], reference["status"]) == (100, 100, "graded"), reference["reason"]
    assert json.loads((tmp_path / "out" / "stub" / "result.json").read_text())["score"] == 0


def _released_assignments() -> list[str]:
    course = load_course(ROOT / "grading.yaml")
    return sorted(a.id for a in course.assignments.values() if (course.release_dir(a) / f"{a.id}.ipynb").is_file())


@pytest.mark.parametrize("assignment", _released_assignments())
def test_release_notebook_filled_with_the_reference_runs_top_to_bottom_in_a_kernel(assignment, tmp_path):
    from nbclient import NotebookClient

    folder = Path(shutil.copytree(ROOT / "assignments" / assignment, tmp_path / assignment))
    course = load_course(ROOT / "grading.yaml")
    module = course.assignment(assignment).module
    path = folder / f"{assignment}.ipynb"
    path.write_text(fill_notebook(path.read_text(), (ROOT / "solutions" / assignment / module).read_text()))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    output = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert "public tests:" in output and "passed)" in output, output[-2000:]
    earned, possible = output.split("public tests: ", 1)[1].split(" points", 1)[0].split("/")
    assert earned == possible, output[-2000:]
