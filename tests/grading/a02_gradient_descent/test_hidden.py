"""Hidden tests of a02: inputs differ from the public ones; messages never show the inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from autograder.harness.strategies import hidden_seeds, random_normal, shapes
from a02_diagnosis import explain_numerical_gradient, explain_smoothness
from a02_hidden_diagnosis import explain_gradient_check, explain_line_search, explain_relative_error, explain_trajectory
from autograder.harness import diagnose
from autograder.harness.compare import Tolerance, assert_close

# Hidden failures never show their inputs, so shrinking them buys nothing and costs ~100 more
# calls per failing test (a minute for a stub). The plugin's `grading` profile is inherited.

ALL_KINDS = ["quadratic", "trig", "logsumexp", "quartic"]
SMALL_SHAPES = st.one_of(st.just(()), shapes(1, 3, 1, 3)).filter(lambda s: int(np.prod(s)) <= 12)


# ----------------------------------------------------------------- Task 2.1: numerical gradient

@given(kind=st.sampled_from(ALL_KINDS), seed=hidden_seeds(), shape=SMALL_SHAPES,
       h=st.sampled_from([1e-5, 1e-5, 1e-4, 1e-6]), scale=st.sampled_from([0.5, 2.0, 30.0]))
def test_numerical_gradient_matches_reference_any_shape(student, reference, smooth_function, tol, kind, seed, shape, h, scale):
    with diagnose(lambda: explain_numerical_gradient(actual, function.f, x, h)):
        assume(not (kind == "quartic" and scale > 2))       # keep |f| moderate: rounding is eps |f| / h
        function = smooth_function(kind, seed + 7, shape)
        x = random_normal(seed, shape, scale=scale)
        actual = student.numerical_gradient(function.f, x.copy(), h)
        expected = reference.numerical_gradient(function.f, x.copy(), h)
        assert_close(actual, expected, f"numerical_gradient of a {kind} function (central differences)",
                     tol=tol.numerical_gradient(abs(function.f(x)), h))


@given(seed=hidden_seeds(), shape=shapes(1, 2, 1, 3), h=st.sampled_from([1e-2, 3e-2]))
def test_numerical_gradient_uses_the_given_h(student, reference, smooth_function, tol, seed, shape, h):
    with diagnose(lambda: explain_numerical_gradient(student.numerical_gradient(function.f, x.copy(), h), function.f, x, h)):
        function = smooth_function("trig", seed + 29, shape)  # |f'''| ~ 1: the h^2 error is visible
        x = random_normal(seed + 31, shape)
        assert_close(student.numerical_gradient(function.f, x.copy(), h),
                     reference.numerical_gradient(function.f, x.copy(), h),
                     "numerical_gradient with a large h (central differences with the given h)",
                     tol=tol.numerical_gradient(abs(function.f(x)), h))


@given(seed=hidden_seeds(), shape=st.one_of(st.just(()), shapes(1, 2, 1, 3)), h=st.sampled_from([1e-5, 1e-3]))
def test_numerical_gradient_evaluates_x_plus_minus_h_and_restores(student, smooth_function, seed, shape, h):
    """Every point f sees is x with one entry moved by +h or -h; the others are x's own."""
    function = smooth_function("quadratic", seed + 41, shape)
    x = random_normal(seed + 43, shape, scale=3.0)
    seen = []

    def recording_f(point):
        seen.append(np.array(point, dtype=np.float64, copy=True))
        return function.f(point)

    student.numerical_gradient(recording_f, x.copy(), h)
    flat_x = x.ravel()
    near = 1e-12 * (1.0 + np.abs(flat_x))                  # an ulp or two of drift is fine
    moved = set()
    for point in seen:
        assert point.shape == x.shape, f"f was called with an array of shape {point.shape}, expected {x.shape}"
        delta = point.ravel() - flat_x
        off = np.flatnonzero(np.abs(delta) > near)
        assert len(off) <= 1, (
            f"f was called at a point where {len(off)} entries differ from x: x must be restored after "
            f"each entry (or a fresh copy perturbed), so that only one entry moves at a time")
        if len(off) == 1:
            i = int(off[0])
            step = delta[i]
            assert abs(abs(step) - h) <= 1e-9 * h + 4 * near[i], (
                f"f was called with one entry moved by {step:.6g}; central differences move it by +-h = {h:g}")
            moved.add((i, step > 0))
    missing = [(i, sign) for i in range(flat_x.size) for sign in (True, False) if (i, sign) not in moved]
    assert not missing, f"f was never evaluated at x {'+' if missing[0][1] else '-'} h e_i for entry {missing[0][0]}"


# ----------------------------------------------------------------- Task 2.2: relative error, gradient check

@given(seed=hidden_seeds(), shape=shapes(1, 3, 1, 5), equal_fraction=st.sampled_from([0.0, 0.5]),
       zeros=st.booleans(), eps=st.sampled_from([1e-12, 1e-12, 1e-3, 1.0]), scale=st.sampled_from([1e-9, 1.0, 1e6]))
def test_relative_error_matches_reference(student, reference, seed, shape, equal_fraction, zeros, eps, scale):
    with diagnose(lambda: explain_relative_error(actual, a, b, eps)):
        rng = np.random.default_rng(seed)
        a = random_normal(seed, shape, scale=scale)
        b = a + random_normal(seed + 1, shape, scale=scale * 1e-3) * (rng.random(shape) >= equal_fraction)
        if zeros:
            mask = rng.random(shape) < 0.5
            a[mask], b[mask] = 0.0, 0.0
        expected = reference.relative_error(a.copy(), b.copy(), eps)
        actual = student.relative_error(a.copy(), b.copy(), eps)
        assert_close(actual, expected, "relative_error (max over entries, with the eps floor)")


def test_relative_error_small_values_use_eps(student):
    with diagnose(lambda: explain_relative_error(student.relative_error(a, b, eps), a, b, eps)):
        cases = [  # (a, b, eps, expected): max_i |a_i - b_i| / max(eps, |a_i| + |b_i|)
            (np.array([1e-14]), np.array([0.0]), 1e-12, 1e-2),
            (np.array([1e-14, 3.0]), np.array([0.0, 1.0]), 1.0, 0.5),
            (np.array([0.0, 0.0]), np.array([0.0, 0.0]), 1e-12, 0.0),
            (np.array([[2.0, -2.0]]), np.array([[2.0, 2.0]]), 1e-12, 1.0),
            (np.array([5.0, 1.0]), np.array([5.0, 1.0]), 1e-12, 0.0),
        ]
        for index, (a, b, eps, expected) in enumerate(cases):
            assert_close(student.relative_error(a, b, eps), expected, f"relative_error, hand-made case {index}")


def _wrong_gradients(grad, rng):
    """A correct gradient and plausible wrong ones (scaled, sign flipped, one entry off)."""
    index = rng.integers(1 << 30)

    def scaled(x):
        return 0.9 * grad(x)

    def flipped(x):
        return -grad(x)

    def one_off(x):
        g = np.array(grad(x), dtype=np.float64)
        g.flat[index % g.size] += 0.1
        return g
    return [grad, scaled, flipped, one_off]


@given(kind=st.sampled_from(ALL_KINDS), seed=hidden_seeds(), shape=SMALL_SHAPES.filter(lambda s: int(np.prod(s)) <= 6),
       h=st.sampled_from([1e-5, 1e-4]))
def test_gradient_check_matches_reference(student, reference, smooth_function, tol, kind, seed, shape, h):
    with diagnose(lambda: explain_gradient_check(actual, reference, function.f, grad_f, x, h)):
        function = smooth_function(kind, seed + 3, shape)
        x = random_normal(seed, shape)
        rng = np.random.default_rng(seed)
        for number, grad_f in enumerate(_wrong_gradients(function.grad, rng)):
            expected = reference.gradient_check(function.f, grad_f, x.copy(), h)
            actual = student.gradient_check(function.f, grad_f, x.copy(), h)
            if number == 0:                                      # the correct gradient: tiny either way
                assert float(actual) < 1e-6, f"gradient_check of a correct gradient is {float(actual):.3g}, expected < 1e-6"
            else:
                assert_close(actual, expected, f"gradient_check of a wrong gradient (variant {number})",
                             tol=tol.GRADIENT_CHECK)


@given(seed=hidden_seeds(), h=st.sampled_from([0.05, 0.2]))
def test_gradient_check_uses_the_given_h(student, reference, smooth_function, tol, seed, h):
    with diagnose(lambda: explain_gradient_check(student.gradient_check(function.f, function.grad, x.copy(), h), reference, function.f, function.grad, x, h)):
        function = smooth_function("trig", seed + 23, (3,))
        x = random_normal(seed + 37, (3,))
        assert_close(student.gradient_check(function.f, function.grad, x.copy(), h),
                     reference.gradient_check(function.f, function.grad, x.copy(), h),
                     "gradient_check with a large h (its numerical gradient uses that h)",
                     tol=tol.GRADIENT_CHECK)


# ----------------------------------------------------------------- Task 2.3: gradient descent

@given(kind=st.sampled_from(["quadratic", "trig", "logsumexp"]), seed=hidden_seeds(), shape=SMALL_SHAPES,
       lr=st.sampled_from([0.01, 0.05, 0.1, 0.17, 0.3, 0.4]), num_steps=st.integers(0, 25))
def test_gradient_descent_trajectory_matches_reference(student, reference, smooth_function, tol, kind, seed, shape, lr, num_steps):
    with diagnose(lambda: explain_trajectory(actual, function.grad, x0, lr, num_steps)):
        function = smooth_function(kind, seed + 5, shape)
        x0 = random_normal(seed, shape)
        expected = reference.gradient_descent(function.grad, x0.copy(), lr, num_steps)
        actual = student.gradient_descent(function.grad, x0.copy(), lr, num_steps)
        assert_close(actual, expected, f"gradient_descent trajectory ({kind} function)",
                     tol=tol.FLOAT64)


@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_gradient_descent_edge_cases(student, smooth_function, tol, shape):
    with diagnose(lambda: explain_trajectory(student.gradient_descent(function.grad, x0.copy(), 0.1, 2), function.grad, x0, 0.1, 2)):
        function = smooth_function("trig", 11, shape)
        x0 = random_normal(12, shape)
        start = student.gradient_descent(function.grad, x0.copy(), 0.1, 0)
        assert_close(start, x0[None], f"gradient_descent with num_steps=0 (one row: x0), x0 of shape {shape}", tol=tol.FLOAT64)
        still = student.gradient_descent(function.grad, x0.copy(), 0.0, 3)
        assert_close(still, np.stack([x0] * 4), f"gradient_descent with lr=0 for 3 steps, x0 of shape {shape}", tol=tol.FLOAT64)
        two = student.gradient_descent(function.grad, x0.copy(), 0.1, 2)
        x1 = x0 - 0.1 * function.grad(x0)
        x2 = x1 - 0.1 * function.grad(x1)
        assert_close(two, np.stack([x0, x1, x2]), f"gradient_descent for 2 steps: rows x0, x1, x2, x0 of shape {shape}",
                     tol=tol.FLOAT64)


@given(seed=hidden_seeds(), split=st.integers(0, 8))
def test_gradient_descent_resumes_from_any_row(student, smooth_function, tol, seed, split):
    """Restarting from row k of a trajectory continues it: no state hides between calls."""
    function = smooth_function("logsumexp", seed, (2, 2))
    x0 = random_normal(seed + 1, (2, 2))
    whole = np.asarray(student.gradient_descent(function.grad, x0.copy(), 0.3, 8))
    rest = student.gradient_descent(function.grad, whole[split].copy(), 0.3, 8 - split)
    assert_close(rest, whole[split:], "gradient_descent restarted from a row of its own trajectory",
                 tol=tol.FLOAT64)


# ----------------------------------------------------------------- Task 2.4: smoothness and convergence

@given(seed=hidden_seeds(), n=st.integers(1, 8), rank_fraction=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), log_scale=st.integers(-3, 3))
def test_quadratic_smoothness_any_rank_and_scale(student, quadratic, tol, seed, n, rank_fraction, log_scale):
    rank = max(1, round(rank_fraction * n))
    problem = quadratic(seed + 9, n, rank, scale=10.0 ** log_scale)
    scale = float(np.abs(problem.A).max())
    actual = student.quadratic_smoothness(problem.A.copy())
    with diagnose(lambda: explain_smoothness(actual, problem.A)):
        assert_close(actual, problem.L, "quadratic_smoothness of a PSD matrix (numpy.linalg.eigvalsh)",
                     tol=Tolerance(rtol=1e-9, atol=1e-12 * scale))


def test_quadratic_smoothness_special_matrices(student, tol):
    q = np.linalg.qr(random_normal(3, (4, 4)))[0]
    cases = {
        "1x1": np.array([[2.5]]),
        "zero 3x3": np.zeros((3, 3)),
        "2.0 * identity 4x4": 2.0 * np.eye(4),
        "diagonal with a repeated top eigenvalue": np.diag([1.0, 7.0, 3.0, 7.0]),
        "rotated diag(5, 5, 1, 0)": q @ np.diag([5.0, 5.0, 1.0, 0.0]) @ q.T,
        "diag(1e8, 1e-8)": np.diag([1e-8, 1e8]),
    }
    for name, A in cases.items():
        A = (A + A.T) / 2
        expected = float(np.linalg.eigvalsh(A)[-1])
        actual = student.quadratic_smoothness(A.copy())
        with diagnose(lambda: explain_smoothness(actual, A)):
            assert_close(actual, expected, f"quadratic_smoothness of {name}", tol=Tolerance(rtol=1e-9, atol=1e-12))


def _orthogonal_top_eigenvector() -> np.ndarray:
    """diag(2) and I + 1.002/3 (the Laplacian of a triangle): eigenvalues 2, 1, 2.002, 2.002. The top
    eigenvectors are orthogonal to e_1 and to the all-ones vector: a power iteration from either
    converges to 2 (rounding leaks into the top eigenvectors only at a rate of 1.001 per step)."""
    A = np.zeros((4, 4))
    A[0, 0] = 2.0
    A[1:, 1:] = np.eye(3) + 1.002 / 3 * np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
    return A


def _tiny_gap() -> np.ndarray:
    """A rotated diag(5, 5 (1 - 1e-5), 1, 0.5, 0): the two largest eigenvalues are 5e-5 apart, so a
    power iteration of a few hundred or thousand steps is still mixing their eigenvectors."""
    q = np.linalg.qr(random_normal(11, (5, 5)))[0]
    return q @ np.diag([5.0, 5.0 * (1 - 1e-5), 1.0, 0.5, 0.0]) @ q.T


def test_quadratic_smoothness_where_power_iteration_fails(student):
    """The README warns that a fixed-step power iteration may fail: these matrices show it."""
    cases = {"a matrix whose top eigenvector is orthogonal to the all-ones vector and to e_1":
             _orthogonal_top_eigenvector(),
             "a matrix whose two largest eigenvalues are very close (a tiny eigen-gap)": _tiny_gap()}
    for name, A in cases.items():
        A = (A + A.T) / 2
        expected = float(np.linalg.eigvalsh(A)[-1])
        actual = student.quadratic_smoothness(A.copy())
        with diagnose(lambda: explain_smoothness(actual, A)):
            assert_close(actual, expected, f"quadratic_smoothness of {name}", tol=Tolerance(rtol=1e-9, atol=1e-12))


@given(seed=hidden_seeds(), n=st.integers(1, 6), rank_fraction=st.sampled_from([0.3, 0.5, 0.8, 1.0]))
def test_gradient_descent_converges_on_convex_quadratic(student, quadratic, seed, n, rank_fraction):
    """With lr = 1/L: f(x_k) decreases and f(x_k) - f* <= L ||x0 - x*||^2 / (2k)."""
    with diagnose(lambda: explain_trajectory(trajectory, problem.grad, x0, 1.0 / problem.L, num_steps)):
        rank = max(1, round(rank_fraction * n))
        problem = quadratic(seed + 13, n, rank)
        x0 = random_normal(seed, (n,), scale=3.0)
        num_steps = 20
        trajectory = np.asarray(student.gradient_descent(problem.grad, x0.copy(), 1.0 / problem.L, num_steps))
        assert trajectory.shape == (num_steps + 1, n), f"trajectory shape {trajectory.shape}, expected {(num_steps + 1, n)}"
        x_star = x0 - np.linalg.pinv(problem.A) @ problem.grad(x0)      # the minimiser nearest to x0
        f_star = problem.f(x_star)
        values = [problem.f(x) for x in trajectory]
        slack = 1e-10 * (1.0 + max(abs(v) for v in values))
        for k in range(num_steps):
            assert values[k + 1] <= values[k] + slack, f"f increased at step {k + 1} of gradient descent with lr = 1/L"
        bound_scale = problem.L * float(np.sum((x0 - x_star) ** 2)) / 2
        for k in range(1, num_steps + 1):
            assert values[k] - f_star <= bound_scale / k + slack, (
                f"f(x_{k}) - f* = {values[k] - f_star:.6g} exceeds L ||x0 - x*||^2 / (2k) = {bound_scale / k:.6g} with lr = 1/L")


# ----------------------------------------------------------------- Task 2.5: backtracking line search

def _armijo(f, x, g, alpha, c, slack):
    fx = f(x)
    return f(x - alpha * g) <= fx - c * alpha * float(np.sum(g * g)) + slack * (1.0 + abs(fx))


@given(kind=st.sampled_from(ALL_KINDS), seed=hidden_seeds(), shape=shapes(1, 2, 1, 3),
       alpha0=st.sampled_from([0.3, 1.0, 2.0, 10.0, 50.0]), beta=st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.7, 0.9]), c=st.sampled_from([1e-4, 0.1, 0.5]))
def test_line_search_matches_reference(student, reference, smooth_function, tol, kind, seed, shape, alpha0, beta, c):
    with diagnose(lambda: explain_line_search(actual, function.f, function.grad, x, alpha0=alpha0, beta=beta, c=c)):
        function = smooth_function(kind, seed + 17, shape)
        x = random_normal(seed, shape, scale=1.5)
        expected = reference.backtracking_line_search(function.f, function.grad, x.copy(), alpha0, beta, c)
        actual = student.backtracking_line_search(function.f, function.grad, x.copy(), alpha0, beta, c)
        assert_close(actual, expected, "backtracking_line_search step",
                     tol=tol.FLOAT64)


@given(kind=st.sampled_from(ALL_KINDS), seed=hidden_seeds(), shape=shapes(1, 2, 1, 3),
       alpha0=st.sampled_from([1.0, 5.0, 40.0]), beta=st.sampled_from([0.2, 0.4, 0.5, 0.65, 0.8]), c=st.sampled_from([1e-4, 0.3]))
def test_line_search_step_is_the_first_armijo_step(student, smooth_function, kind, seed, shape, alpha0, beta, c):
    with diagnose(lambda: explain_line_search(alpha, function.f, function.grad, x, alpha0=alpha0, beta=beta, c=c)):
        function = smooth_function(kind, seed + 19, shape)
        x = random_normal(seed, shape, scale=1.5)
        alpha = float(student.backtracking_line_search(function.f, function.grad, x.copy(), alpha0, beta, c))
        g = function.grad(x)
        k = np.log(alpha / alpha0) / np.log(beta)
        assert abs(k - round(k)) < 1e-6 and 0 <= round(k) < 50, "the returned alpha is not alpha0 * beta**k"
        assert _armijo(function.f, x, g, alpha, c, 1e-12), "the Armijo condition fails at the returned step"
        if round(k) > 0:
            assert not _armijo(function.f, x, g, alpha / beta, c, -1e-12), (
                "the returned step is not the first: the previous candidate alpha/beta already satisfies Armijo")


@given(seed=hidden_seeds(), max_iter=st.integers(1, 8), alpha0=st.sampled_from([0.5, 1.0, 3.0]), beta=st.sampled_from([0.3, 0.5, 0.75]))
def test_line_search_without_a_good_step_returns_the_last_candidate(student, smooth_function, tol, seed, max_iter, alpha0, beta):
    with diagnose(lambda: explain_line_search(alpha, function.f, uphill, x, alpha0=alpha0, beta=beta, c=1e-4, max_iter=max_iter)):
        function = smooth_function("quadratic", seed + 47, (3,))
        x = random_normal(seed + 1, (3,), scale=2.0)

        def uphill(point):                      # -gradient: every candidate step goes uphill
            return -function.grad(point)

        alpha = student.backtracking_line_search(function.f, uphill, x.copy(), alpha0, beta, 1e-4, max_iter)
        assert_close(alpha, alpha0 * beta ** (max_iter - 1),
                     "backtracking_line_search when no candidate passes: alpha0 * beta**(max_iter-1)",
                     tol=tol.FLOAT64)


def test_line_search_hand_cases(student, tol):
    with diagnose(lambda: explain_line_search(alpha, f, grad, x, alpha0=alpha0, beta=beta, c=c, max_iter=max_iter)):
        def f(x):
            return float(np.sum(np.asarray(x) ** 2))

        def grad(x):
            return 2 * np.asarray(x, dtype=np.float64)

        # f = 6.25, g = 2x = [[3, 4]], ||g||^2 = 25 over all entries (||g|| = 5: exact however it is
        # computed), f(x - alpha g) = 6.25 (1 - 2 alpha)^2; every number below is exact in float64.
        x = np.array([[1.5, 2.0]])
        cases = [   # (alpha0, beta, c, max_iter, expected, why)
            (2.0, 0.5, 0.5, 50, 0.5, "equality f(x - alpha g) == f(x) - c alpha ||g||^2 at alpha=0.5 passes (<=)"),
            (0.25, 0.5, 0.5, 50, 0.25, "alpha0 itself passes"),
            (2.0, 0.5, 1e-4, 1, 2.0, "max_iter=1 returns alpha0"),
            (4.0, 0.5, 1e-4, 50, 0.5, "the first passing step of 4, 2, 1, 0.5 is 0.5"),
        ]
        for alpha0, beta, c, max_iter, expected, why in cases:
            alpha = student.backtracking_line_search(f, grad, x.copy(), alpha0, beta, c, max_iter)
            assert_close(alpha, expected, f"backtracking_line_search on sum(x**2) at a 1x2 x: {why}", tol=tol.FLOAT64)
        at_minimum = student.backtracking_line_search(f, grad, np.zeros(3), 3.0, 0.5, 1e-4, 50)
        assert_close(at_minimum, 3.0, "backtracking_line_search where the gradient is 0: alpha0 passes", tol=tol.FLOAT64)
