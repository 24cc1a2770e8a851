"""Hidden-only diagnoses for a02 (they re-implement parts of the answer, so they are never
released with the public tests): gradient_check's h, relative_error, gradient descent's
trajectory and the line search, each compared with a variant that has one known mistake.
"""
from __future__ import annotations

import numpy as np

from a02_diagnosis import close
from autograder.harness import first_true


def explain_gradient_check(actual, reference, f, grad_f, x, h) -> str | None:
    return first_true([
        ("gradient_check ignores its h: pass the given h on to numerical_gradient",
         lambda: not close(reference.gradient_check(f, grad_f, x.copy(), h), reference.gradient_check(f, grad_f, x.copy()))
         and close(actual, reference.gradient_check(f, grad_f, x.copy()), rtol=1e-6)),
    ])


def explain_relative_error(actual, a, b, eps) -> str | None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ratios = np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b))
    with np.errstate(all="ignore"):
        no_floor = np.abs(a - b) / (np.abs(a) + np.abs(b))
    return first_true([
        ("relative_error averages over the entries; it is the maximum over entries, max_i |a_i - b_i| / "
         "max(eps, |a_i| + |b_i|)", lambda: ratios.size > 1 and close(actual, ratios.mean()) and not close(actual, ratios.max())),
        ("relative_error divides by |a_i| + |b_i| without the eps floor: use max(eps, |a_i| + |b_i|) (0 / 0 is nan "
         "when both are 0, and tiny values blow up)",
         lambda: (np.isnan(float(actual)) and np.any(np.abs(a) + np.abs(b) == 0))
         or (not close(actual, ratios.max()) and close(actual, np.nanmax(no_floor)))),
    ])


def explain_trajectory(actual, grad_f, x0, lr, num_steps) -> str | None:
    x0 = np.asarray(x0, dtype=np.float64)
    rows = [x0]
    for _ in range(num_steps):
        rows.append(rows[-1] - lr * np.asarray(grad_f(rows[-1])))
    right = np.stack(rows)
    stale = np.stack([x0 - k * lr * np.asarray(grad_f(x0)) for k in range(num_steps + 1)])
    actual = np.asarray(actual, dtype=np.float64)
    return first_true([
        ("every step uses the gradient at x0: evaluate grad_f at the current point x_k (x_{k+1} = x_k - lr grad_f(x_k))",
         lambda: num_steps > 1 and close(actual, stale, rtol=1e-9)),
        ("the last row of the trajectory is not the last step: num_steps steps give num_steps + 1 rows, x_0 .. "
         "x_num_steps (a loop one step short?)",
         lambda: num_steps > 0 and actual.shape == right.shape and close(actual[:-1], right[:-1], rtol=1e-9)
         and not close(actual[-1], right[-1], rtol=1e-9)),
    ])


def line_search(f, grad_f, x, alpha0=1.0, beta=0.5, c=1e-4, max_iter=50, bug=None):
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(grad_f(x), dtype=np.float64)
    fx = f(x)
    norm = float(np.sqrt(np.sum(g * g))) if bug == "norm" else float(np.sum(g * g))
    alpha = alpha0
    for _ in range(max_iter):
        if f(x - alpha * g) <= fx - c * alpha * norm:
            return alpha / beta if bug == "previous" and alpha != alpha0 else alpha
        alpha = alpha * beta
    return alpha0 * beta ** (max_iter if bug == "exhausted" else max_iter - 1)


def explain_line_search(actual, f, grad_f, x, **kwargs) -> str | None:
    def matches(bug):
        expected = line_search(f, grad_f, x, **kwargs)
        variant = line_search(f, grad_f, x, bug=bug, **kwargs)
        return not close(variant, expected, rtol=1e-12) and close(actual, variant, rtol=1e-10)

    return first_true([
        ("your step matches the Armijo test with ||g|| where it takes the squared norm: f(x - alpha g) <= "
         "f(x) - c alpha ||g||^2", lambda: matches("norm")),
        ("your step is the candidate before the first passing one: return the first passing alpha "
         "(alpha0 beta^k for the smallest k that meets the Armijo condition)", lambda: matches("previous")),
        ("when no candidate passes, return the last candidate tried, alpha0 * beta^(max_iter - 1) (one shrink too many "
         "gives alpha0 * beta^max_iter)", lambda: matches("exhausted")),
    ])
