"""A partial submission: tasks 3.1, 3.2 and 3.4 done; 3.3 and 3.5 still stubs."""
import math

import numpy as np


def minibatches(n, batch_size, seed, drop_last=False):
    order = np.random.default_rng(seed).permutation(n)
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def per_example_gradients(X, y, w, b):
    residual = X @ w + b - y
    return residual[:, None] * X, residual


def minibatch_gradient_variance(G, batch_size):
    raise NotImplementedError("Task 3.3: mini-batch gradient variance")


def cosine_lr(step, max_lr, min_lr, warmup_steps, cosine_steps):
    if cosine_steps <= warmup_steps:
        raise ValueError("cosine_steps must be larger than warmup_steps")
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    if step > cosine_steps:
        return min_lr
    progress = (step - warmup_steps) / (cosine_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def train_linear_regression_sgd(X, y, lr, epochs, batch_size, seed, schedule="constant",
                                warmup_steps=0, min_lr=0.0):
    raise NotImplementedError("Task 3.5: mini-batch SGD for linear regression")
