"""`autograder release` end to end on a copy of the toy course: real CLI, real files."""
import json
import shutil
from pathlib import Path

import pytest

from autograder.course.reader import load_course
from autograder.commands.release.build import build_release, files_on_disk
from autograder.commands.release.leak_scan import scan_release

from ..conftest import ROOT, TOY_COURSE


@pytest.fixture
def course(tmp_path) -> Path:
    """A private copy of the toy course, so releases can be written and broken freely."""
    return Path(shutil.copytree(TOY_COURSE, tmp_path / "course"))


def release(cli, course: Path, *args: str):
    return cli("--config", str(course / "grading.yaml"), "release", *args)


def test_release_writes_stub_readme_public_tests_config_and_notebook(cli, course):
    done = release(cli, course, "a99")
    assert done.returncode == 0, done.stderr
    folder = course / "assignments" / "a99_toy"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "a99_toy.ipynb", "grading.yaml", "tests/grading/a99_toy/test_public.py", "toy.py"]
    stub = (folder / "toy.py").read_text()
    assert '    raise NotImplementedError("Task 1: double")' in stub
    assert '        raise NotImplementedError("Task 2: counter")' in stub   # a method: the region's indentation
    assert "def __add__(self, other):" in stub                                # code outside regions is kept
    assert "return np.asarray(x) * 2" not in stub and "SOLUTION" not in stub
    readme = (folder / "README.md").read_text()
    assert "| Task 1: double | public (`autograder check`) | 4 |" in readme
    assert "| **total** | | **20** |" in readme
    config = (folder / "grading.yaml").read_text()
    assert "test_public.py::test_double*" in config and "test_hidden" not in config
    notebook = json.loads((folder / "a99_toy.ipynb").read_text())
    graded = [c for c in notebook["cells"] if "graded" in c["metadata"].get("tags", [])]
    assert any("def double(x):" in "".join(c["source"]) for c in graded)


def test_release_is_byte_identical_and_check_passes_when_fresh(cli, course):
    assert release(cli, course, "all").returncode == 0
    folder = course / "assignments" / "a99_toy"
    first = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = release(cli, course, "all")
    assert again.returncode == 0 and "0 changed" in again.stdout
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == first
    checked = release(cli, course, "all", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "a99_toy: up to date" in checked.stdout


def test_release_check_names_every_stale_file(cli, course):
    assert release(cli, course, "a99").returncode == 0
    folder = course / "assignments" / "a99_toy"
    (folder / "toy.py").write_text((folder / "toy.py").read_text() + "# edited by hand\n")
    (folder / "notes.txt").write_text("not generated")
    solution = course / "solutions" / "a99_toy" / "toy.py"
    solution.write_text(solution.read_text().replace("A toy module", "A small module"))
    checked = release(cli, course, "a99", "--check")
    assert checked.returncode == 1
    for name in ("toy.py", "notes.txt", "a99_toy.ipynb"):
        assert f"assignments/a99_toy/{name}" in checked.stderr
    assert "run `autograder release a99`" in checked.stderr
    assert (folder / "notes.txt").exists()  # --check writes nothing
    assert release(cli, course, "a99").returncode == 0
    assert not (folder / "notes.txt").exists()
    assert release(cli, course, "a99", "--check").returncode == 0


def test_release_refuses_public_tests_that_use_the_reference(cli, course):
    public = course / "tests" / "grading" / "a99_toy" / "test_public.py"
    line = public.read_text().count("\n") + 3
    public.write_text(public.read_text() + "\n\ndef test_double_like_reference(student, reference):\n"
                      "    assert student.double(1) == reference.double(1)\n")
    done = release(cli, course, "a99")
    assert done.returncode == 2
    assert (f"tests/grading/a99_toy/test_public.py:{line}: test_double_like_reference uses the `reference` fixture"
            in done.stdout)
    assert "public oracle" in done.stdout
    assert not (course / "assignments" / "a99_toy").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("    # END SOLUTION\n", "", 1), "BEGIN SOLUTION inside the region opened on line 6"),
    (lambda s: s + "# END SOLUTION\n", "END SOLUTION without a BEGIN SOLUTION"),
    (lambda s: s + "# BEGIN SOLUTION Task 4: constants\nSCALE = 2\n# END SOLUTION\n",
     "a solution region at module level would make the stub raise on import"),
])
def test_release_names_the_line_of_a_bad_solution_region(cli, course, edit, message):
    solution = course / "solutions" / "a99_toy" / "toy.py"
    solution.write_text(edit(solution.read_text()))
    done = release(cli, course, "a99")
    assert done.returncode == 2
    assert "toy.py:" in done.stdout and message in done.stdout


def test_release_refuses_to_leak_hidden_tests(cli, course):
    public = course / "tests" / "grading" / "a99_toy" / "test_public.py"
    public.write_text(public.read_text() + "\n# see also test_counter_adds_and_forwards_operators\n")
    done = release(cli, course, "a99")
    assert done.returncode == 2
    assert "names the hidden test 'test_counter_adds_and_forwards_operators'" in done.stdout


def test_student_runs_check_inside_the_release_folder(cli, course, tmp_path):
    assert release(cli, course, "a99").returncode == 0
    folder = course / "assignments" / "a99_toy"
    stub = cli("check", "a99", cwd=folder)          # ./grading.yaml, the copy in this folder
    assert stub.returncode == 1
    assert "Task 1: double: not started" in stub.stdout  # one line per untouched task, no failure blocks
    assert "NotImplementedError" not in stub.stdout
    assert "public tests: 0/4 points" in stub.stdout
    shutil.copyfile(course / "solutions" / "a99_toy" / "toy.py", folder / "toy.py")
    done = cli("check", "a99", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "public tests: 4/4 points (1/1 passed)" in done.stdout


def test_committed_releases_hold_no_solution_code_hidden_test_or_secret():
    course = load_course(ROOT / "grading.yaml")
    released = [a for a in course.assignments.values() if course.release_dir(a).is_dir()]
    assert released, "no assignment has a release in assignments/"
    for assignment in released:
        folder = course.release_dir(assignment)
        files = {name: (folder / name).read_bytes() for name in files_on_disk(folder)}
        assert not any(name.startswith("tests/") and "hidden" in name for name in files)
        assert scan_release(course, assignment, files) == [], assignment.id


def test_scan_finds_solution_code_pasted_into_a_release():
    course = load_course(TOY_COURSE / "grading.yaml")
    assignment = course.assignment("a99")
    files = build_release(course, assignment)
    assert scan_release(course, assignment, files) == []
    files["toy.py"] += b"\ndef double_again(x):\n    return np.asarray(x) * 2\n"
    files["extra.md"] = b"hint: self.count += n\n"
    leaks = scan_release(course, assignment, files)
    assert any(leak.startswith("toy.py:") and "solution code from" in leak for leak in leaks)
    assert not any(leak.startswith("extra.md") for leak in leaks)  # too short to be a leak: `self.count += n`


def test_a_whole_release_folder_submitted_is_graded_by_its_module(cli, course, tmp_path):
    assert release(cli, course, "a99").returncode == 0
    folder = course / "assignments" / "a99_toy"
    archive = shutil.make_archive(str(tmp_path / "zipped"), "zip", folder)
    done = cli("--config", str(course / "grading.yaml"), "grade", "a99", f"stub={folder}", f"zipped={archive}",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("stub", "zipped"):
        result = json.loads((tmp_path / "out" / name / "result.json").read_text())
        assert (result["status"], result["score"]) == ("graded", 0), result["reason"]   # not refused for our tests' imports
        assert any("NotImplementedError: Task 1: double" in t["feedback"] for t in result["tests"])
