"""A submission that does not compile: a missing closing parenthesis."""
import numpy as np


def minibatches(n, batch_size, seed, drop_last=False):
    order = np.random.default_rng(seed).permutation(n
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def per_example_gradients(X, y, w, b):
    residual = X @ w + b - y
    return residual[:, None] * X, residual
