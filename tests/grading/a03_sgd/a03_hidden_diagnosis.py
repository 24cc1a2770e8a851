"""Hidden-only diagnoses for a03: the training loop and the cosine schedule re-implemented on
the trusted side with one known mistake each, compared with what the student returned on
the same inputs, and the known wrong factors and variance formulas. Never released (it
re-implements the answer). Sentences name the feature.
"""
from __future__ import annotations

import math

import numpy as np

from a03_diagnosis import near
from autograder.harness import first_true


def _cosine(step, max_lr, min_lr, warmup, total, bug=None):
    if step < warmup:
        return max_lr * (step + 1 if bug == "warmup_plus_one" else step) / warmup
    if step > total and bug != "no_clamp":
        return min_lr
    progress = step / total if bug == "progress" else (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def _batches(n, batch_size, seed):
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train(X, y, lr, epochs, batch_size, seed, schedule="constant", warmup_steps=0, min_lr=0.0, bug=None):
    """The training loop of the spec, with at most one known mistake `bug`."""
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    losses = np.zeros(epochs)
    per_epoch = (n // batch_size) if bug == "floor_steps" else math.ceil(n / batch_size)
    total = epochs * max(per_epoch, 1)
    step = 0
    for epoch in range(epochs):
        if bug == "step_per_epoch":
            step = 0
        for batch in _batches(n, batch_size, seed if bug == "seed_once" else seed + epoch):
            lr_t = lr if schedule == "constant" else _cosine(step, lr, min_lr, warmup_steps, total)
            residual = X[batch] @ w + b - y[batch]
            w = w - lr_t * (X[batch].T @ residual) / (n if bug == "divide_by_n" else len(batch))
            if bug != "bias_frozen":
                b = b - lr_t * float(np.mean(residual))
            step += 1
        residual = X @ w + b - y
        losses[epoch] = (1.0 if bug == "loss_no_half" else 0.5) * np.mean(residual ** 2)
    return w, b, losses


TRAINING_BUGS = [
    ("bias_frozen", "the bias b is never updated: step it with g_b = mean(r_S) like w"),
    ("loss_no_half", "the epoch losses miss the factor 1/2: L = 1/2 mean (x.w + b - y)^2 (w and b are right)"),
    ("divide_by_n", "the weight gradient is divided by n instead of the batch size |S|: average over the batch"),
    ("seed_once", "every epoch is shuffled with the same seed: epoch e uses minibatches(n, batch_size, seed + e)"),
    ("step_per_epoch", "the step counter restarts every epoch: the cosine schedule takes the global step t, "
                       "counted across epochs"),
    ("floor_steps", "the cosine runs over epochs * (n // batch_size) steps: the short last batch is a step too, "
                    "so it is epochs * ceil(n / batch_size)"),
]


def explain_training(actual, X, y, args) -> str | None:
    def matches(bug):
        w, b, losses = train(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64), bug=bug, **args)
        return near(actual[0], w) and near(actual[1], b) and near(actual[2], losses)

    return first_true([(sentence, lambda bug=bug: matches(bug)) for bug, sentence in TRAINING_BUGS])


def explain_cosine(cosine_lr) -> str | None:
    """Probe the student's schedule at a few fixed points of one trusted configuration."""
    max_lr, min_lr, warmup, total = 1.0, 0.1, 4, 12
    steps = [0, 1, 3, 4, 6, 8, 12, 13, 20]

    def matches(bug):
        return all(near(cosine_lr(s, max_lr, min_lr, warmup, total), _cosine(s, max_lr, min_lr, warmup, total, bug))
                   for s in steps)

    return first_true([
        ("after cosine_steps the schedule keeps following the cosine; it must stay at min_lr (clamp the step)",
         lambda: matches("no_clamp")),
        ("the cosine progress is step / cosine_steps; it is (step - warmup_steps) / (cosine_steps - warmup_steps), "
         "so the cosine starts at max_lr right after the warmup", lambda: matches("progress")),
        ("the warmup is one step early: lr = max_lr * step / warmup_steps, so step 0 has lr 0",
         lambda: matches("warmup_plus_one")),
    ])


def _near(a, b) -> bool:
    return near(a, b, rtol=1e-8)


def explain_factor(actual, expected, part: str):
    """A part off by a known factor: the sign of the residual, or the 1/2 of the squared loss."""
    return first_true([
        (f"the {part} has the wrong sign: the residual is prediction - target (x.w + b - y)",
         lambda: _near(actual, -np.asarray(expected)) and not _near(actual, expected)),
        (f"the {part} is twice too large: the loss is 1/2 (x.w + b - y)^2, whose gradient has no factor 2",
         lambda: _near(actual, 2 * np.asarray(expected)) and not _near(actual, expected)),
    ])


def explain_variance(actual, G, batch_size):
    """Which known variance mistake the student's value matches (trusted formulas, same G)."""
    G = np.asarray(G, dtype=np.float64)
    N = G.shape[0]
    centred = G - G.mean(axis=0)
    sigma2 = float(np.sum(centred ** 2)) / N
    fpc = (N - batch_size) / (N - 1)
    return first_true([
        ("sigma^2 / B is missing the finite-population correction (N - B) / (N - 1) (batches are drawn "
         "without replacement)", lambda: _near(actual, sigma2 / batch_size)),
        ("the finite-population correction is (N - B) / (N - 1), not (N - B) / N",
         lambda: _near(actual, sigma2 / batch_size * (N - batch_size) / N)),
        ("sigma^2 is the population variance (divide by N); the sample variance (N - 1) is a different quantity",
         lambda: _near(actual, sigma2 * N / (N - 1) / batch_size * fpc)),
        ("the mean gradient is not subtracted: that is the second moment, not the variance",
         lambda: _near(actual, float(np.sum(G ** 2)) / N / batch_size * fpc)),
    ])
