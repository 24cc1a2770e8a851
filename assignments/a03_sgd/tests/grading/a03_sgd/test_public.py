"""Public tests for a03_sgd (shipped to students; run them with `autograder check a03`).

Every oracle here is independent of the reference solution: numpy's permutation for the
batches, a Python loop for per-example gradients, enumeration of every batch for the
variance, the schedule's formula by hand, and full-batch gradient descent for training.
Seeds are below 1000 here; the hidden tests draw theirs from 1000 upwards.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from a03_diagnosis import explain_shuffle
from oracle import ENUMERATION, enumerated_variance
from autograder.harness import diagnose, expect_raises, first_true, require
from autograder.harness.strategies import public_seeds, random_normal
from autograder.harness.compare import FLOAT64, assert_close, assert_equal


# ---------------------------------------------------------------- Task 3.1: mini-batches

@pytest.mark.parametrize("n, batch_size, seed, drop_last", [
    (10, 3, 0, False), (10, 3, 0, True), (8, 4, 1, False), (5, 7, 2, False), (6, 1, 3, False),
])
def test_public_minibatches_follow_the_permutation(student, n, batch_size, seed, drop_last):
    batches = student.minibatches(n, batch_size, seed, drop_last=drop_last)
    order = np.random.default_rng(seed).permutation(n)
    stop = n - n % batch_size if drop_last else n
    expected = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
    what = f"minibatches(n={n}, batch_size={batch_size}, seed={seed}, drop_last={drop_last})"
    assert_equal(len(batches), len(expected), f"{what}: number of batches")
    with diagnose(lambda: explain_shuffle(batches, n, batch_size, seed)):
        for index, (batch, want) in enumerate(zip(batches, expected)):
            batch = np.asarray(batch)
            require(batch.dtype.kind in "iu", f"{what}: batch {index} should hold integers, got dtype {batch.dtype}")
            assert_equal(batch.astype(np.int64), want, f"{what}: batch {index}")


# ---------------------------------------------------------------- Task 3.2: per-example gradients

def loop_per_example_gradients(X, y, w, b):
    """One example at a time: r_i = x_i . w + b - y_i, grad_w l_i = r_i x_i, grad_b l_i = r_i."""
    grad_w, grad_b = np.zeros_like(X), np.zeros(len(y), dtype=X.dtype)
    for i in range(len(y)):
        residual = float(np.dot(X[i], w)) + b - float(y[i])
        grad_w[i] = residual * X[i]
        grad_b[i] = residual
    return grad_w, grad_b


@given(seed=public_seeds(), n=st.integers(1, 6), d=st.integers(1, 4))
def test_public_per_example_gradients_match_a_loop(student, seed, n, d):
    X, y, w = random_normal(seed, (n, d)), random_normal(seed + 1, n), random_normal(seed + 2, d)
    b = 0.5
    grad_w, grad_b = student.per_example_gradients(X, y, w, b)
    want_w, want_b = loop_per_example_gradients(X, y, w, b)
    assert_close(grad_w, want_w, f"per_example_gradients G_w for X of shape {X.shape}")
    assert_close(grad_b, want_b, f"per_example_gradients G_b for X of shape {X.shape}")


# ---------------------------------------------------------------- Task 3.3: gradient variance


@pytest.mark.parametrize("seed, N, p, batch_size", [(0, 4, 2, 1), (1, 5, 3, 2), (2, 6, 1, 3), (3, 7, 2, 5)])
def test_public_variance_matches_enumeration(student, seed, N, p, batch_size):
    G = random_normal(seed, (N, p))
    variance = student.minibatch_gradient_variance(G, batch_size)
    with diagnose(lambda: first_true([
            ("sigma^2 / B is missing the finite-population correction (N - B) / (N - 1) (batches are drawn "
             "without replacement)",
             lambda: abs(variance - float(np.sum((G - G.mean(axis=0)) ** 2)) / N / batch_size) < 1e-9 * (1 + abs(variance)))])):
        assert_close(variance, enumerated_variance(G, batch_size),
                     f"minibatch_gradient_variance for N={N}, p={p}, batch_size={batch_size}", tol=ENUMERATION)


def test_public_variance_of_the_full_batch_is_zero(student):
    G = random_normal(4, (5, 3))
    assert_close(student.minibatch_gradient_variance(G, 5), 0.0, "minibatch_gradient_variance with batch_size = N")


# ---------------------------------------------------------------- Task 3.4: cosine schedule

# max_lr=1, min_lr=0, warmup 2 steps, cosine until step 6: by hand from the formula.
PUBLIC_TABLE = [
    (0, 0.0), (1, 0.5), (2, 1.0), (3, 0.5 + math.sqrt(2) / 4), (4, 0.5),
    (5, 0.5 - math.sqrt(2) / 4), (6, 0.0), (7, 0.0), (20, 0.0),
]


@pytest.mark.parametrize("step, expected", PUBLIC_TABLE, ids=[f"step{s}" for s, _ in PUBLIC_TABLE])
def test_public_cosine_lr_table(student, step, expected):
    lr = student.cosine_lr(step, 1.0, 0.0, 2, 6)
    assert_close(lr, expected, f"cosine_lr(step={step}, max_lr=1, min_lr=0, warmup_steps=2, cosine_steps=6)")


def test_public_cosine_lr_rejects_cosine_steps_not_after_warmup(student):
    expect_raises(ValueError, lambda: student.cosine_lr(0, 1.0, 0.0, 4, 4),
                  "cosine_lr(0, 1.0, 0.0, 4, 4), where cosine_steps == warmup_steps,")


# ---------------------------------------------------------------- Task 3.5: mini-batch SGD

def full_batch_gradient_descent(X, y, lr, epochs, schedule_lrs):
    """With one batch holding every example, mini-batch SGD is plain gradient descent."""
    w, b, losses = np.zeros(X.shape[1]), 0.0, []
    for epoch in range(epochs):
        step_lr = lr if schedule_lrs is None else schedule_lrs[epoch]
        residual = X @ w + b - y
        w, b = w - step_lr * X.T @ residual / len(y), b - step_lr * residual.mean()
        losses.append(0.5 * np.mean((X @ w + b - y) ** 2))
    return w, b, np.array(losses)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_public_train_with_one_batch_is_gradient_descent(student, schedule):
    X = random_normal(10, (12, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * random_normal(11, 12)
    epochs, lr = 5, 0.2
    # cosine: 5 steps, warmup 1 step, min_lr 0.02 (the step counter t runs 0..4)
    lrs = None if schedule == "constant" else [
        lr * t / 1 if t < 1 else 0.02 + 0.5 * (1 + math.cos(math.pi * (t - 1) / 4)) * (lr - 0.02) for t in range(epochs)]
    w, b, losses = student.train_linear_regression_sgd(
        X, y, lr, epochs, 12, seed=5, schedule=schedule, warmup_steps=1, min_lr=0.02)
    want_w, want_b, want_losses = full_batch_gradient_descent(X, y, lr, epochs, lrs)
    what = f"train_linear_regression_sgd with batch_size = n = 12, schedule={schedule!r}"
    assert_close(w, want_w, f"{what}: w", tol=FLOAT64)
    assert_close(b, want_b, f"{what}: b", tol=FLOAT64)
    assert_close(losses, want_losses, f"{what}: losses", tol=FLOAT64)


def test_public_train_one_epoch_of_three_batches(student):
    """n = 12, batch_size = 4, one epoch, constant lr: three steps, each averaging over its 4
    examples (the batch, not n), on the batches minibatches(12, 4, seed) gives."""
    X = random_normal(20, (12, 3))
    y = X @ np.array([0.5, 1.0, -1.5]) - 0.2 + 0.1 * random_normal(21, 12)
    lr, seed = 0.3, 7
    w, b = np.zeros(3), 0.0
    order = np.random.default_rng(seed).permutation(12)
    for start in range(0, 12, 4):
        batch = order[start:start + 4]
        residual = X[batch] @ w + b - y[batch]
        w, b = w - lr * X[batch].T @ residual / len(batch), b - lr * residual.mean()
    actual = student.train_linear_regression_sgd(X, y, lr, 1, 4, seed=seed)
    what = "train_linear_regression_sgd with n = 12, batch_size = 4, one epoch (each step averages over its batch)"
    assert_close(actual[0], w, f"{what}: w", tol=FLOAT64)
    assert_close(actual[1], b, f"{what}: b", tol=FLOAT64)
    assert_close(actual[2], np.array([0.5 * np.mean((X @ w + b - y) ** 2)]), f"{what}: losses", tol=FLOAT64)
