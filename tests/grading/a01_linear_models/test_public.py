"""Public tests for assignment 1 (linear models): run them with `autograder check a01`.

Each test compares your function with an oracle computed here: torch autograd in float64
for losses and gradients, numpy.linalg for ridge regression. The hidden tests check the
same functions on more shapes and values, edge cases and numerical stability.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness.strategies import public_seeds, random_normal
from autograder.harness import diagnose, first_true, require
from autograder.harness.compare import assert_close

def _grads(loss, *leaves):
    """loss value and d loss / d leaf for torch float64 leaves, as numpy."""
    grads = torch.autograd.grad(loss, leaves)
    return (float(loss.detach()),) + tuple(g.numpy() if leaf.dim() else float(g) for g, leaf in zip(grads, leaves))


def _leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def _problem(seed, n, d):
    X = random_normal(seed, (n, d))
    y = random_normal(seed + 1, (n,))
    w = random_normal(seed + 2, (d,))
    return X, y, w, 0.5


# --------------------------------------------------------------------------- Task 1.1 - 1.3

@given(seed=public_seeds(), n=st.integers(1, 5), d=st.integers(1, 4))
def test_linear_predict(student, seed, n, d):
    X, _, w, b = _problem(seed, n, d)
    assert_close(student.linear_predict(X, w, b), X @ w + b, "linear_predict(X, w, b)")


@given(seed=public_seeds(), n=st.integers(1, 5), d=st.integers(1, 4))
def test_mse_loss(student, seed, n, d):
    X, y, w, b = _problem(seed, n, d)
    tw, tb = _leaf(w), _leaf(b)
    loss = 0.5 * torch.mean((torch.from_numpy(X) @ tw + tb - torch.from_numpy(y)) ** 2)
    expected = _grads(loss, tw, tb)
    assert_close(tuple(student.mse_loss(X, y, w, b)), expected, "mse_loss (loss, grad_w, grad_b)")


@given(seed=public_seeds(), d=st.integers(1, 3), l2=st.sampled_from([0.0, 0.1, 1.0]))
def test_ridge_closed_form(student, seed, d, l2):
    n = d + 4
    X, y, _, _ = _problem(seed, n, d)
    # Normal equations in (w, b) with an unpenalised bias: the oracle.
    A = np.hstack([X, np.ones((n, 1))])
    theta = np.linalg.solve(A.T @ A / n + np.diag([l2] * d + [0.0]), A.T @ y / n)
    w, b = student.ridge_closed_form(X, y, l2)
    assert_close(w, theta[:d], f"ridge_closed_form(X, y, l2={l2}) w")
    assert_close(b, float(theta[d]), f"ridge_closed_form(X, y, l2={l2}) b")


# --------------------------------------------------------------------------- Task 1.4 - 1.5

OVERFLOW = ("right at moderate values but not at large ones: exp overflows; use the max-shift or a stable "
            "form (sigmoid: exp(-|z|) on each side of 0; softmax: subtract the row maximum before exp; "
            "log_softmax: Z - max - log(sum(exp(Z - max))))")


def _moderate_ok(function, oracle, Z) -> bool:
    """The overflow experiment: the same call on Z scaled to |Z| <= 5 is right."""
    small = np.asarray(Z) * 5.0 / np.max(np.abs(Z))
    return bool(np.allclose(function(small), oracle(small), rtol=1e-9, atol=1e-12))


def test_sigmoid(student, probe):
    z = np.array([-1000.0, -720.0, -30.0, -1.5, 0.0, 0.25, 4.0, 1000.0])
    with np.errstate(over="ignore"):  # the oracle: each branch where its exponential cannot overflow
        expected = np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))
    with diagnose(lambda: first_true([(OVERFLOW, lambda: _moderate_ok(
            student.sigmoid, lambda v: torch.sigmoid(torch.from_numpy(v)).numpy(), z))])):
        result, warnings = probe.numpy_warnings(student.sigmoid, z)
        assert_close(result, expected, "sigmoid(z)")
        # Values decide, not warnings: sigmoid(-720) is the subnormal exp(-720) ~ 1.9e-313, and
        # 1 / (1 + exp(720)) gives 0 because exp(720) overflows.
        tiny, want = float(np.asarray(result, dtype=np.float64)[1]), float(expected[1])
        seen = f" (numpy also warned: {'; '.join(sorted(set(warnings)))})" if warnings else ""
        require(tiny > 0 and abs(tiny - want) <= 1e-3 * want,
                f"sigmoid(-720) should be the tiny positive exp(-720) ~ {want:.3g}, got {tiny:.3g}: "
                f"does exp(-z) overflow?{seen}")


@given(seed=public_seeds(), n=st.integers(1, 6), d=st.integers(1, 4))
def test_logistic_loss(student, seed, n, d):
    X, _, w, b = _problem(seed, n, d)
    y = (random_normal(seed + 3, (n,)) > 0).astype(np.float64)
    tw, tb = _leaf(w), _leaf(b)
    loss = F.binary_cross_entropy_with_logits(torch.from_numpy(X) @ tw + tb, torch.from_numpy(y))
    expected = _grads(loss, tw, tb)
    assert_close(tuple(student.logistic_loss(X, y, w, b)), expected, "logistic_loss (loss, grad_w, grad_b)")


# --------------------------------------------------------------------------- Task 1.6 - 1.8

@given(seed=public_seeds(), n=st.integers(1, 4), k=st.integers(1, 5))
def test_softmax(student, seed, n, k):
    Z = random_normal(seed, (n, k), scale=3.0)
    out = student.softmax(Z)
    assert_close(out, torch.softmax(torch.from_numpy(Z), dim=-1).numpy(), "softmax(Z)")
    assert_close(np.sum(out, axis=-1), np.ones(n), "row sums of softmax(Z)")
    large = np.array([[1000.0, 0.0, -1000.0], [800.0, 800.0, 0.0]])
    with diagnose(lambda: first_true([(OVERFLOW, lambda: _moderate_ok(
            student.softmax, lambda v: torch.softmax(torch.from_numpy(v), dim=-1).numpy(), large))])):
        assert_close(student.softmax(large), torch.softmax(torch.from_numpy(large), dim=-1).numpy(),
                     "softmax([[1000, 0, -1000], [800, 800, 0]])")


@given(seed=public_seeds(), n=st.integers(1, 4), k=st.integers(1, 5))
def test_log_softmax(student, seed, n, k):
    Z = random_normal(seed, (n, k), scale=3.0)
    expected = torch.log_softmax(torch.from_numpy(Z), dim=-1).numpy()
    assert_close(student.log_softmax(Z), expected, "log_softmax(Z)")
    large = np.array([[1000.0, 0.0, -1000.0], [800.0, 800.0, 0.0]])
    with diagnose(lambda: first_true([(OVERFLOW, lambda: _moderate_ok(
            student.log_softmax, lambda v: torch.log_softmax(torch.from_numpy(v), dim=-1).numpy(), large))])):
        assert_close(student.log_softmax(large), torch.log_softmax(torch.from_numpy(large), dim=-1).numpy(),
                     "log_softmax([[1000, 0, -1000], [800, 800, 0]])")


@given(seed=public_seeds(), n=st.integers(1, 5), d=st.integers(1, 3), k=st.integers(2, 4))
def test_softmax_cross_entropy(student, seed, n, d, k):
    X = random_normal(seed, (n, d))
    W, b = random_normal(seed + 1, (d, k)), random_normal(seed + 2, (k,))
    y = np.random.default_rng(seed).integers(0, k, size=n)
    tW, tb = _leaf(W), _leaf(b)
    loss = F.cross_entropy(torch.from_numpy(X) @ tW + tb, torch.from_numpy(y))
    expected = _grads(loss, tW, tb)
    assert_close(tuple(student.softmax_cross_entropy(X, y, W, b)), expected,
                 "softmax_cross_entropy (loss, grad_W, grad_b)")


# --------------------------------------------------------------------------- Task 1.9 - 1.10

@given(seed=public_seeds(), n=st.integers(1, 4), h=st.integers(1, 4))
def test_mlp_loss(student, seed, n, h):
    d, k = 3, 3
    X = random_normal(seed, (n, d))
    y = np.random.default_rng(seed).integers(0, k, size=n)
    params = {"W1": random_normal(seed + 1, (d, h)), "b1": random_normal(seed + 2, (h,)),
              "W2": random_normal(seed + 3, (h, k)), "b2": random_normal(seed + 4, (k,))}
    leaves = {name: _leaf(value) for name, value in params.items()}
    logits = torch.relu(torch.from_numpy(X) @ leaves["W1"] + leaves["b1"]) @ leaves["W2"] + leaves["b2"]
    loss, *grads = _grads(F.cross_entropy(logits, torch.from_numpy(y)), *leaves.values())
    actual_loss, actual_grads = student.mlp_loss(X, y, params)
    assert_close(actual_loss, loss, "mlp_loss loss")
    assert_close(actual_grads, dict(zip(leaves, grads)), "mlp_loss grads")


def test_accuracy(student):
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 3.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.5, 0.2]])
    y = np.array([1, 1, 2, 2])
    # Row 1 is a tie between classes 0 and 1: the first maximum (0) is the prediction.
    assert_close(student.accuracy(logits, y), 0.5, "accuracy(logits, y)")
