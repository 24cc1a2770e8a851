"""`autograder verify` on a copy of the toy course: what it proves, and every way it fails."""
import shutil
from pathlib import Path

import pytest

from ..conftest import TOY_COURSE

CAUGHT = """description: double triples instead
expect_fail: ["test_hidden.py::test_double_*"]
replace:
  - find: "return np.asarray(x) * 2"
    with: "return np.asarray(x) * 3"
"""


@pytest.fixture
def course(tmp_path) -> Path:
    course = Path(shutil.copytree(TOY_COURSE, tmp_path / "course"))
    (course / "tests" / "mutants" / "a99_toy").mkdir(parents=True)
    return course


def add_mutant(course: Path, name: str, text: str) -> None:
    (course / "tests" / "mutants" / "a99_toy" / f"{name}.yaml").write_text(text)


def verify(cli, course: Path):
    return cli("--config", str(course / "grading.yaml"), "verify", "a99", "-j", "4")


def row(output: str, subject: str) -> str:
    return next(line for line in output.splitlines() if f" {subject} " in line)


def test_verify_passes_when_reference_full_stub_zero_and_mutants_caught(cli, course):
    add_mutant(course, "double_triples", CAUGHT)
    done = verify(cli, course)
    assert done.returncode == 0, done.stdout + done.stderr
    assert row(done.stdout, "reference").split()[-1] == "ok" and "20/20" in row(done.stdout, "reference")
    assert row(done.stdout, "stub").split()[-1] == "ok" and "0/20" in row(done.stdout, "stub")
    assert "fails 1/1 targeted" in row(done.stdout, "mutant double_triples")
    assert "1 assignment(s), 1 mutant(s): every check holds" in done.stdout
    # per mutant, whether the public tests alone catch it; per assignment, the share
    assert "mutant double_triples, public tests only" in done.stdout
    assert "a99_toy: public tests alone catch" in done.stdout


def test_verify_fails_when_a_common_mutant_escapes_the_public_tests(cli, course):
    add_mutant(course, "double_triples", CAUGHT)
    missed = CAUGHT.replace("np.asarray(x) * 3", "np.asarray(x) * 2 + 0")  # a bug no test sees
    add_mutant(course, "apply_adds_zero_common", "# feature: apply\n# common: true\n" + missed)
    done = verify(cli, course)
    assert done.returncode == 1
    assert "a `common: true` mutant must be caught by the public tests" in row(
        done.stdout, "mutant apply_adds_zero_common, public tests only")


def test_verify_names_every_mutant_that_is_missed_or_malformed(cli, course):
    add_mutant(course, "double_triples", CAUGHT)
    add_mutant(course, "apply_adds_zero", CAUGHT.replace("np.asarray(x) * 3", "np.asarray(x) * 2 + 0"))
    add_mutant(course, "find_twice", 'expect_fail: ["test_hidden.py::*"]\nreplace:\n  - {find: "self", with: "me"}\n')
    add_mutant(course, "targets_nothing", CAUGHT.replace("test_double_*", "test_nothing_*"))
    add_mutant(course, "typo_key", CAUGHT.replace("expect_fail", "expect_fails"))
    done = verify(cli, course)
    assert done.returncode == 1
    out = done.stdout
    assert row(out, "mutant double_triples").endswith("ok")
    assert "every test matching ['test_hidden.py::test_double_*'] passes: the suite misses this bug" in row(out, "mutant apply_adds_zero")
    assert "replace[0].find occurs" in row(out, "mutant find_twice") and "exactly once" in row(out, "mutant find_twice")
    assert "matches no test of the suite" in row(out, "mutant targets_nothing")
    assert "unknown key(s) expect_fails" in row(out, "mutant typo_key")
    assert "4 violation(s)" in out
    assert "a99_toy apply_adds_zero" not in done.stderr and "a99_toy mutant apply_adds_zero" in done.stderr


def test_verify_fails_when_the_stub_scores_or_the_reference_does_not(cli, course):
    solution = course / "solutions" / "a99_toy" / "toy.py"
    text = solution.read_text()
    text = text.replace("    # BEGIN SOLUTION Task 3: apply\n", "").replace("    return f(x) + 1\n    # END SOLUTION\n", "    return f(x) + 1\n")
    solution.write_text(text.replace("self.count += n", "self.count += n + 1"))
    done = verify(cli, course)
    assert done.returncode == 1
    assert "VIOLATION" in row(done.stdout, "stub") and "passes test_hidden.py::test_apply_calls_back" in row(done.stdout, "stub")
    reference = row(done.stdout, "reference")
    assert "VIOLATION" in reference and "test_hidden.py::test_counter_adds_and_forwards_operators (failed" in reference
