"""Every `autograder ...` command in the README and docs/ runs, as written.

The commands are taken from the ```bash blocks of README.md and docs/*.md and run in a
scratch course (a copy of grading.yaml, the solutions, suites and releases) holding the
inputs they name: a folder of submissions, alice.zip, bob.ipynb, late.zip, a copy at
path/to/my/copy, downloads/ with times.csv. A documented command may find problems (exit 1,
e.g. `check` on an unfinished stub) but never a usage error (exit 2) or a grader fault (3).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
EXAMPLES = ROOT / "examples" / "submissions" / "a04_optimizers"


def documented_commands() -> list[tuple[str, str]]:
    """(document, command line) for every line of a bash block that starts with `autograder `."""
    found = []
    for document in DOCUMENTS:
        for block in BLOCK.findall(document.read_text()):
            for line in block.splitlines():
                line = line.split("  #", 1)[0].strip()
                if line.startswith("autograder "):
                    found.append((document.name, line))
    return found


@pytest.fixture(scope="module")
def scratch_course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "grading.yaml", course)
    for folder in ("solutions", "assignments", "tests/grading"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__"))
    submissions = course / "submissions"
    for example in ("correct_alt", "partial", "adam_no_bias_correction"):
        shutil.copytree(EXAMPLES / example, submissions / example)
    shutil.copytree(submissions, course / "downloads")
    (course / "downloads" / "times.csv").write_text(
        "student,submitted_at\ncorrect_alt,2025-04-13T20:00:00+08:00\npartial,2025-04-15T09:00:00+08:00\n")
    for name, example in (("alice.zip", "correct_alt"), ("late.zip", "partial")):
        with zipfile.ZipFile(course / name, "w") as archive:
            archive.write(EXAMPLES / example / "optimizers.py", "optimizers.py")
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        (ROOT / "solutions" / "a04_optimizers" / "optimizers.py").read_text())])
    nbformat.write(notebook, course / "bob.ipynb")
    copy = course / "path" / "to" / "my" / "copy"
    copy.mkdir(parents=True)
    shutil.copy(EXAMPLES / "partial" / "optimizers.py", copy)
    return course


def test_the_documents_show_commands():
    verbs = {command.split()[1] for _, command in documented_commands()}
    assert {"check", "submit", "grade", "report", "release", "verify", "export"} <= verbs


@pytest.mark.parametrize("document, command", documented_commands(), ids=lambda value: value)
def test_a_documented_command_runs_as_written(scratch_course, document, command):
    arguments = shlex.split(command)[1:]
    completed = subprocess.run([sys.executable, "-m", "autograder", *arguments], cwd=scratch_course,
                               capture_output=True, text=True, timeout=900,
                               env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1"))
    assert completed.returncode in (0, 1), (
        f"{document}: `{command}` exited {completed.returncode}:\n{completed.stderr[-2000:]}")
    assert "Traceback" not in completed.stderr, completed.stderr[-2000:]
