"""A correct a02 submission in another style than the reference.

Flat-index loops on a copy, SVD for the smoothness constant, a Value whose graph is
ordered by an explicit stack (no recursion) and whose tanh/sigmoid use exp formulas.
"""
import math

import numpy as np


def numerical_gradient(f, x, h=1e-5):
    base = np.array(x, dtype=float)
    grad = np.empty(base.size)
    for i in range(base.size):
        plus = base.copy()
        plus.flat[i] += h
        minus = base.copy()
        minus.flat[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2.0 * h)
    return grad.reshape(base.shape)


def relative_error(a, b, eps=1e-12):
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    worst = 0.0
    for ai, bi in zip(a, b):
        worst = max(worst, abs(ai - bi) / max(eps, abs(ai) + abs(bi)))
    return worst


def gradient_check(f, grad_f, x, h=1e-5):
    numeric = numerical_gradient(f, x, h)
    return relative_error(grad_f(np.array(x, dtype=float)), numeric)


def gradient_descent(grad_f, x0, lr, num_steps):
    xs = [np.array(x0, dtype=float)]
    for _ in range(num_steps):
        current = xs[-1]
        xs.append(current + (-lr) * np.asarray(grad_f(current.copy())))
    return np.stack(xs)


def quadratic_smoothness(A):
    return float(np.linalg.svd(np.asarray(A, dtype=float), compute_uv=False).max())


def backtracking_line_search(f, grad_f, x, alpha0=1.0, beta=0.5, c=1e-4, max_iter=50):
    x = np.asarray(x, dtype=float)
    g = np.asarray(grad_f(x), dtype=float)
    f0 = f(x)
    slope = np.vdot(g, g)
    alpha = alpha0
    for k in range(max_iter):
        alpha = alpha0 * beta ** k
        if f(x - alpha * g) <= f0 - c * alpha * slope:
            return alpha
    return alpha


class Value:
    def __init__(self, data, children=(), local_grads=()):
        self.data = float(data)
        self.grad = 0.0
        self.children = children          # the nodes this one was computed from
        self.local_grads = local_grads    # d(self)/d(child), one per child

    @staticmethod
    def wrap(other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        other = Value.wrap(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __radd__(self, other):
        return Value.wrap(other) + self

    def __sub__(self, other):
        other = Value.wrap(other)
        return Value(self.data - other.data, (self, other), (1.0, -1.0))

    def __rsub__(self, other):
        return Value.wrap(other) - self

    def __mul__(self, other):
        other = Value.wrap(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __rmul__(self, other):
        return Value.wrap(other) * self

    def __truediv__(self, other):
        other = Value.wrap(other)
        return Value(self.data / other.data, (self, other), (1.0 / other.data, -self.data / (other.data * other.data)))

    def __rtruediv__(self, other):
        return Value.wrap(other) / self

    def __neg__(self):
        return Value(-self.data, (self,), (-1.0,))

    def __pow__(self, n):
        local = 0.0 if n == 0 else n * math.pow(self.data, n - 1)
        return Value(math.pow(self.data, n), (self,), (local,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def tanh(self):
        e2 = math.exp(2.0 * self.data)
        t = (e2 - 1.0) / (e2 + 1.0)
        return Value(t, (self,), (1.0 - t * t,))

    def relu(self):
        positive = self.data > 0
        return Value(self.data if positive else 0.0, (self,), (1.0 if positive else 0.0,))

    def sigmoid(self):
        s = 1.0 / (1.0 + math.exp(-self.data))
        return Value(s, (self,), (s * (1.0 - s),))

    def backward(self):
        order = []
        visited = set()
        stack = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for child in node.children:
                if id(child) not in visited:
                    stack.append((child, False))
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for child, local in zip(node.children, node.local_grads):
                child.grad += local * node.grad
