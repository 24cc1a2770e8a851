"""Assignment 3 (lecture 4): stochastic gradient descent.

Full-batch gradient descent on a loss L(w) = (1/n) sum_i l_i(w) touches all n examples
per step. Mini-batch SGD estimates the gradient from a random batch S of B examples,

    g_S = (1/B) sum_{i in S} grad l_i(w),        E[g_S] = grad L(w),

so a step costs B/n of a full one. The price is noise: this assignment builds the batches,
the per-example gradients, the exact variance of g_S, a warmup + cosine learning-rate
schedule, and mini-batch SGD for linear regression. numpy only.
"""
from __future__ import annotations

import math

import numpy as np


def minibatches(n, batch_size, seed, drop_last=False):
    """Split range(n) into shuffled mini-batches for one epoch.

    order = np.random.default_rng(seed).permutation(n); the batches are the consecutive
    slices order[0:B], order[B:2B], ...; the last one holds n mod B indices when B does not
    divide n, and is dropped when `drop_last`. Raises ValueError when batch_size < 1.
    Returns a list of integer index arrays.
    """
    raise NotImplementedError("Task 3.1: mini-batches")


def per_example_gradients(X, y, w, b):
    """Gradients of l_i(w, b) = 1/2 (x_i . w + b - y_i)^2 for every example i, vectorised.

    With the residual r_i = x_i . w + b - y_i:
        d l_i / d w = r_i x_i    (row i of G_w, shape (n, d))
        d l_i / d b = r_i        (entry i of G_b, shape (n,))
    Their mean over i is the full-batch gradient of L = (1/n) sum_i l_i.
    """
    raise NotImplementedError("Task 3.2: per-example gradients")


def minibatch_gradient_variance(G, batch_size):
    """E ||g_S - g||^2 for a batch S of B rows drawn uniformly without replacement.

    G (N, p) holds per-example gradients, g = (1/N) sum_i G_i their mean. With the
    population variance sigma^2 = (1/N) sum_i ||G_i - g||^2, sampling without replacement
    gives
        E ||g_S - g||^2 = (sigma^2 / B) * (N - B) / (N - 1),
    the with-replacement variance sigma^2 / B times the finite-population correction
    (N - B) / (N - 1): zero when B = N (the batch is the whole data set).
    Returns 0.0 when batch_size >= N; raises ValueError when batch_size < 1.
    """
    raise NotImplementedError("Task 3.3: mini-batch gradient variance")


def cosine_lr(step, max_lr, min_lr, warmup_steps, cosine_steps):
    """Linear warmup, then cosine decay from max_lr to min_lr, then constant min_lr.

        step <  W:        max_lr * step / W
        W <= step <= C:   min_lr + 1/2 (1 + cos(pi (step - W) / (C - W))) (max_lr - min_lr)
        step >  C:        min_lr
    with W = warmup_steps and C = cosine_steps. Raises ValueError unless C > W.
    """
    raise NotImplementedError("Task 3.4: warmup + cosine schedule")


def train_linear_regression_sgd(X, y, lr, epochs, batch_size, seed, schedule="constant",
                                warmup_steps=0, min_lr=0.0):
    """Mini-batch SGD on L(w, b) = 1/2 mean_i (x_i . w + b - y_i)^2.

    Start from w = 0, b = 0. Epoch e visits minibatches(n, batch_size, seed + e) (the last
    short batch kept); each batch S takes one step with the batch gradient
        g_w = (1/|S|) X_S^T r_S,   g_b = mean(r_S),   r_S = X_S w + b - y_S,
    and learning rate lr ("constant") or cosine_lr(t, lr, min_lr, warmup_steps, T)
    ("cosine"), t the global step counted from 0 and T = epochs * ceil(n / batch_size).
    Returns (w (d,), b, losses (epochs,)), losses[e] the full-data loss after epoch e.
    """
    raise NotImplementedError("Task 3.5: mini-batch SGD for linear regression")
