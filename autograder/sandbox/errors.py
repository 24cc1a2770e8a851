"""What can go wrong in a call into student code, as the trusted side sees it.

Each maps to a test status: StudentError -> error, StudentTimeout -> timeout,
WorkerCrashed -> crashed, SubmissionRejected -> the module could not even be imported.
"""
from __future__ import annotations


class StudentError(Exception):
    """Student code raised (or returned something that cannot cross). Status: error."""

    def __init__(self, type_name: str, message: str, traceback: str = "", *, from_worker: bool = False):
        # from_worker: type, message and traceback are the worker's (student-controlled) text;
        # otherwise the trusted side wrote them and they hold no student text.
        self.type_name, self.message, self.traceback = type_name, message, traceback
        self.from_worker = from_worker
        super().__init__(f"{type_name}: {message}")


class StudentTimeout(Exception):
    """A call into student code ran past its limit; the worker was killed. Status: timeout."""


class WorkerCrashed(Exception):
    """The worker died during a call (segfault, os._exit, out of memory). Status: crashed."""


class SubmissionRejected(Exception):
    """The submission cannot even be imported: every test fails with this reason."""
