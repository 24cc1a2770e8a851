"""Scoring: group points shared by passing tests, feedback filtered by policy, faults flagged."""

from autograder.course import records
from autograder.course.reader import load_course
from autograder.pipeline.score import feedback_text, score_tests, submission_status, total

from ..conftest import TOY_COURSE

ASSIGNMENT = load_course(TOY_COURSE / "grading.yaml").assignment("a99")
IDS = ["test_public.py::test_double_matches_twice", "test_hidden.py::test_double_matches_reference",
       "test_hidden.py::test_counter_adds_and_forwards_operators", "test_hidden.py::test_apply_calls_back"]


def run_of(*outcomes: records.TestOutcome, **fields) -> records.SuiteRun:
    return records.SuiteRun(outcomes=tuple(outcomes), **fields)


def test_passing_tests_earn_their_group_points():
    run = run_of(records.TestOutcome(IDS[0], records.PASSED), records.TestOutcome(IDS[1], records.FAILED, "wrong"),
                 records.TestOutcome(IDS[2], records.PASSED), records.TestOutcome(IDS[3], records.ERROR, "raised"))
    tests = score_tests(ASSIGNMENT, IDS, run)
    assert [t.score for t in tests] == [4, 0, 6, 0]
    assert total(tests) == 10
    assert submission_status(tests, run) == (records.GRADED, "")


def test_hidden_feedback_never_shows_the_example_but_public_does():
    outcome = records.TestOutcome(IDS[1], records.FAILED, "double of a matrix differs", example="Falsifying example: rows=3")
    hidden = score_tests(ASSIGNMENT, [IDS[1]], run_of(outcome))[0]
    assert hidden.feedback == "double of a matrix differs"
    public = score_tests(ASSIGNMENT, [IDS[0]], run_of(records.TestOutcome(IDS[0], records.FAILED, "differs", example="x=[1.0]")))[0]
    assert "x=[1.0]" in public.feedback
    assert feedback_text(outcome, "status") == ""


def test_a_test_that_never_reported_is_a_grader_error_not_a_zero_in_silence():
    run = run_of(records.TestOutcome(IDS[0], records.PASSED), fault="the trusted test run stopped before its end")
    tests = score_tests(ASSIGNMENT, IDS, run)
    assert {t.status for t in tests[1:]} == {records.GRADER_ERROR}
    status, reason = submission_status(tests, run)
    assert status == records.GRADER_ERROR and "regraded" in reason


def test_a_submission_over_its_time_limit_times_out_the_tests_it_did_not_reach():
    tests = score_tests(ASSIGNMENT, IDS, run_of(records.TestOutcome(IDS[0], records.PASSED), fault="timeout"))
    assert [t.status for t in tests] == [records.PASSED] + [records.TIMEOUT] * 3
    assert submission_status(tests, run_of(fault="timeout"))[0] == records.GRADED


def test_an_unimportable_module_rejects_the_submission():
    run = run_of(records.TestOutcome(IDS[0], records.ERROR, "x"), rejected="SyntaxError: bad")
    tests = score_tests(ASSIGNMENT, IDS[:1], run)
    assert submission_status(tests, run)[0] == records.REJECTED


def test_hidden_feedback_drops_pytest_introspection_that_would_show_inputs():
    message = ("counter after add\nassert 40 == 41\n +  where 40 = <function student.apply>(<function trusted>, 4)")
    outcome = records.TestOutcome(IDS[3], records.FAILED, message)
    hidden = score_tests(ASSIGNMENT, [IDS[3]], run_of(outcome))[0]
    assert hidden.feedback == "counter after add\nassert 40 == 41"
    assert "where" in feedback_text(outcome, "full")
