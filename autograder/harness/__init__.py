"""The suite author's kit: everything a grading test needs, from one import.

    from autograder.harness import assert_close, expect_raises, diagnose, require, FLOAT32
    from autograder.harness.strategies import hidden_seeds, random_tensor, shapes

Fixtures come from the grading plugin (loaded by the grader): `student` (the student's
module in the sandboxed worker), `reference` (the reference solution), `probe` (op trace,
autograd, peak memory, numpy warnings inside the worker), `device` and `assignment`.
Trusted oracles live in `tests/grading/<id>/oracle.py`. See docs/writing-grading-tests.md.
"""
from autograder.sandbox.errors import StudentError
from autograder.harness.compare import (BFLOAT16, EXACT, FLOAT16, FLOAT32, FLOAT64, Tolerance, assert_close,
                                        assert_equal, tolerance_for)
from autograder.harness.diagnosis import diagnose, first_true
from autograder.harness.expect import expect_raises, require

__all__ = [
    "BFLOAT16", "EXACT", "FLOAT16", "FLOAT32", "FLOAT64", "StudentError", "Tolerance", "assert_close",
    "assert_equal", "diagnose", "expect_raises", "first_true", "require", "tolerance_for",
]
