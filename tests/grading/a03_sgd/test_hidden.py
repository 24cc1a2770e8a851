"""Hidden tests for a03_sgd: the graded bulk, with other inputs than the public tests.

Oracles: numpy's permutation (batches), a Python loop and the closed-form full gradient
(per-example gradients), enumeration of every batch with itertools.combinations
(variance), the formula by hand (schedule), the reference in float64 (training
trajectories) and numpy.linalg.lstsq (convergence). Seeds come from hidden_seeds(),
disjoint from the public tests' public_seeds().
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from a03_diagnosis import explain_shuffle
from oracle import ENUMERATION, enumerated_variance
from a03_hidden_diagnosis import explain_cosine, explain_factor, explain_training, explain_variance
from autograder.harness import diagnose, expect_raises, require
from autograder.harness.strategies import hidden_seeds, random_normal
from autograder.harness.compare import FLOAT32, FLOAT64, Tolerance, assert_close, assert_equal

# Hidden failures show the message, never the inputs, so shrinking them (and hypothesis'
# explain phase, ~200 extra worker calls per failing test) buys nothing and costs seconds.


def assert_same_batches(actual, expected, what):
    """Same number of batches, each the same integer indices in the same order."""
    assert isinstance(actual, (list, tuple)), f"{what}: expected a list of index arrays, got {type(actual).__name__}"
    assert_equal(len(actual), len(expected), f"{what}: number of batches")
    for index, (batch, want) in enumerate(zip(actual, expected)):
        batch = np.asarray(batch)
        assert batch.dtype.kind in "iu", f"{what}: batch {index} should hold integers, got dtype {batch.dtype}"
        assert_equal(batch.astype(np.int64), np.asarray(want, dtype=np.int64), f"{what}: batch {index}")


def divides(n, batch_size) -> str:
    """The feature of (n, batch_size) that decides the last batch, never the values themselves."""
    return "batch_size divides n" if n % batch_size == 0 else "batch_size does not divide n (a short last batch)"


# ================================================================ Task 3.1: mini-batches

@given(seed=hidden_seeds(), n=st.integers(0, 60), batch_size=st.integers(1, 64), drop_last=st.booleans())
def test_minibatches_exact_order(student, seed, n, batch_size, drop_last):
    order = np.random.default_rng(seed).permutation(n)
    stop = n - n % batch_size if drop_last else n
    expected = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
    what = f"minibatches with drop_last={drop_last} where {divides(n, batch_size)}"
    batches = student.minibatches(n, batch_size, seed, drop_last=drop_last)
    with diagnose(lambda: explain_shuffle(batches, n, batch_size, seed)):
        assert_same_batches(batches, expected, what)


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (0, 3, False, []),             # nothing to split
    (1, 1, False, [1]),
    (9, 9, True, [9]),             # one full batch
    (9, 10, False, [9]),           # batch larger than the data: one short batch...
    (9, 10, True, []),             # ...which drop_last removes
    (23, 5, False, [5, 5, 5, 5, 3]),
    (23, 5, True, [5, 5, 5, 5]),
    (40, 1, True, [1] * 40),
], ids=["empty", "one", "exact-drop", "oversized", "oversized-drop", "short-last", "short-last-drop", "singletons"])
def test_minibatches_partition_edges(student, n, batch_size, drop_last, sizes):
    seed = 4242 + n
    batches = student.minibatches(n, batch_size, seed, drop_last)  # drop_last passed positionally
    what = f"minibatches with drop_last={drop_last} where {divides(n, batch_size)}"
    got_sizes = [len(np.asarray(batch)) for batch in batches]
    assert_equal(got_sizes, sizes, f"{what}: batch sizes")
    joined = np.concatenate([np.asarray(batch, dtype=np.int64) for batch in batches]) if batches else np.zeros(0, np.int64)
    assert_equal(joined, np.random.default_rng(seed).permutation(n)[:sum(sizes)], f"{what}: batches joined in order")


def test_minibatches_default_keeps_the_last_batch(student):
    batches = student.minibatches(11, 4, 1234)
    assert_same_batches(batches, np.array_split(np.random.default_rng(1234).permutation(11), [4, 8]),
                        "minibatches(n=11, batch_size=4) with drop_last left at its default")


# ================================================================ Task 3.2: per-example gradients

def loop_per_example_gradients(X, y, w, b):
    """One example at a time, in float64: grad_w l_i = r_i x_i, grad_b l_i = r_i."""
    X, y, w = X.astype(np.float64), y.astype(np.float64), w.astype(np.float64)
    grad_w, grad_b = np.zeros_like(X), np.zeros(len(y))
    for i in range(len(y)):
        residual = sum(float(X[i, j]) * float(w[j]) for j in range(len(w))) + float(b) - float(y[i])
        grad_w[i] = residual * X[i]
        grad_b[i] = residual
    return grad_w, grad_b


def regression_point(seed, n, d, scale, dtype=np.float64):
    """X (n, d) and y (n,) of magnitude `scale`, w (d,) of magnitude 1, b of magnitude `scale`."""
    X = random_normal(seed, (n, d), scale=scale).astype(dtype)
    y = random_normal(seed + 1, n, scale=scale).astype(dtype)
    w = random_normal(seed + 2, d).astype(dtype)
    b = float(random_normal(seed + 3, ())) * scale
    return X, y, w, b


@given(seed=hidden_seeds(), n=st.integers(1, 12), d=st.integers(1, 7),
       scale=st.sampled_from([1.0, 1e-3, 1e4, 1e8]))
def test_per_example_gradients_match_loop(student, seed, n, d, scale):
    X, y, w, b = regression_point(seed, n, d, scale)
    grad_w, grad_b = student.per_example_gradients(X, y, w, b)
    want_w, want_b = loop_per_example_gradients(X, y, w, b)
    # Residuals are O(scale) and G_w entries O(scale^2): absolute slack scales with them.
    what = "per_example_gradients"
    with diagnose(lambda: explain_factor(grad_w, want_w, "per-example gradient")):
        assert_close(grad_w, want_w, f"{what}: G_w", tol=Tolerance(1e-10, 1e-12 * scale**2))
        assert_close(grad_b, want_b, f"{what}: G_b", tol=Tolerance(1e-10, 1e-12 * scale))


@pytest.mark.parametrize("n, d", [(1, 1), (1, 5), (9, 1)])
def test_per_example_gradients_degenerate_shapes(student, n, d):
    X, y, w, b = regression_point(5000 + 10 * n + d, n, d, 1.0)
    grad_w, grad_b = student.per_example_gradients(X, y, w, b)
    want_w, want_b = loop_per_example_gradients(X, y, w, b)
    assert_close(grad_w, want_w, f"per_example_gradients G_w for X of shape {X.shape}")
    assert_close(grad_b, want_b, f"per_example_gradients G_b for X of shape {X.shape}")


def test_per_example_gradients_keep_float32(student):
    X, y, w, b = regression_point(6001, 7, 3, 1.0, dtype=np.float32)
    grad_w, grad_b = student.per_example_gradients(X, y, w, b)
    want_w, want_b = loop_per_example_gradients(X, y, w, b)
    what = "per_example_gradients on float32 inputs (the result keeps float32)"
    assert_close(grad_w, want_w.astype(np.float32), f"{what}: G_w", tol=FLOAT32)
    assert_close(grad_b, want_b.astype(np.float32), f"{what}: G_b", tol=FLOAT32)


@given(seed=hidden_seeds(), n=st.integers(1, 30), d=st.integers(1, 6))
def test_per_example_gradients_average_to_full_gradient(student, seed, n, d):
    X, y, w, b = regression_point(seed, n, d, 1.0)
    grad_w, grad_b = student.per_example_gradients(X, y, w, b)
    residual = X @ w + b - y
    # d/dw of L = 1/(2n) ||X w + b - y||^2 is X^T r / n; d/db is mean(r).
    what = f"mean over examples of per_example_gradients, X of shape {X.shape}"
    assert_close(np.mean(np.asarray(grad_w), axis=0), X.T @ residual / n, f"{what}: G_w vs X^T r / n")
    assert_close(np.mean(np.asarray(grad_b)), float(np.mean(residual)), f"{what}: G_b vs mean(r)")


# ================================================================ Task 3.3: gradient variance


@given(seed=hidden_seeds(), N=st.integers(2, 9), p=st.integers(1, 4), data=st.data())
def test_variance_matches_enumeration(student, seed, N, p, data):
    batch_size = data.draw(st.integers(1, N - 1), label="batch_size")
    G = random_normal(seed, (N, p))
    actual = student.minibatch_gradient_variance(G, batch_size)
    with diagnose(lambda: explain_variance(actual, G, batch_size)):
        assert_close(actual, enumerated_variance(G, batch_size),
                     f"minibatch_gradient_variance where {divides(G.shape[0], batch_size)}", tol=ENUMERATION)


@pytest.mark.parametrize("N, batch_size", [(1, 1), (4, 4), (4, 5), (6, 50)])
def test_variance_zero_when_the_batch_is_everything(student, N, batch_size):
    G = random_normal(7000 + N, (N, 3), scale=100.0)
    assert_close(student.minibatch_gradient_variance(G, batch_size), 0.0,
                 "minibatch_gradient_variance with batch_size >= N (the full batch: variance 0)")


def test_variance_of_identical_rows_is_zero(student):
    G = np.tile(random_normal(7100, (1, 4)), (6, 1))  # six copies of one gradient
    assert_close(student.minibatch_gradient_variance(G, 2), 0.0,
                 "minibatch_gradient_variance when every per-example gradient is the same")


@pytest.mark.parametrize("scale", [1e-100, 1e100])
def test_variance_scales_quadratically(student, scale):
    G, batch_size = random_normal(7200, (7, 3)), 3
    expected = enumerated_variance(G, batch_size) * scale**2
    assert_close(student.minibatch_gradient_variance(G * scale, batch_size), expected,
                 f"minibatch_gradient_variance of G * {scale:g} (should be scale^2 times that of G)",
                 tol=Tolerance(1e-9, 0.0))


@pytest.mark.parametrize("N, p, batch_size", [(200, 5, 17), (1000, 2, 999), (50, 10, 1)])
def test_variance_large_populations(student, reference, N, p, batch_size):
    G = random_normal(7300 + N, (N, p)) + 3.0
    assert_close(student.minibatch_gradient_variance(G, batch_size), reference.minibatch_gradient_variance(G, batch_size),
                 f"minibatch_gradient_variance where {divides(G.shape[0], batch_size)}")


# ================================================================ Task 3.4: cosine schedule

# By hand from the formula. max_lr=1, min_lr=0, warmup 4, cosine until 12 (cos(pi/4) = sqrt(2)/2):
HAND_TABLE_WARMUP = [
    (0, 0.0), (1, 0.25), (3, 0.75), (4, 1.0), (6, 0.5 + math.sqrt(2) / 4), (8, 0.5),
    (10, 0.5 - math.sqrt(2) / 4), (11, 0.5 - 0.5 * math.cos(math.pi / 8)), (12, 0.0), (13, 0.0), (1000, 0.0),
]
# max_lr=0.5, min_lr=0.1, no warmup, cosine until 3 (cos(pi/3) = 1/2):
HAND_TABLE_NO_WARMUP = [(0, 0.5), (1, 0.4), (2, 0.2), (3, 0.1), (4, 0.1), (99, 0.1)]


@pytest.mark.parametrize("step, expected", HAND_TABLE_WARMUP, ids=[f"step{s}" for s, _ in HAND_TABLE_WARMUP])
def test_cosine_lr_hand_table_with_warmup(student, step, expected):
    with diagnose(lambda: explain_cosine(student.cosine_lr)):
        assert_close(student.cosine_lr(step, 1.0, 0.0, 4, 12), expected,
                     f"cosine_lr on a hand-computed table with warmup, {phase_of(step, 4, 12)}")


@pytest.mark.parametrize("step, expected", HAND_TABLE_NO_WARMUP, ids=[f"step{s}" for s, _ in HAND_TABLE_NO_WARMUP])
def test_cosine_lr_hand_table_without_warmup(student, step, expected):
    with diagnose(lambda: explain_cosine(student.cosine_lr)):
        assert_close(student.cosine_lr(step, 0.5, 0.1, 0, 3), expected,
                     f"cosine_lr on a hand-computed table without warmup, {phase_of(step, 0, 3)}")


@given(warmup=st.integers(0, 60), length=st.integers(1, 300), max_lr=st.floats(1e-5, 10.0),
       min_fraction=st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0]), data=st.data())
def test_cosine_lr_boundaries_and_formula(student, warmup, length, max_lr, min_fraction, data):
    cosine_steps, min_lr = warmup + length, max_lr * min_fraction
    # The formula's other spellings (max_lr * (step / W), max_lr - ..., ...) differ by ulps of max_lr.
    tol = Tolerance(rtol=1e-10, atol=1e-13 * max_lr)
    step = data.draw(st.integers(0, cosine_steps + 50), label="step")
    with diagnose(lambda: explain_cosine(student.cosine_lr)):
        check_cosine_point(student, step, warmup, length, cosine_steps, max_lr, min_lr, tol)


def phase_of(step, warmup, cosine_steps) -> str:
    if step < warmup:
        return "during warmup"
    return "in the cosine phase" if step <= cosine_steps else "after cosine_steps (stays at min_lr)"


def check_cosine_point(student, step, warmup, length, cosine_steps, max_lr, min_lr, tol):
    if step < warmup:
        expected, phase = max_lr * step / warmup, "during warmup (lr = max_lr * step / warmup_steps)"
    elif step <= cosine_steps:
        expected = min_lr + 0.5 * (1 + math.cos(math.pi * (step - warmup) / length)) * (max_lr - min_lr)
        phase = "in the cosine phase (progress (step - warmup_steps) / (cosine_steps - warmup_steps))"
    else:
        expected, phase = min_lr, "after cosine_steps (the schedule stays at min_lr: clamp)"
    assert_close(student.cosine_lr(step, max_lr, min_lr, warmup, cosine_steps), expected, f"cosine_lr {phase}", tol=tol)
    assert_close(student.cosine_lr(warmup, max_lr, min_lr, warmup, cosine_steps), max_lr,
                 "cosine_lr at the end of warmup (step = warmup_steps gives max_lr)", tol=tol)
    assert_close(student.cosine_lr(cosine_steps, max_lr, min_lr, warmup, cosine_steps), min_lr,
                 "cosine_lr at step = cosine_steps (the end of the cosine: min_lr)", tol=tol)
    assert_close(student.cosine_lr(cosine_steps + 1, max_lr, min_lr, warmup, cosine_steps), min_lr,
                 "cosine_lr one step after cosine_steps (stays at min_lr: clamp)", tol=tol)


@pytest.mark.parametrize("step, warmup_steps, cosine_steps", [
    (0, 5, 5), (7, 5, 5), (0, 0, 0), (1, 10, 3), (20, 10, 3), (2, 3, -1),
])
def test_cosine_lr_rejects_cosine_steps_not_after_warmup(student, step, warmup_steps, cosine_steps):
    expect_raises(ValueError, lambda: student.cosine_lr(step, 0.1, 0.0, warmup_steps, cosine_steps),
                  "cosine_lr with cosine_steps <= warmup_steps (or negative)")


# ================================================================ Task 3.5: mini-batch SGD

def noisy_regression(seed, n, d):
    """y = X w* + b* + noise: the loss stays away from zero, so relative comparisons stay meaningful."""
    X = random_normal(seed, (n, d))
    y = X @ random_normal(seed + 1, d) + 0.7 + 0.3 * random_normal(seed + 2, n)
    return X, y


def assert_same_training(actual, expected, what, X=None, y=None, args=None):
    """(w, b, losses) against the reference's; on a difference, the loop is re-run on the trusted
    side with one known mistake at a time to say which (when X, y and args are given)."""
    require(isinstance(actual, (tuple, list)) and len(actual) == 3, f"{what}: expected (w, b, losses), got {type(actual).__name__}")
    # float64 throughout: other summation orders differ by ulps per step; steps here are
    # contractions (lr * ||x||^2 < 2), so the difference stays far below 1e-10 relative.
    with diagnose(lambda: explain_training(actual, X, y, args) if X is not None else None):
        assert_close(actual[0], expected[0], f"{what}: w", tol=FLOAT64)
        assert_close(actual[1], expected[1], f"{what}: b", tol=FLOAT64)
        assert_close(actual[2], expected[2], f"{what}: losses after each epoch", tol=FLOAT64)


def training_case(data, seed):
    """n, d, batch_size, epochs and lr; half the cases with n not a multiple of batch_size."""
    d = data.draw(st.integers(1, 5), label="d")
    batch_size = data.draw(st.integers(1, 9), label="batch_size")
    batches = data.draw(st.integers(1, 5), label="batches")
    remainder = data.draw(st.integers(0, batch_size - 1), label="remainder")
    n = max(1, (batches - (remainder > 0)) * batch_size + remainder)
    epochs = data.draw(st.integers(1, 6), label="epochs")
    lr = data.draw(st.sampled_from([0.01, 0.05, 0.1]), label="lr")
    return n, d, batch_size, epochs, lr


@given(seed=hidden_seeds(), data=st.data())
def test_train_constant_matches_reference(student, reference, seed, data):
    n, d, batch_size, epochs, lr = training_case(data, seed)
    X, y = noisy_regression(seed, n, d)
    args = dict(lr=lr, epochs=epochs, batch_size=batch_size, seed=seed)
    assert_same_training(student.train_linear_regression_sgd(X, y, **args),
                         reference.train_linear_regression_sgd(X, y, **args),
                         f"train_linear_regression_sgd (constant lr) where {divides(n, batch_size)}", X, y, args)


@pytest.mark.parametrize("n, batch_size, epochs", [(10, 4, 3), (7, 1, 2), (5, 8, 4), (13, 13, 3), (31, 6, 5)])
def test_train_constant_every_batch_counts(student, reference, n, batch_size, epochs):
    X, y = noisy_regression(8000 + n, n, 3)
    args = dict(lr=0.08, epochs=epochs, batch_size=batch_size, seed=8100 + n, schedule="constant")
    assert_same_training(student.train_linear_regression_sgd(X, y, **args),
                         reference.train_linear_regression_sgd(X, y, **args),
                         f"train_linear_regression_sgd (constant lr) where {divides(n, batch_size)}", X, y, args)


@pytest.mark.parametrize("scale", [1e-6, 1e8])
def test_train_targets_of_any_magnitude(student, reference, scale):
    # Starting from zero, every SGD iterate is linear in y: w and b scale with y, losses with y^2.
    X, y = noisy_regression(8150, 11, 3)
    args = dict(lr=0.1, epochs=1, batch_size=3, seed=8151)
    expected = reference.train_linear_regression_sgd(X, y * scale, **args)
    what = f"train_linear_regression_sgd with targets of size ~{scale:g}"
    actual = student.train_linear_regression_sgd(X, y * scale, **args)
    assert isinstance(actual, (tuple, list)) and len(actual) == 3, f"{what}: expected (w, b, losses)"
    assert_close(actual[0], expected[0], f"{what}: w", tol=Tolerance(1e-10, 1e-12 * scale))
    assert_close(actual[1], expected[1], f"{what}: b", tol=Tolerance(1e-10, 1e-12 * scale))
    assert_close(actual[2], expected[2], f"{what}: losses", tol=Tolerance(1e-10, 1e-12 * scale**2))


def test_train_zero_epochs_returns_the_start(student):
    X, y = noisy_regression(8200, 6, 2)
    w, b, losses = student.train_linear_regression_sgd(X, y, 0.1, 0, 2, 8201)
    assert_close(w, np.zeros(2), "train_linear_regression_sgd with epochs=0: w")
    assert_close(b, 0.0, "train_linear_regression_sgd with epochs=0: b")
    assert_equal(np.asarray(losses).shape, (0,), "train_linear_regression_sgd with epochs=0: shape of losses")


@given(seed=hidden_seeds(), data=st.data())
def test_train_cosine_matches_reference(student, reference, seed, data):
    n, d, batch_size, epochs, lr = training_case(data, seed)
    total_steps = epochs * math.ceil(n / batch_size)
    warmup = data.draw(st.integers(0, total_steps - 1), label="warmup_steps")
    min_lr = data.draw(st.sampled_from([0.0, 0.001, lr / 2]), label="min_lr")
    X, y = noisy_regression(seed, n, d)
    args = dict(lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, schedule="cosine",
                warmup_steps=warmup, min_lr=min_lr)
    assert_same_training(student.train_linear_regression_sgd(X, y, **args),
                         reference.train_linear_regression_sgd(X, y, **args),
                         f"train_linear_regression_sgd (cosine schedule, with warmup) where {divides(n, batch_size)}",
                         X, y, args)


@pytest.mark.parametrize("n, batch_size, epochs, warmup", [(10, 4, 3, 2), (9, 2, 2, 0), (6, 5, 4, 3), (3, 7, 5, 1)])
def test_train_cosine_counts_the_short_batch(student, reference, n, batch_size, epochs, warmup):
    X, y = noisy_regression(8300 + n, n, 2)
    args = dict(lr=0.1, epochs=epochs, batch_size=batch_size, seed=8400 + n, schedule="cosine",
                warmup_steps=warmup, min_lr=0.01)
    assert_same_training(student.train_linear_regression_sgd(X, y, **args),
                         reference.train_linear_regression_sgd(X, y, **args),
                         f"train_linear_regression_sgd (cosine over epochs * ceil(n / batch_size) steps) where "
                         f"{divides(n, batch_size)}", X, y, args)


@pytest.mark.parametrize("schedule", ["linear", "Cosine", "", "step"])
def test_train_rejects_unknown_schedule(student, schedule):
    X, y = noisy_regression(8500, 5, 2)
    expect_raises(ValueError, lambda: student.train_linear_regression_sgd(X, y, 0.1, 2, 2, 8501, schedule=schedule),
                  "train_linear_regression_sgd with a schedule other than 'constant' or 'cosine'")


@pytest.mark.parametrize("schedule, batch_size", [("constant", 8), ("cosine", 4), ("constant", 1)])
def test_train_converges_on_well_conditioned_data(student, schedule, batch_size):
    # Noise-free targets: every example is fitted exactly by (w*, b*), so SGD with a fixed
    # small step converges linearly to the least-squares solution.
    X = random_normal(8600, (64, 3))
    w_star, b_star = np.array([1.5, -2.0, 0.25]), -0.75
    y = X @ w_star + b_star
    solution = np.linalg.lstsq(np.hstack([X, np.ones((64, 1))]), y, rcond=None)[0]
    w, b, losses = student.train_linear_regression_sgd(X, y, 0.1, 60, batch_size, 8601, schedule=schedule, min_lr=0.02)
    what = f"train_linear_regression_sgd after 60 epochs ({schedule}, batch_size={batch_size}) on noise-free data"
    assert_close(w, solution[:3], f"{what}: w vs numpy.linalg.lstsq", tol=Tolerance(0.0, 1e-6))
    assert_close(b, solution[3], f"{what}: b vs numpy.linalg.lstsq", tol=Tolerance(0.0, 1e-6))
    losses = np.asarray(losses)
    assert losses[-1] < 1e-12, f"{what}: final loss {losses[-1]:.3g} should be below 1e-12"
    assert losses[-1] < losses[0] / 1e6, f"{what}: the loss should fall by a factor 1e6, went {losses[0]:.3g} -> {losses[-1]:.3g}"
