"""CI's proof of the real course: the committed release is fresh and every suite is verified.

`autograder release all --check` fails naming stale files of assignments/; `autograder verify all`
grades each reference (full marks), stub (0) and mutant (loses points) through the sandbox.
"""
from autograder.course.reader import load_course
from autograder.commands.verify import mutants_dir

from ..conftest import ROOT

MIN_MUTANTS = 6


def test_every_assignment_with_a_suite_has_at_least_six_mutants():
    course = load_course(ROOT / "grading.yaml")
    short = {a.id: len(list(mutants_dir(course, a).glob("*.yaml"))) for a in course.assignments.values()
             if course.suite_dir(a).is_dir()}
    assert all(count >= MIN_MUTANTS for count in short.values()), f"mutants per assignment: {short}"


def test_course_release_is_fresh_and_every_suite_is_proven(cli):
    checked = cli("release", "all", "--check")
    verified = cli("verify", "all", timeout=3600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "every check holds" in verified.stdout
