"""One base error for the tool's own failures, and the CLI's documented exit codes.

Every message says what is wrong, where, and how to fix it. Bad input from a student is
never raised as one of these past intake: it becomes feedback in the submission's result.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0               # the command completed (grading completed, whatever the scores)
    FAILED = 1           # check/verify/release --check found a problem it was asked to find
    USAGE = 2            # bad command line, bad grading.yaml, unknown assignment
    GRADER_ERROR = 3     # a fault of the grader itself (some results are grader-error)
    INTERRUPTED = 130


class AutograderError(Exception):
    """Base of the tool's own errors: one clear line for the user."""

    exit_code = ExitCode.USAGE


class ConfigError(AutograderError):
    """grading.yaml (or an override) is invalid; the message names file and line."""


class IntakeError(AutograderError):
    """A submission could not be accepted (missing file, unsafe archive, too large)."""

    exit_code = ExitCode.FAILED


class UnknownAssignment(AutograderError):
    """The assignment id or alias names no assignment of grading.yaml."""


class ReleaseError(AutograderError):
    """The solution or suite cannot be released as it is (bad markers, public tests using the reference)."""


class GraderFault(AutograderError):
    """The staff's fault (suite bug, trusted-side protocol bug): never a student's zero."""

    exit_code = ExitCode.GRADER_ERROR
