"""expect_raises / require and diagnose: the sentences a student reads when a call misbehaves.

A student's error is simulated the way the sandbox delivers it: a StudentError carrying
only the type's name and the message. What a call returned is described by numbers,
shapes and types, never by text the student controls (hidden tests show these sentences).
"""
import numpy as np
import pytest
import torch

from autograder.harness.diagnosis import DIAGNOSIS_ATTRIBUTE, diagnose, diagnosis_of, first_true
from autograder.harness.expect import exception_phrase, expect_raises, require, returned_phrase
from autograder.sandbox.errors import StudentError, StudentTimeout, WorkerCrashed
from autograder.sandbox.remote import RemoteObject

SECRET = "hidden input 0.7311 leaked"


def raises(type_name: str, message: str = SECRET):
    """A student call that raises `type_name` in the worker."""
    def call():
        raise StudentError(type_name, message)
    return call


def failure_of(exception, call, what="cosine_lr with warmup_steps > total_steps") -> str:
    with pytest.raises(AssertionError) as failure:
        expect_raises(exception, call, what)
    return str(failure.value)


# --------------------------------------------------------------------------- require


def test_require_passes_silently_on_a_true_condition():
    require(True, "never shown")
    require([0], "a non-empty list is true")


def test_require_fails_with_the_message_alone():
    with pytest.raises(AssertionError) as failure:
        require(0, "softmax rows must sum to 1")
    assert str(failure.value) == "softmax rows must sum to 1"
    assert failure.value.__cause__ is None and failure.value.__context__ is None


# --------------------------------------------------------------------------- expect_raises


def test_the_expected_builtin_exception_is_returned_to_the_suite():
    error = expect_raises(ValueError, raises("ValueError", "bad lr"), "cosine_lr")
    assert isinstance(error, StudentError) and error.message == "bad lr"
    assert expect_raises("ZeroDivisionError", raises("ZeroDivisionError"), "x").type_name == "ZeroDivisionError"


def test_a_returned_number_is_shown():
    assert failure_of(ValueError, lambda: 0.25) == \
        "cosine_lr with warmup_steps > total_steps should raise ValueError; it returned 0.25"
    assert failure_of("ValueError", lambda: 3).endswith("it returned 3")


@pytest.mark.parametrize("value, phrase", [
    (None, "returned None"),
    (False, "returned False"),
    (np.int64(7), "returned 7"),
    (np.float32(0.1), "returned 0.1"),
    (1 / 3, "returned 0.333333"),
    (float("nan"), "returned nan"),
    (np.zeros((2, 3)), "returned a ndarray of shape (2, 3)"),
    (torch.zeros(4), "returned a Tensor of shape (4,)"),
    ([SECRET, SECRET], "returned a list of 2 items"),
    ({"k": SECRET}, "returned a dict of 1 items"),
    (SECRET, "returned a value of type str"),
    (SECRET.encode(), "returned a value of type bytes"),
])
def test_what_was_returned_is_told_by_numbers_shapes_and_types(value, phrase):
    assert returned_phrase(value) == phrase


def test_a_returned_string_is_never_echoed():
    text = failure_of(ValueError, lambda: SECRET)
    assert text.endswith("should raise ValueError; it returned a value of type str")
    assert SECRET not in text


def test_another_builtin_exception_is_named_but_its_message_is_not_shown():
    text = failure_of(ValueError, raises("TypeError"))
    assert text == "cosine_lr with warmup_steps > total_steps should raise ValueError; it raised TypeError"


def test_a_student_defined_exception_class_is_never_named():
    text = failure_of(ValueError, raises("WarmupTooLongError"))
    assert text.endswith("should raise ValueError; it raised an exception of a class defined in your code")
    assert "WarmupTooLongError" not in text and SECRET not in text


@pytest.mark.parametrize("type_name, phrase", [
    ("ZeroDivisionError", "raised ZeroDivisionError"),
    ("KeyboardInterrupt", "raised KeyboardInterrupt"),     # a BaseException is still Python's own
    ("MyError", "raised an exception of a class defined in your code"),
    ("print", "raised an exception of a class defined in your code"),   # a builtin, but no exception
    ("ProtocolViolation", "raised an exception of a class defined in your code"),
])
def test_exception_phrase_names_only_pythons_own_exception_classes(type_name, phrase):
    assert exception_phrase(StudentError(type_name, SECRET)) == phrase


def test_the_expectation_reports_what_failed_not_the_traceback_chain():
    with pytest.raises(AssertionError) as failure:
        expect_raises(ValueError, raises("TypeError"), "f")
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_a_subclass_reported_by_its_builtin_bases_passes():
    error = StudentError("WarmupTooLongError", "x")
    error.builtin_bases = ("ValueError", "Exception")

    def call():
        raise error
    assert expect_raises(ValueError, call, "f") is error


def test_a_builtin_subclass_of_the_expected_exception_passes():
    expect_raises(ArithmeticError, raises("ZeroDivisionError"), "f")
    expect_raises(LookupError, raises("KeyError"), "f")


class _Session:
    """Enough of a Session for a RemoteObject: the worker answers every getattr with the student's error."""

    generation = 1

    def request(self, header, payload):
        raise StudentError("AttributeError", f"'LRSchedule' object has no attribute {header.get('name')!r}")

    def release(self, generation, handle_id):
        pass


def test_a_returned_student_object_is_described_without_calling_into_it():
    session = _Session()
    handle = RemoteObject._make(session, 1, 7, "LRSchedule", False)
    text = failure_of(ValueError, lambda: handle)
    assert "should raise ValueError; it returned" in text


# --------------------------------------------------------------------------- diagnose


def test_a_passing_check_gets_no_diagnosis_and_the_experiment_never_runs():
    runs = []
    with diagnose(lambda: runs.append(1) or "never"):
        pass
    assert runs == []


def test_a_failing_check_carries_the_sentence_and_the_original_error():
    with pytest.raises(AssertionError, match="^m: 1 of 3 entries differ$") as failure:
        with diagnose("check where weight decay enters the update"):
            raise AssertionError("m: 1 of 3 entries differ")
    assert diagnosis_of(failure.value) == "check where weight decay enters the update"


def test_the_experiment_runs_once_and_only_on_failure():
    runs = []

    def experiment():
        runs.append(1)
        return "  matches torch with weight_decay=0 but not 0.1  \n"
    with pytest.raises(AssertionError) as failure:
        with diagnose(experiment):
            raise AssertionError("differs")
    assert runs == [1]
    assert diagnosis_of(failure.value) == "matches torch with weight_decay=0 but not 0.1"


def test_a_students_error_gets_the_diagnosis_too():
    with pytest.raises(StudentError) as failure:
        with diagnose("bias correction divides by zero at step 0"):
            raises("ZeroDivisionError")()
    assert diagnosis_of(failure.value) == "bias correction divides by zero at step 0"


@pytest.mark.parametrize("error", [StudentTimeout("ran past 30 s"), WorkerCrashed("segfault"), KeyError("x")])
def test_timeouts_crashes_and_grader_errors_are_left_alone(error):
    runs = []
    with pytest.raises(type(error)) as failure:
        with diagnose(lambda: runs.append(1) or "sentence"):
            raise error
    assert runs == [] and diagnosis_of(failure.value) == ""


@pytest.mark.parametrize("experiment", [
    lambda: 1 / 0,
    raises("AttributeError"),                            # the experiment called the student again
    lambda: None,
    lambda: "",
])
def test_an_experiment_that_cannot_explain_leaves_the_failure_as_it_was(experiment):
    with pytest.raises(AssertionError, match="^differs$") as failure:
        with diagnose(experiment):
            raise AssertionError("differs")
    assert diagnosis_of(failure.value) == ""


def test_an_experiment_that_times_out_explains_nothing():
    def experiment():
        raise StudentTimeout("ran past 30 s")
    with pytest.raises(AssertionError) as failure:
        with diagnose(experiment):
            raise AssertionError("differs")
    assert diagnosis_of(failure.value) == ""


def test_the_innermost_diagnosis_wins():
    with pytest.raises(AssertionError) as failure:
        with diagnose("outer: the whole optimizer step"):
            with diagnose("inner: the momentum buffer"):
                raise AssertionError("differs")
    assert diagnosis_of(failure.value) == "inner: the momentum buffer"


def test_an_outer_diagnosis_applies_when_the_inner_one_explains_nothing():
    with pytest.raises(AssertionError) as failure:
        with diagnose("outer"):
            with diagnose(lambda: None):
                raise AssertionError("differs")
    assert diagnosis_of(failure.value) == "outer"


def test_an_outer_experiment_is_not_run_once_an_inner_diagnosis_exists():
    runs = []
    with pytest.raises(AssertionError):
        with diagnose(lambda: runs.append(1) or "outer"):
            with diagnose("inner"):
                raise AssertionError("differs")
    assert runs == []


def test_an_error_that_refuses_attributes_is_reraised_without_a_diagnosis():
    class Frozen(AssertionError):
        def __setattr__(self, name, value):
            if name == DIAGNOSIS_ATTRIBUTE:
                raise AttributeError(name)
            super().__setattr__(name, value)
    with pytest.raises(Frozen, match="^differs$") as failure:
        with diagnose("sentence"):
            raise Frozen("differs")
    assert diagnosis_of(failure.value) == ""


# --------------------------------------------------------------------------- diagnosis_of and groups


def test_an_error_without_a_diagnosis_has_none():
    assert diagnosis_of(AssertionError("x")) == ""


def test_diagnosis_of_looks_into_exception_groups():
    inner = AssertionError("differs")
    setattr(inner, DIAGNOSIS_ATTRIBUTE, "the momentum buffer")
    group = ExceptionGroup("hypothesis found 2 failures", [inner, AssertionError("other")])
    assert diagnosis_of(group) == "the momentum buffer"
    assert diagnosis_of(ExceptionGroup("outer", [group])) == "the momentum buffer"


def test_a_diagnosed_group_speaks_for_itself():
    first = AssertionError("a")
    setattr(first, DIAGNOSIS_ATTRIBUTE, "first")
    group = ExceptionGroup("g", [first])
    setattr(group, DIAGNOSIS_ATTRIBUTE, "group")
    assert diagnosis_of(group) == "group"


def test_a_group_is_read_through_its_first_error_as_the_status_is():
    second = AssertionError("b")
    setattr(second, DIAGNOSIS_ATTRIBUTE, "second")
    assert diagnosis_of(ExceptionGroup("g", [AssertionError("a"), second])) == ""


def test_diagnoses_raised_in_hypothesis_style_groups_are_found():
    errors = []
    for sentence in ("first failure", "second failure"):
        try:
            with diagnose(sentence):
                raise AssertionError(sentence)
        except AssertionError as error:
            errors.append(error)
    assert diagnosis_of(ExceptionGroup("2 distinct failures", errors)) == "first failure"


def test_a_check_failing_with_a_group_of_assertions_is_diagnosed():
    with pytest.raises(ExceptionGroup) as failure:
        with diagnose("check the bias correction"):
            raise ExceptionGroup("2 distinct failures", [AssertionError("a"), AssertionError("b")])
    assert diagnosis_of(failure.value) == "check the bias correction"


# --------------------------------------------------------------------------- first_true


def test_first_true_names_the_first_experiment_that_holds():
    calls = []
    experiments = [
        ("decay after the update", lambda: calls.append("after") or False),
        ("decay inside the gradient", lambda: calls.append("inside") or True),
        ("never tried", lambda: calls.append("never") or True),
    ]
    assert first_true(experiments) == "decay inside the gradient"
    assert calls == ["after", "inside"]


def test_an_experiment_that_raises_counts_as_not_holding():
    assert first_true([("crashes", lambda: 1 / 0), ("student error", raises("ValueError")),
                       ("holds", lambda: True)]) == "holds"


def test_first_true_is_none_when_nothing_holds():
    assert first_true([]) is None
    assert first_true([("no", lambda: False), ("no either", lambda: 0)]) is None


def test_first_true_is_lazy_as_an_explanation():
    runs = []
    with diagnose(lambda: first_true([("found", lambda: runs.append(1) or True)])):
        pass
    assert runs == []
    with pytest.raises(AssertionError) as failure:
        with diagnose(lambda: first_true([("found", lambda: runs.append(1) or True)])):
            raise AssertionError("differs")
    assert runs == [1] and diagnosis_of(failure.value) == "found"
