"""Diagnoses: a sentence that names the feature at fault, found by experiment on the trusted side.

A failing comparison says what differed; a diagnosis says why, in the lecture's words
("matches torch with weight_decay=0 but not with weight_decay=0.1: check where weight decay
enters the update"). Suites wrap a check in `diagnose(...)`: only when the check fails is
the explanation run (it may call the student again with one feature switched off), and
its sentence travels with the failure to the feedback, hidden tests included. A diagnosis
names a feature, never a hidden input.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

from autograder.sandbox.errors import StudentError

DIAGNOSIS_ATTRIBUTE = "autograder_diagnosis"

Explanation = str | Callable[[], str | None] | None


def attach(error: BaseException, sentence: str) -> None:
    """Record `sentence` on `error` (the first diagnosis attached wins: it is the innermost)."""
    if sentence and not getattr(error, DIAGNOSIS_ATTRIBUTE, None):
        try:
            setattr(error, DIAGNOSIS_ATTRIBUTE, sentence.strip())
        except AttributeError:  # an exception type with __slots__: nothing to attach to
            pass


def diagnosis_of(error: BaseException) -> str:
    """The diagnosis attached to `error` (or to the first error of a group), or ''."""
    while True:
        sentence = getattr(error, DIAGNOSIS_ATTRIBUTE, None)
        if sentence:
            return sentence
        if isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        else:
            return ""


def _explain(explanation: Explanation) -> str:
    if explanation is None or isinstance(explanation, str):
        return explanation or ""
    try:
        return explanation() or ""
    except Exception:  # noqa: BLE001 - an experiment that cannot run explains nothing; the failure stands
        return ""


@contextlib.contextmanager
def diagnose(explanation: Explanation) -> Iterator[None]:
    """Attach `explanation` (a sentence, or a callable run only on failure) to a failing check.

    Failures are assertion errors and the student's own errors; timeouts and crashes are
    left alone (an experiment would only wait again).
    """

    try:
        yield
    except (AssertionError, StudentError) as error:
        if not getattr(error, DIAGNOSIS_ATTRIBUTE, None):  # an inner diagnosis is closer to the fault
            attach(error, _explain(explanation))
        raise
    except BaseExceptionGroup as group:
        if group.subgroup((AssertionError, StudentError)) is not None and not diagnosis_of(group):
            attach(group, _explain(explanation))
        raise


def first_true(experiments: Iterable[tuple[str, Callable[[], bool]]]) -> str | None:
    """The sentence of the first experiment whose check holds, or None.

    Each experiment is (sentence, check): e.g. ("weight decay is applied after the update",
    lambda: matches(student_result, oracle(decay_after=True))). A check that raises counts
    as not holding.
    """
    for sentence, check in experiments:
        try:
            if check():
                return sentence
        except Exception:  # noqa: BLE001 - a failed experiment is evidence of nothing
            continue
    return None
