"""An a02 submission that does not compile (a missing colon)."""
import numpy as np


def numerical_gradient(f, x, h=1e-5)
    x = np.array(x, dtype=float)
    grad = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        grad.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad
