"""A correct submission in another style: loops, einsum, np.var, a precomputed schedule."""
import math

import numpy as np


def minibatches(n, batch_size, seed, drop_last=False):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    batches = []
    start = 0
    while start < n:
        batch = order[start:start + batch_size]
        if len(batch) < batch_size and drop_last:
            break
        batches.append(batch)
        start += batch_size
    return batches


def per_example_gradients(X, y, w, b):
    r = np.einsum("nd,d->n", X, w) + b - y
    return np.einsum("n,nd->nd", r, X), r


def minibatch_gradient_variance(G, batch_size):
    N = len(G)
    if batch_size >= N:
        return 0.0
    total_variance = np.var(G, axis=0).sum()
    return float((1.0 / batch_size - 1.0 / N) * N / (N - 1) * total_variance)


def cosine_lr(step, max_lr, min_lr, warmup_steps, cosine_steps):
    if not cosine_steps > warmup_steps:
        raise ValueError("need cosine_steps > warmup_steps")
    if step >= cosine_steps:
        return min_lr
    if step < warmup_steps:
        return max_lr * (step / warmup_steps)
    c = math.cos(math.pi * (step - warmup_steps) / (cosine_steps - warmup_steps))
    return max_lr - 0.5 * (1 - c) * (max_lr - min_lr)


def train_linear_regression_sgd(X, y, lr, epochs, batch_size, seed, schedule="constant",
                                warmup_steps=0, min_lr=0.0):
    if schedule == "constant":
        def rate(t):
            return lr
    elif schedule == "cosine":
        steps_per_epoch = -(-len(X) // batch_size)
        def rate(t):
            return cosine_lr(t, lr, min_lr, warmup_steps, epochs * steps_per_epoch)
    else:
        raise ValueError(f"unknown schedule {schedule}")
    w = np.zeros(X.shape[1])
    b = np.float64(0.0)
    losses = []
    t = 0
    for e in range(epochs):
        for idx in minibatches(len(X), batch_size, seed + e):
            G_w, G_b = per_example_gradients(X[idx], y[idx], w, b)
            eta = rate(t)
            w = w - eta * G_w.mean(axis=0)
            b = b - eta * G_b.mean()
            t += 1
        losses.append(0.5 * np.mean((X @ w + b - y) ** 2))
    return w, b, np.array(losses, dtype=np.float64)
