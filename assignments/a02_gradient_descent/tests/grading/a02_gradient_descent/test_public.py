"""Public tests of a02 (gradient descent, forward-backward): run them with `autograder check a02`.

The graded (hidden) suite runs the same kinds of checks on more and harder inputs.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness.strategies import public_seeds, random_normal, shapes
from a02_diagnosis import explain_numerical_gradient, explain_smoothness, explain_value
from oracle import GRAPH_SEEDS
from autograder.harness import diagnose
from autograder.harness.compare import assert_close


# ----------------------------------------------------------------- Task 2.1

@given(kind=st.sampled_from(["quadratic", "trig", "quartic"]), seed=public_seeds(), shape=shapes(1, 2, 1, 3))
def test_numerical_gradient_matches_analytic_gradient(student, smooth_function, tol, kind, seed, shape):
    with diagnose(lambda: explain_numerical_gradient(actual, function.f, x, 1e-5)):
        function = smooth_function(kind, seed, shape)
        x = random_normal(seed + 1, shape)
        actual = student.numerical_gradient(function.f, x.copy())
        assert_close(actual, function.grad(x), f"numerical_gradient of {function.name} vs the analytic gradient",
                     tol=tol.ANALYTIC)


# ----------------------------------------------------------------- Task 2.2

def test_relative_error_examples(student):
    cases = [  # (a, b, expected): max_i |a_i - b_i| / max(1e-12, |a_i| + |b_i|), worked by hand
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.0),
        ([1.0, -2.0], [1.5, -2.0], 0.2),                  # 0.5 / 2.5
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 0.0),          # 0 / max(eps, 0) = 0
        ([[1e-3, 0.0], [4.0, -1.0]], [[2e-3, 0.0], [4.0, 1.0]], 1.0),   # the entry -1 vs 1: 2 / 2
        ([3.0, 1.0], [1.0, 1.0], 0.5),                    # 2 / 4
    ]
    for a, b, expected in cases:
        assert_close(student.relative_error(np.array(a), np.array(b)), expected, f"relative_error({a}, {b})")


@given(kind=st.sampled_from(["quadratic", "trig"]), seed=public_seeds())
def test_gradient_check_of_correct_and_wrong_gradients(student, smooth_function, tol, kind, seed):
    function = smooth_function(kind, seed, (3,))
    x = random_normal(seed + 1, (3,))
    error = student.gradient_check(function.f, function.grad, x.copy())
    assert float(error) < 1e-6, f"gradient_check of the correct gradient of {function.name} is {float(error):.3g}, expected < 1e-6"

    def wrong_grad(x):
        return 1.1 * function.grad(x)

    # |1.1 g - g| / (|1.1 g| + |g|) = 0.1 / 2.1 for every entry where g != 0
    assert_close(student.gradient_check(function.f, wrong_grad, x.copy()), 1 / 21,
                 f"gradient_check of 1.1 * the gradient of {function.name}", tol=tol.GRADIENT_CHECK)


# ----------------------------------------------------------------- Task 2.3

@given(seed=public_seeds(), n=st.integers(1, 4), num_steps=st.integers(0, 8))
def test_gradient_descent_trajectory(student, quadratic, tol, seed, n, num_steps):
    """On 1/2 x^T A x - b^T x the iterates are x_t = x* + (I - lr A)^t (x0 - x*)."""
    problem = quadratic(seed, n, n)
    x0 = random_normal(seed + 1, (n,))
    lr = 0.5 / problem.L
    step = np.eye(n) - lr * problem.A                       # (n, n)
    expected = np.stack([problem.x_star + np.linalg.matrix_power(step, t) @ (x0 - problem.x_star)
                         for t in range(num_steps + 1)])    # (T + 1, n)
    actual = student.gradient_descent(problem.grad, x0.copy(), lr, num_steps)
    assert_close(actual, expected, f"gradient_descent trajectory ({num_steps} steps, lr={lr:.4g}, n={n}) "
                 "vs the closed form x* + (I - lr A)^t (x0 - x*)", tol=tol.CLOSED_FORM)


# ----------------------------------------------------------------- Task 2.4

@given(seed=public_seeds(), n=st.integers(1, 5))
def test_quadratic_smoothness_is_largest_eigenvalue(student, tol, quadratic, seed, n):
    with diagnose(lambda: explain_smoothness(student.quadratic_smoothness(problem.A.copy()), problem.A)):
        problem = quadratic(seed, n, n)
        assert_close(student.quadratic_smoothness(problem.A.copy()), problem.L,
                     f"quadratic_smoothness of a {n}x{n} positive definite A (numpy.linalg.eigvalsh)", tol=tol.FLOAT64)


# ----------------------------------------------------------------- Task 2.5

def armijo_holds(f, x, g, alpha, c, slack=1e-12):
    """f(x - alpha g) <= f(x) - c alpha ||g||^2, up to `slack` relative to |f(x)|."""
    fx = f(x)
    return f(x - alpha * g) <= fx - c * alpha * float(np.sum(g * g)) + slack * (1.0 + abs(fx))


@given(seed=public_seeds(), n=st.integers(1, 4))
def test_line_search_armijo_step(student, quadratic, seed, n):
    """The step is alpha0 * 0.5**k, passes Armijo, and every earlier candidate fails it."""
    problem = quadratic(seed, n, n)
    x = random_normal(seed + 1, (n,)) * 3
    alpha0 = 4.0 / problem.L               # too long: a few halvings are needed
    alpha = float(student.backtracking_line_search(problem.f, problem.grad, x.copy(), alpha0))
    k = np.log2(alpha0 / alpha)
    assert abs(k - round(k)) < 1e-9 and 0 <= round(k) < 50, f"alpha={alpha:.6g} is not alpha0 * 0.5**k (alpha0={alpha0:.6g})"
    g = problem.grad(x)
    assert armijo_holds(problem.f, x, g, alpha, 1e-4), f"the Armijo condition fails at the returned alpha={alpha:.6g}"
    for j in range(round(k)):
        assert not armijo_holds(problem.f, x, g, alpha0 * 0.5 ** j, 1e-4, slack=-1e-12), (
            f"the returned alpha={alpha:.6g} is not the first: alpha0 * 0.5**{j} already satisfies the Armijo condition")


def test_line_search_hand_case_uses_the_squared_norm(student):
    """f = sum(x**2) at x = [[1.5, 2.0]]: g = [[3, 4]], ||g||^2 = 25 over all entries (||g|| = 5).
    With alpha0 = 0.8, beta = 0.5, c = 0.5: f(x - 0.8 g) = 2.25 > 6.25 - 0.5 * 0.8 * 25 = -3.75 fails,
    f(x - 0.4 g) = 0.25 <= 6.25 - 0.5 * 0.4 * 25 = 1.25 passes: the step is 0.4."""
    def f(x):
        return float(np.sum(np.asarray(x) ** 2))

    def grad(x):
        return 2 * np.asarray(x, dtype=np.float64)

    alpha = student.backtracking_line_search(f, grad, np.array([[1.5, 2.0]]), 0.8, 0.5, 0.5)
    assert_close(alpha, 0.4, "backtracking_line_search(sum(x**2), x=[[1.5, 2.0]], alpha0=0.8, beta=0.5, c=0.5) "
                 "(the Armijo condition subtracts c alpha ||g||^2)")


# ----------------------------------------------------------------- Tasks 2.6 and 2.7

EXPRESSIONS = {
    "a*b+a": lambda a, b: a * b + a,
    "(a/b).exp()-2*a.tanh()": lambda a, b: (a / b).exp() - 2.0 * a.tanh(),
    "(a*a).log()+1/b.sigmoid()": lambda a, b: (a * a).log() + 1 / b.sigmoid(),
    "(3-a).relu()**2+(-b)": lambda a, b: (3 - a).relu() ** 2 + (-b),
    "c=a+b; c*c-c/2": lambda a, b: (lambda c: c * c - c / 2)(a + b),
    "(2*a-b**3+1)/(b+5)": lambda a, b: (2 * a - b ** 3 + 1) / (b + 5),
}


@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_value_expression(student, graphs, name):
    with diagnose(lambda: explain_value(student)):
        import torch

        build = EXPRESSIONS[name]
        a, b = student.Value(1.5), student.Value(-0.75)
        out = build(a, b)
        out.backward()
        ta = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(-0.75, dtype=torch.float64, requires_grad=True)
        expected = build(ta, tb)
        expected.backward()
        assert_close(out.data, float(expected.detach()), f"value of {name} at a=1.5, b=-0.75", tol=graphs.tolerance)
        graphs.assert_grads_close({0: a.grad, 1: b.grad}, {0: float(ta.grad), 1: float(tb.grad)},
                                  f"{name} at a=1.5, b=-0.75 (v0 = a, v1 = b)")
        out.backward()   # a second backward() restarts from zero: the same grads, not twice them
        graphs.assert_grads_close({0: a.grad, 1: b.grad}, {0: float(ta.grad), 1: float(tb.grad)},
                                  f"{name} at a=1.5, b=-0.75 after a second out.backward() (grads restart from zero)")


@given(seed=GRAPH_SEEDS, num_leaves=st.integers(1, 3), num_ops=st.integers(1, 8))
def test_value_small_random_graph(student, graphs, seed, num_leaves, num_ops):
    with diagnose(lambda: explain_value(student)):
        graph = graphs.random(seed, num_leaves, num_ops)
        output = graph.size - 1
        nodes = graphs.build(student, graph)
        nodes[output].backward()
        values, expected = graphs.oracle(graph, output)
        what = f"the graph {graph.describe()}; backward() on v{output}"
        assert_close(nodes[output].data, values[output], f"{what}: value of v{output}", tol=graphs.tolerance)
        graphs.assert_grads_close({i: nodes[i].grad for i in expected}, expected, what)
