"""Diagnoses for a02, run only when a check fails, on the trusted side.

quadratic_smoothness: a wrong L is compared with what the usual shortcuts give on the same
matrix (the smallest eigenvalue, the largest entry, another eigenvalue, a power iteration
with a fixed number of steps), so the sentence says which shortcut the value matches.
"""
from __future__ import annotations

import numpy as np

from autograder.harness import first_true


def _near(a, b, rtol=1e-7) -> bool:
    try:
        return bool(np.isclose(float(a), float(b), rtol=rtol, atol=1e-12))
    except Exception:  # noqa: BLE001
        return False


def explain_smoothness(actual, A) -> str | None:
    A = np.asarray(A, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(A)
    top = float(eigenvalues[-1])
    below = eigenvalues[eigenvalues < top - 1e-9 * abs(top)]
    second = float(below[-1]) if len(below) else top
    return first_true([
        ("your L is the smallest eigenvalue: np.linalg.eigvalsh sorts ascending, the largest is the last one",
         lambda: len(below) > 0 and _near(actual, eigenvalues[0])),
        ("your L is an eigenvalue of A, but not the largest: a power iteration started from a vector orthogonal to "
         "the top eigenvector (e.g. all ones, or e_1) never finds it; compute the spectrum (np.linalg.eigvalsh)",
         lambda: any(_near(actual, value) for value in below)),
        ("your L is the largest entry of A, which is the largest eigenvalue only for diagonal matrices",
         lambda: _near(actual, A.max()) and not _near(actual, top)),
        ("your L lies just below the largest eigenvalue, within the gap to the second largest: a power iteration "
         "with a fixed number of steps has not converged when the two largest eigenvalues are this close "
         "(its error shrinks like (lambda_2 / lambda_1)^k); compute the spectrum (np.linalg.eigvalsh)",
         lambda: second - 1e-9 * abs(top) <= float(actual) < top and not _near(actual, top, rtol=1e-9)),
    ])


def close(a, b, rtol=1e-6, atol=1e-10) -> bool:
    try:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except Exception:  # noqa: BLE001
        return False


def forward_difference(f, x, h):
    x = np.array(x, dtype=np.float64)
    fx, out = f(x.copy()), np.zeros_like(x)
    for i in range(x.size):
        moved = x.copy()
        moved.flat[i] += h
        out.flat[i] = (f(moved) - fx) / h
    return out


def explain_numerical_gradient(actual, f, x, h) -> str | None:
    return first_true([
        ("your gradient matches the one-sided (forward) difference (f(x + h e_i) - f(x)) / h, whose error is "
         "O(h); use the central difference (f(x + h e_i) - f(x - h e_i)) / 2h (error O(h^2))",
         lambda: close(actual, forward_difference(f, x, h), rtol=1e-8)),
    ])


def _probe(build) -> bool:
    """Run a small experiment on the student's Value; an exception counts as not holding."""
    try:
        return bool(build())
    except Exception:  # noqa: BLE001
        return False


def _raises(build) -> bool:
    try:
        build()
    except Exception:  # noqa: BLE001
        return True
    return False


def _square(node):
    return node * node


def explain_value(student) -> str | None:
    """Small graphs with known answers, run on the student's Value, one convention each."""
    Value = student.Value

    def grad_of(build, at):
        x = Value(at)
        out = build(x)
        out.backward()
        return float(x.grad)

    def twice():
        x = Value(3.0)
        out = x * x
        out.backward()
        out.backward()
        return float(x.grad)

    return first_true([
        ("number - Value gives Value - number: __rsub__ must compute other - self (the operands swap)",
         lambda: _probe(lambda: abs((2.0 - Value(3.0)).data - 1.0) < 1e-12)),
        ("number / Value gives Value / number: __rtruediv__ must compute other / self (the operands swap)",
         lambda: _probe(lambda: abs((2.0 / Value(4.0)).data - 2.0) < 1e-12)),
        ("x + x gives x.grad = 1, not 2: the backward of __add__ assigns the parents' grads; accumulate them "
         "(+=), since a Value used twice receives a grad from each use",
         lambda: _probe(lambda: abs(grad_of(lambda x: x + x, 2.0) - 1.0) < 1e-12)),
        ("x * 2 + x * 3 gives x.grad = 2 or 3, not 5: the backward of __mul__ assigns the parents' grads; "
         "accumulate them (+=), since a Value used twice receives a grad from each use",
         lambda: _probe(lambda: grad_of(lambda x: x * 2.0 + x * 3.0, 1.0) in (2.0, 3.0))
         or _probe(lambda: abs(grad_of(lambda x: x * x, 3.0) - 3.0) < 1e-12)),
        ("the chain rules run from the leaves up: run the local backward functions in reverse topological order "
         "(the output first), so each node's grad is complete before it is passed on",
         lambda: _probe(lambda: grad_of(lambda x: _square(x * 3.0), 2.0) == 0.0)),
        ("backward() called twice doubles the grads: it restarts from zero (set every grad of the graph to 0, "
         "the output's to 1, before propagating)", lambda: _probe(lambda: abs(twice() - 12.0) < 1e-12)),
        ("x ** 0 fails at x = 0: its derivative is 0 (the rule n x^(n-1) divides by zero there for n = 0)",
         lambda: _raises(lambda: grad_of(lambda x: x ** 0, 0.0))
         or _probe(lambda: not np.isfinite(grad_of(lambda x: x ** 0, 0.0)))),
        ("tanh' is 1 - tanh^2, not 1 - tanh",
         lambda: _probe(lambda: abs(grad_of(lambda x: x.tanh(), 0.5) - (1 - np.tanh(0.5))) < 1e-9)),
        ("relu'(0) is 0 by convention (a mask x > 0, not x >= 0)",
         lambda: _probe(lambda: grad_of(lambda x: x.relu(), 0.0) == 1.0)),
    ])
