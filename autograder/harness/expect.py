"""Preconditions and expected exceptions, phrased for the student who reads the failure.

Trusted code. `require` fails with the message alone (a bare `assert` would append
pytest's introspection, which shows the call's arguments: hidden inputs). `expect_raises`
turns "the student's call should raise ValueError" into one honest sentence either way.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy as np

from autograder.sandbox.errors import StudentError
from autograder.sandbox.remote import RemoteObject


def require(condition: Any, message: str) -> None:
    """Fail the test with `message` alone when `condition` is false."""
    if not condition:
        raise AssertionError(message)


def is_builtin_exception(type_name: str) -> bool:
    """True for the names of Python's own exception classes (ValueError, ZeroDivisionError, ...)."""
    candidate = getattr(builtins, type_name, None)
    return isinstance(candidate, type) and issubclass(candidate, BaseException)


def exception_phrase(error: StudentError) -> str:
    """'raised ZeroDivisionError', never a class name or message the student wrote."""
    if error.type_name == "ForbiddenCallError":  # the sandbox's guard, not the student's class
        return f"called something this assignment forbids ({error.message.split(';')[0][:200]})"
    if is_builtin_exception(error.type_name):
        return f"raised {error.type_name}"
    return "raised an exception of a class defined in your code"


def returned_phrase(value: Any) -> str:
    """What a call returned, without echoing student-controlled text: numbers, shapes and types only."""
    if value is None:
        return "returned None"
    if isinstance(value, RemoteObject):  # an object of the student's own class: never call into it here
        return "returned an object of a class defined in your code"
    if isinstance(value, bool):
        return f"returned {value}"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"returned {float(value):.6g}" if isinstance(value, (float, np.floating)) else f"returned {int(value)}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"returned a {type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, (list, tuple, dict)):
        return f"returned a {type(value).__name__} of {len(value)} items"
    return f"returned a value of type {type(value).__name__}"


def _builtin_subclass(raised: str, expected: str) -> bool:
    """ZeroDivisionError counts as the ArithmeticError it is (both Python's own classes)."""
    if not (is_builtin_exception(raised) and is_builtin_exception(expected)):
        return False
    return issubclass(getattr(builtins, raised), getattr(builtins, expected))


def expect_raises(exception: str | type[BaseException], call: Callable[[], Any], what: str) -> StudentError:
    """Run `call` (a student call, e.g. `lambda: student.cosine_lr(5, warmup_steps=10)`) and
    require it to raise the built-in `exception` (a subclass of it passes too).

    `what` names the call (public tests) or the rule (hidden tests), e.g.
    "cosine_lr with cosine_steps <= warmup_steps". Returns the student's error.
    """
    name = exception if isinstance(exception, str) else exception.__name__
    try:
        value = call()
    except StudentError as error:
        if error.type_name == name or name in getattr(error, "builtin_bases", ()) or _builtin_subclass(error.type_name, name):
            return error
        raise AssertionError(f"{what} should raise {name}; it {exception_phrase(error)}") from None
    raise AssertionError(f"{what} should raise {name}; it {returned_phrase(value)}")
