"""Hidden tests, tasks 1.1-1.3: linear prediction, squared error, ridge regression.

Oracles: numpy for X w + b, torch autograd in float64 for the loss and its gradient,
central differences (of the trusted loss, and of the student's own loss along a random
direction), numpy.linalg for ridge: the normal equations in (w, b) with an unpenalised
bias, and lstsq on centred data for the minimum-norm solution at l2 = 0.
"""
from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import oracle
from autograder.harness.strategies import hidden_seeds
from a01_diagnosis import explain_parts, explain_ridge
from autograder.harness import diagnose
from autograder.harness.compare import Tolerance, assert_close


def _scalar_bias(b: float, kind: str):
    """The bias as a Python float or a numpy float64: both are 'a scalar float'."""
    return np.float64(b) if kind == "numpy" else float(b)


# --------------------------------------------------------------------------- Task 1.1

@given(seed=hidden_seeds(), n=st.integers(1, 12), d=st.integers(1, 7),
       scale=st.sampled_from([1.0, 1e-3, 1e6]), bias=st.sampled_from(["python", "numpy"]))
def test_linear_predict_matches_numpy(student, seed, n, d, scale, bias):
    X, _, w, b = oracle.regression_data(seed, n, d, scale=scale)
    b = _scalar_bias(b * scale, bias)
    expected = X @ w + b                                         # (n,)
    assert_close(student.linear_predict(X, w, b), expected, "linear_predict",
                 tol=oracle.scaled(oracle.logits_scale(X, w, b)))


# --------------------------------------------------------------------------- Task 1.2

def _mse_tolerances(X, y, w, b):
    """The loss sums squares of residuals of size r; gradients sum |X| r terms."""
    r = oracle.logits_scale(X, w, b) + float(np.max(np.abs(y)))
    return oracle.scaled(r * r), oracle.scaled(r * float(np.max(np.abs(X))))


@given(seed=hidden_seeds(), n=st.integers(1, 16), d=st.integers(1, 6),
       scale=st.sampled_from([1.0, 3.0, 1e3]), offset=st.sampled_from([0.0, 5.0]))
def test_mse_loss_matches_torch_autograd(student, seed, n, d, scale, offset):
    X, y, w, b = oracle.regression_data(seed, n, d, scale=scale, offset=offset)
    y = y * scale
    loss_tol, grad_tol = _mse_tolerances(X, y, w, b)
    expected_loss, expected_w, expected_b = oracle.torch_mse(X, y, w, b)
    loss, grad_w, grad_b = student.mse_loss(X, y, w, b)
    with diagnose(lambda: explain_parts((loss, grad_w, grad_b), (expected_loss, expected_w, expected_b),
                                        ["loss", "gradient in w", "gradient in b"], n=X.shape[0])):
        assert_close(loss, expected_loss, "mse_loss loss", tol=loss_tol)
        assert_close(grad_w, expected_w, "mse_loss grad_w", tol=grad_tol)
        assert_close(grad_b, expected_b, "mse_loss grad_b", tol=grad_tol)


@given(seed=hidden_seeds(), n=st.integers(1, 10), d=st.integers(1, 5))
def test_mse_loss_gradient_by_central_differences(student, seed, n, d, reference):
    X, y, w, b = oracle.regression_data(seed, n, d, offset=1.0)
    _, grad_w, grad_b = student.mse_loss(X, y, w, b)
    numeric_w, numeric_b = oracle.numeric_gradient(lambda w_, b_: reference.mse_loss(X, y, w_, b_)[0], [w, b])
    assert_close(grad_w, numeric_w, "mse_loss grad_w against central differences", tol=oracle.CENTRAL_DIFFERENCE)
    assert_close(grad_b, numeric_b, "mse_loss grad_b against central differences", tol=oracle.CENTRAL_DIFFERENCE)
    # The student's own loss must change along a direction v at the rate grad . v.
    v_w, v_b = oracle.unit_directions(oracle.rng(seed + 1), [w, b])
    slope = oracle.directional_difference(lambda w_, b_: student.mse_loss(X, y, w_, b_)[0], [w, b], [v_w, v_b])
    assert_close(slope, float(grad_w @ v_w + grad_b * v_b),
                 "mse_loss: (L(theta + h v) - L(theta - h v)) / 2h against grad . v", tol=oracle.CENTRAL_DIFFERENCE)


@given(seed=hidden_seeds(), n=st.integers(2, 12), d=st.integers(1, 4))
def test_mse_loss_drives_gradient_descent(student, seed, n, d):
    """Six steps of gradient descent with the student's gradients, fed back each step."""
    X, y, w, b = oracle.regression_data(seed, n, d)
    lr = 0.5 / (1.0 + float(np.max(np.sum(X * X, axis=1))))      # a stable step size
    expected_w, expected_b = w.copy(), b
    for step in range(6):
        loss, grad_w, grad_b = student.mse_loss(X, y, w, b)
        expected = oracle.torch_mse(X, y, expected_w, expected_b)
        tol = Tolerance(rtol=1e-9, atol=1e-11)                 # six steps of float64 drift
        assert_close(loss, expected[0], f"mse_loss loss at gradient-descent step {step}", tol=tol)
        w, b = w - lr * np.asarray(grad_w), b - lr * float(grad_b)
        expected_w, expected_b = expected_w - lr * expected[1], expected_b - lr * expected[2]


# --------------------------------------------------------------------------- Task 1.3

def _ridge_tolerance(X, condition, w, b):
    """Solver accuracy relative to the solution's size; b = y_mean - x_mean . w inherits
    the error of w magnified by |x_mean|."""
    size = (1.0 + float(np.sum(np.abs(X.mean(axis=0))))) * (float(np.max(np.abs(w), initial=0.0)) + abs(b) + 1.0)
    return oracle.solve_tolerance(condition, size)


def _check_ridge(student, X, y, l2, expected_w, expected_b, condition, what):
    got = []
    with diagnose(lambda: explain_ridge(*(got or [None, None]), X, y, l2)):
        w, b = student.ridge_closed_form(X, y, l2)
        got += [w, b]
        tol = _ridge_tolerance(X, condition, expected_w, expected_b)
        assert_close(w, expected_w, f"ridge_closed_form w ({what})", tol=tol)
        assert_close(b, expected_b, f"ridge_closed_form b ({what})", tol=tol)
    return np.asarray(w, dtype=np.float64), float(b)


@given(seed=hidden_seeds(), n=st.integers(1, 15), d=st.integers(1, 6),
       l2=st.sampled_from([1e-2, 0.3, 1.0, 7.5, 1e3]), offset=st.sampled_from([0.0, 3.0]),
       deficient=st.booleans())
def test_ridge_matches_normal_equations(student, seed, n, d, l2, offset, deficient):
    if deficient:
        X, y = oracle.rank_deficient_design(seed, n, min(d, n), ["duplicate", "constant"])
    else:
        X, y, _, _ = oracle.regression_data(seed, n, d, offset=offset)
    expected_w, expected_b, condition = oracle.ridge_normal_equations(X, y, l2)
    w, b = _check_ridge(student, X, y, l2, expected_w, expected_b, condition,
                        "l2 > 0, normal equations")
    # Style-free check: the objective's gradient vanishes at the student's minimiser.
    gradient_w, gradient_b = oracle.ridge_objective_gradient(X, y, w, b, l2)
    scale = (1.0 + float(np.max(np.abs(X)))) ** 2 * (1.0 + float(np.max(np.abs(y))))
    tol = Tolerance(rtol=0.0, atol=_ridge_tolerance(X, condition, w, b).rtol * scale)
    assert_close(gradient_w, np.zeros_like(gradient_w), "gradient in w of the ridge objective at your (w, b)", tol=tol)
    assert_close(gradient_b, 0.0, "gradient in b of the ridge objective at your (w, b)", tol=tol)


@given(seed=hidden_seeds(), n=st.integers(2, 12), d=st.integers(1, 4),
       l2=st.sampled_from([10.0, 1e2, 1e4]), shift=st.sampled_from([-1e3, 50.0, 1e4]))
def test_ridge_does_not_penalise_the_bias(student, seed, n, d, l2, shift):
    """A large target offset must go into b untouched, however strong the penalty on w."""
    X, y, _, _ = oracle.regression_data(seed, n, d, offset=2.0)
    y = y + shift
    expected_w, expected_b, condition = oracle.ridge_normal_equations(X, y, l2)
    _check_ridge(student, X, y, l2, expected_w, expected_b, condition,
                 "a strong penalty and targets shifted far from 0: b must not be shrunk")


@given(seed=hidden_seeds(), d=st.integers(1, 5), extra_rows=st.integers(2, 10), offset=st.sampled_from([0.0, 4.0]))
def test_ridge_without_penalty_matches_least_squares(student, seed, d, extra_rows, offset):
    X, y, _, _ = oracle.regression_data(seed, d + extra_rows, d, offset=offset)
    singular = oracle.centred_singular_values(X)
    expected_w, expected_b = oracle.min_norm_least_squares(X, y)
    _check_ridge(student, X, y, 0.0, expected_w, expected_b, (singular[0] / singular[-1]) ** 2,
                 "l2 = 0, full-rank X, least squares")


_EXTRA_COLUMNS = st.lists(st.sampled_from(["duplicate", "scaled", "constant"]), min_size=1, max_size=3)


@given(seed=hidden_seeds(), rank=st.integers(1, 4), extra=_EXTRA_COLUMNS, extra_rows=st.integers(2, 8))
def test_ridge_rank_deficient_returns_minimum_norm(student, seed, rank, extra, extra_rows):
    X, y = oracle.rank_deficient_design(seed, rank + extra_rows, rank, extra)
    singular = oracle.centred_singular_values(X)
    assume(singular[rank - 1] > 1e-3 * singular[0])               # far from lstsq's cut-off
    expected_w, expected_b = oracle.min_norm_least_squares(X, y)
    _check_ridge(student, X, y, 0.0, expected_w, expected_b, (singular[0] / singular[rank - 1]) ** 2,
                 "l2 = 0, a rank-deficient X (duplicate, scaled or constant columns): "
                 "the minimum-norm w")


@given(seed=hidden_seeds(), rank=st.integers(1, 4), extra=_EXTRA_COLUMNS, extra_rows=st.integers(2, 8))
def test_ridge_small_penalty_approaches_minimum_norm(student, seed, rank, extra, extra_rows):
    """The l2 -> 0 limit of ridge is the minimum-norm least-squares solution.

    At l2 = 1e-6 the exact ridge solution sits O(l2 / sigma_min^2) ~ 1e-6 relative from the
    limit; solving (G + l2 I) w = r with G exactly singular adds ~eps |G| / l2 ~ 1e-8.
    """
    X, y = oracle.rank_deficient_design(seed, rank + extra_rows, rank, extra)
    singular = oracle.centred_singular_values(X)
    assume(singular[rank - 1] ** 2 / X.shape[0] > 1e-2)
    expected_w, expected_b = oracle.min_norm_least_squares(X, y)
    w, b = student.ridge_closed_form(X, y, 1e-6)
    size = 1.0 + float(np.max(np.abs(expected_w))) * (1.0 + float(np.sum(np.abs(X.mean(axis=0)))))
    tol = Tolerance(rtol=0.0, atol=1e-3 * size)
    assert_close(w, expected_w, "ridge_closed_form w at l2=1e-6 against the l2 -> 0 limit (rank-deficient X)", tol=tol)
    assert_close(b, expected_b, "ridge_closed_form b at l2=1e-6 against the l2 -> 0 limit (rank-deficient X)", tol=tol)


@given(seed=hidden_seeds(), d=st.integers(1, 5), extra_rows=st.integers(2, 8))
def test_ridge_shrinks_weights_as_penalty_grows(student, seed, d, extra_rows):
    """||w(l2)|| decreases as l2 grows, from the least-squares w towards 0 (full-rank X)."""
    X, y, _, _ = oracle.regression_data(seed, d + extra_rows, d, offset=1.0)
    norms = []
    for l2 in (0.0, 0.1, 1.0, 10.0, 1e6):
        w, _ = student.ridge_closed_form(X, y, l2)
        norms.append(float(np.linalg.norm(w)))
    steps = ", ".join(f"{norm:.6g}" for norm in norms)
    oracle.require(all(later <= earlier * (1 + 1e-9) + 1e-12 for earlier, later in zip(norms, norms[1:])),
                   f"||w|| at l2 = 0, 0.1, 1, 10, 1e6 should decrease; got {steps}")
    oracle.require(norms[-1] <= 1e-4 * (1.0 + norms[0]), f"||w|| at l2 = 1e6 should be nearly 0; got {norms[-1]:.6g}")
