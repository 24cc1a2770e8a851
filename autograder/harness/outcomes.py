"""How a grading test's exception becomes a status and a message a student may read.

Whose fault (DESIGN.md): the student's error, timeout or crash; a failed comparison; or a
grader-error (a fault of trusted code on trusted inputs). Hidden tests never show text the
student controls beyond a built-in exception type and the student's own file:line.
"""
from __future__ import annotations

import builtins
import re
from pathlib import Path

from autograder.course import records
from autograder.errors import GraderFault
from autograder.sandbox.errors import (
    StudentError,
    StudentTimeout,
    SubmissionRejected,
    WorkerCrashed,
)

GRADER_FAULTS = (NameError, ImportError, SyntaxError, UnboundLocalError, GraderFault)


def notes(error: BaseException) -> str:
    """Hypothesis' notes on a failure (the falsifying example), for public feedback."""
    texts = getattr(error, "__notes__", None) or []
    return "\n".join(str(n) for n in texts if "Falsifying" in str(n) or "example" in str(n).lower() or "=" in str(n))[:4000]


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def stable(text: str) -> str:
    """Drop memory addresses, so the same run gives the same feedback."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                               if isinstance(value, type) and issubclass(value, BaseException))


RUNTIME_EXCEPTIONS = frozenset({"ForbiddenCallError", "ForbiddenImportError", "RefusedOperation", "UnsupportedValue"})


_QUOTED = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


_STUDENT_OBJECT = re.compile(r"<student [^<>]{0,200}object>")


_STUDENT_FRAME = re.compile(r'File "([\w.-]{1,80}\.py)", line (\d{1,6})')


def redact(text: str) -> str:
    """Student-controlled text out of a hidden test's message: quoted strings and object type names."""
    return _STUDENT_OBJECT.sub("<student object>", _QUOTED.sub("'…'", text))


def _where(trace: str) -> str:
    """' (at file.py:LINE)': the innermost frame of the student's own files in their traceback, if any."""
    frames = _STUDENT_FRAME.findall(trace or "")
    return f" (at {frames[-1][0]}:{frames[-1][1]})" if frames else ""


def classify(error: BaseException, phase: str, hidden: bool = False) -> tuple[str, str, str]:
    """(status, message, traceback) for an exception raised by a grading test.

    For hidden tests (`hidden`), no student-controlled text passes: an exception the student's
    code raised shows as its built-in type and the student's own file:line, nothing else.
    """
    status, message, trace = _classify(error, phase, hidden)
    if hidden:
        message, trace = redact(message), ""
    return status, stable(message), stable(trace)


def _classify(error: BaseException, phase: str, hidden: bool = False) -> tuple[str, str, str]:
    from hypothesis.errors import Flaky, HypothesisException

    leaf = _first_leaf(error)
    if isinstance(leaf, SubmissionRejected):
        return records.ERROR, f"the submission could not be loaded: {leaf}", ""
    if isinstance(leaf, StudentError):
        if hidden and leaf.from_worker:
            known = leaf.type_name in BUILTIN_EXCEPTIONS or leaf.type_name in RUNTIME_EXCEPTIONS
            kind = leaf.type_name if known else "an exception of a class your code defines"
            return records.ERROR, f"your code raised {kind}{_where(leaf.traceback)}", ""
        return records.ERROR, f"your code raised {leaf.type_name}: {leaf.message}", leaf.traceback
    if isinstance(leaf, StudentTimeout):
        return records.TIMEOUT, str(leaf), ""
    if isinstance(leaf, WorkerCrashed):
        return records.CRASHED, str(leaf), ""
    if isinstance(leaf, MemoryError):  # the trusted process's own cap: what the submission sent filled it
        return records.FAILED, ("the grader ran out of memory holding what your code returned or passed to the "
                                "grader's functions"), ""
    if isinstance(leaf, Flaky):
        return records.FAILED, "the same inputs gave different results on a second run (is your code deterministic?)", ""
    if isinstance(leaf, AssertionError):
        return records.FAILED, _student_safe(str(leaf)[:4000]) or "assertion failed", ""
    if type(leaf).__name__ == "Failed" and "DID NOT RAISE" in str(leaf):  # pytest.raises(StudentError) in a suite
        return records.FAILED, "the call should have raised an exception, but it returned normally", ""
    if isinstance(leaf, (HypothesisException, *GRADER_FAULTS)) or phase != "call":
        return records.GRADER_ERROR, f"grading test fault ({type(leaf).__name__}: {str(leaf)[:500]}); staff will rerun", ""
    if hidden:
        return records.FAILED, f"the returned value could not be used ({type(leaf).__name__})", ""
    return records.FAILED, _student_safe(f"the returned value could not be used: {type(leaf).__name__}: {str(leaf)[:2000]}"), ""


_INTERNAL_NAMES = [(re.compile(r"<class '?autograder\.[\w.]*StudentError'?>|\bautograder\.boundary\.StudentError\b|\bStudentError\b"),
                    "an exception"), (re.compile(r"\bautograder\.[\w.]+"), "the grader")]


def _student_safe(message: str) -> str:
    """A failure message without the grader's own class and module names (a suite that
    checked `pytest.raises(StudentError)` would otherwise show them to a student)."""
    for pattern, replacement in _INTERNAL_NAMES:
        message = pattern.sub(replacement, message)
    return message


def device_names(devices: set[str]) -> str:
    """The devices the tests ran on, by name: "cpu (model)", "cuda (GPU model)"."""
    names = []
    for device in sorted(devices):
        model = ""
        if device == "cuda":
            import torch

            model = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
        else:
            try:
                model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                              if line.startswith("model name")), "")
            except OSError:
                pass
        names.append(f"{device} ({model})" if model else device)
    return ", ".join(names)
