"""Assignment 2 (lecture 3): gradients, gradient descent and reverse-mode autodiff.

Numpy only. Functions handed to you (f, grad_f) are black boxes: call them, never assume
how they are implemented. Every function returns its result.
"""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------- checking gradients

def numerical_gradient(f, x, h=1e-5):
    """Central differences, one entry of x at a time.

        df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

    The error is O(h^2) (the h^1 terms of the two Taylor expansions cancel), against
    O(h) for the one-sided difference (f(x + h e_i) - f(x)) / h. `x` may have any shape;
    f maps an array shaped like x to a float. Returns an array shaped like x.
    """
    raise NotImplementedError("Task 2.1: numerical gradient")


def relative_error(a, b, eps=1e-12):
    """max_i |a_i - b_i| / max(eps, |a_i| + |b_i|): scale-free, 0 when a == b."""
    raise NotImplementedError("Task 2.2: relative error and gradient check")


def gradient_check(f, grad_f, x, h=1e-5):
    """relative_error(grad_f(x), numerical_gradient(f, x, h)): ~1e-8 or less for a correct grad_f."""
    raise NotImplementedError("Task 2.2: relative error and gradient check")


# ----------------------------------------------------------------- gradient descent

def gradient_descent(grad_f, x0, lr, num_steps):
    """Plain gradient descent, x_{t+1} = x_t - lr * grad_f(x_t).

    Returns the trajectory, an array of shape (num_steps + 1, *x0.shape) whose row t is
    x_t (row 0 is x0).
    """
    raise NotImplementedError("Task 2.3: gradient descent")


def quadratic_smoothness(A):
    """The smoothness constant L of f(x) = 1/2 x^T A x - b^T x, A symmetric PSD.

    grad f(x) = A x - b, so ||grad f(x) - grad f(y)|| = ||A (x - y)|| <= lambda_max(A) ||x - y||:
    L = lambda_max(A). With lr = 1/L, gradient descent on a convex L-smooth f satisfies
    f(x_k) - f* <= L ||x_0 - x*||^2 / (2k).
    """
    raise NotImplementedError("Task 2.4: smoothness of a quadratic")


def backtracking_line_search(f, grad_f, x, alpha0=1.0, beta=0.5, c=1e-4, max_iter=50):
    """Shrink the step alpha = alpha0 * beta**k, k = 0, 1, ..., until the Armijo condition

        f(x - alpha g) <= f(x) - c * alpha * ||g||^2,      g = grad_f(x),

    holds (sufficient decrease: at least a fraction c of what the linear model promises).
    Returns the first such alpha; if none of the max_iter candidates passes, the last one,
    alpha0 * beta**(max_iter - 1).
    """
    raise NotImplementedError("Task 2.5: backtracking line search")


# ----------------------------------------------------------------- reverse-mode autodiff

class Value:
    """A scalar node of a computational graph that knows how to backpropagate.

    Each operation creates a new Value that remembers its parents and a function
    `_backward` applying the chain rule locally: given d(out)/d(self) in self.grad, add
    d(out)/d(parent) = self.grad * d(self)/d(parent) to each parent's grad.
    """

    def __init__(self, data, _parents=(), _op=""):
        raise NotImplementedError("Task 2.6: Value operations")

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    # --- binary operations: d(a+b) = da + db, d(ab) = b da + a db
    def __add__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    def __mul__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    def __pow__(self, exponent):
        """x ** n for a number n: d(x^n)/dx = n x^(n-1), and 0 when n == 0."""
        raise NotImplementedError("Task 2.6: Value operations")

    def __truediv__(self, other):
        """a / b: d/da = 1/b, d/db = -a/b^2."""
        raise NotImplementedError("Task 2.6: Value operations")

    def __neg__(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def __sub__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    # --- a number on the left: 2 + v calls v.__radd__(2), 2 - v calls v.__rsub__(2), ...
    def __radd__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    def __rsub__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    def __rmul__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    def __rtruediv__(self, other):
        raise NotImplementedError("Task 2.6: Value operations")

    # --- elementary functions: exp' = exp, log' = 1/x, tanh' = 1 - tanh^2,
    #     relu' = [x > 0] (0 at 0), sigmoid' = s (1 - s)
    def exp(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def log(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def tanh(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def relu(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def sigmoid(self):
        raise NotImplementedError("Task 2.6: Value operations")

    def backward(self):
        """Set every node's grad to d(self)/d(node).

        Order the graph topologically (a node after all its parents), zero every grad,
        seed self.grad = 1, then visit the nodes in reverse order: when a node's
        `_backward` runs, every path from self to it has already added its share.
        """
        raise NotImplementedError("Task 2.7: backpropagation")
