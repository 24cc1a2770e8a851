"""Taking the graded module out of real notebook files: formats and junk that Jupyter users produce."""
import json

import pytest

from autograder.course.reader import load_course
from autograder.errors import IntakeError
from autograder.pipeline.notebook import module_from_notebook

from ..conftest import TOY_COURSE

ASSIGNMENT = load_course(TOY_COURSE / "grading.yaml").assignment("a99")
DOUBLE = "def double(x):\n    return x * 2\n"
COUNTER = "class Counter:\n    def __init__(self, start=0):\n        self.count = start\n"


def write(tmp_path, cells, **top) -> object:
    path = tmp_path / "work.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5, **top}))
    return path


def code(source, tags=("graded",), **extra):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "outputs": [], **extra}


def run(module: str) -> dict:
    namespace: dict = {}
    exec(compile(module, "toy.py", "exec"), namespace)
    return namespace


def test_sources_as_line_lists_and_future_imports_in_later_cells(tmp_path):
    path = write(tmp_path, [
        code(DOUBLE.splitlines(keepends=True)),
        code(["from __future__ import annotations\n", "import math\n", COUNTER]),
    ])
    module, notes = module_from_notebook(path, ASSIGNMENT)
    assert module.startswith("from __future__ import annotations\nimport math\n")
    namespace = run(module)
    assert namespace["double"](3) == 6 and namespace["Counter"](2).count == 2
    assert notes == ()


def test_help_lines_assignments_from_shell_and_cell_magics_with_python_bodies(tmp_path):
    path = write(tmp_path, [
        code("%%time\n" + DOUBLE),
        code("np.sum?\nlisting = !ls\n" + COUNTER + "    def add(self, n=1):\n        %timeit 1\n        return self\n"),
    ])
    module, notes = module_from_notebook(path, ASSIGNMENT)
    namespace = run(module)
    assert namespace["double"](2) == 4 and namespace["Counter"]().add() is not None
    assert any("IPython lines" in note for note in notes)


def test_nbformat_3_worksheets_are_read(tmp_path):
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "code", "input": DOUBLE, "metadata": {}},
        {"cell_type": "code", "input": COUNTER, "metadata": {}},
    ]}]}))
    module, notes = module_from_notebook(path, ASSIGNMENT)
    assert run(module)["double"](1) == 2
    assert "no cell is tagged 'graded'" in notes[0]


def test_corrupt_metadata_and_cells_are_ignored_not_crashed_on(tmp_path):
    path = write(tmp_path, [
        "not a cell", {"cell_type": "code", "source": 42, "metadata": {"tags": "graded"}},
        {"cell_type": "code", "source": DOUBLE, "metadata": None},
        code(COUNTER),
    ])
    module, notes = module_from_notebook(path, ASSIGNMENT)
    assert "class Counter" in module and "def double" not in module   # only the tagged cell
    assert any("do not define double" in note for note in notes)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe not utf-8", "not UTF-8 text"),
    (b"[1, 2, 3]", "the JSON is not an object with cells"),
    (b'{"metadata": {}}', "no list of cells"),
    (json.dumps({"cells": [{"cell_type": "markdown", "source": "# only notes"}]}).encode(), "no graded code found"),
])
def test_unusable_notebooks_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(IntakeError) as error:
        module_from_notebook(path, ASSIGNMENT)
    assert message in str(error.value) and "\n" not in str(error.value)
