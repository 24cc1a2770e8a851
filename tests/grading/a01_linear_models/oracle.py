"""Trusted oracles, data builders and tolerances for the a01 hidden suite.

Every loss and gradient has a float64 torch-autograd oracle here; ridge regression has
numpy.linalg (normal equations, lstsq on centred data). Tolerances are FLOAT64's rule with
an absolute part scaled to the size of the numbers being cancelled: two exact-to-rounding
implementations that sum in another order differ by a few ulps of the *terms*, not of the
result (a loss of 1e-3 made of logits of 1e4 is only known to ~1e-12 absolutely).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.harness import require  # noqa: F401  (the tests call oracle.require: the kit's)
from autograder.harness.compare import FLOAT64, Tolerance

EPS = float(np.finfo(np.float64).eps)
SALT = 0xA01  # hidden data come from other random streams than the public tests'


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng((seed, SALT))


def scaled(scale: float) -> Tolerance:
    """FLOAT64, with atol raised to 256 ulps of `scale` (the largest term summed).

    256 covers the rounding of dot products of a few dozen terms and of log-sum-exp done in
    either order; any real bug in these tests is off by far more (O(1) relative or nan).
    """
    return Tolerance(rtol=FLOAT64.rtol, atol=max(FLOAT64.atol, 256 * EPS * float(scale)))


def solve_tolerance(condition: float, scale: float) -> Tolerance:
    """A linear solve is accurate to ~condition * eps relative to the solution's size `scale`.

    `condition` is that of the normal equations (the Gram matrix: the square of X's), the
    worst of the solvers the spec allows; 256 is the slack for the few dozen operations in
    each entry.
    """
    relative = max(FLOAT64.rtol, 256 * EPS * condition)
    return Tolerance(rtol=relative, atol=relative * max(float(scale), 1.0))


# Central differences: truncation error h^2 f'''/6 plus rounding eps |L| / h; with h ~ 1e-5
# both sit near 1e-10 of the loss' scale, far below 1e-5 relative.
CENTRAL_DIFFERENCE = Tolerance(rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- torch oracles

def _t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), dtype=torch.float64)


def _leaf(array) -> torch.Tensor:
    return _t(array).requires_grad_(True)


def _out(loss: torch.Tensor, *leaves: torch.Tensor):
    grads = torch.autograd.grad(loss, leaves)
    values = [g.numpy() if leaf.dim() else float(g) for g, leaf in zip(grads, leaves)]
    return (float(loss.detach()),) + tuple(values)


def torch_mse(X, y, w, b):
    """(loss, dL/dw, dL/db) of 0.5 * mean((X w + b - y)^2), by autograd."""
    tw, tb = _leaf(w), _leaf(b)
    loss = 0.5 * torch.mean((_t(X) @ tw + tb - _t(y)) ** 2)
    return _out(loss, tw, tb)


def torch_logistic(X, y, w, b):
    """(loss, dL/dw, dL/db) of mean binary cross-entropy with logits X w + b."""
    tw, tb = _leaf(w), _leaf(b)
    loss = F.binary_cross_entropy_with_logits(_t(X) @ tw + tb, _t(y))
    return _out(loss, tw, tb)


def torch_softmax_cross_entropy(X, y, W, b):
    """(loss, dL/dW, dL/db) of mean cross-entropy of softmax(X W + b)."""
    tW, tb = _leaf(W), _leaf(b)
    loss = F.cross_entropy(_t(X) @ tW + tb, torch.as_tensor(np.asarray(y), dtype=torch.long))
    return _out(loss, tW, tb)


def torch_mlp(X, y, params):
    """(loss, grads dict) of cross-entropy of relu(X W1 + b1) W2 + b2 (torch: relu'(0) = 0)."""
    leaves = {name: _leaf(params[name]) for name in ("W1", "b1", "W2", "b2")}
    hidden = torch.relu(_t(X) @ leaves["W1"] + leaves["b1"])
    logits = hidden @ leaves["W2"] + leaves["b2"]
    loss = F.cross_entropy(logits, torch.as_tensor(np.asarray(y), dtype=torch.long))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return float(loss.detach()), {name: g.numpy() for name, g in zip(leaves, grads)}


def torch_sigmoid(z):
    return torch.sigmoid(_t(z)).numpy()


def torch_softmax(Z, axis):
    return torch.softmax(_t(Z), dim=axis).numpy()


def torch_log_softmax(Z, axis):
    return torch.log_softmax(_t(Z), dim=axis).numpy()


# --------------------------------------------------------------------------- numeric gradients

def numeric_gradient(loss, arrays: list, h: float = 1e-5) -> list:
    """Central differences of loss(*arrays) in every entry of every array (trusted side)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for index, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[index][position] += h
            minus[index][position] -= h
            grad[position] = (loss(*plus) - loss(*minus)) / (2 * h)
        grads.append(grad if array.shape else float(grad))
    return grads


def directional_difference(loss, arrays: list, directions: list, h: float = 1e-5) -> float:
    """(L(theta + h v) - L(theta - h v)) / 2h: two calls of a (student's) loss."""
    plus = [np.asarray(a, dtype=np.float64) + h * v for a, v in zip(arrays, directions)]
    minus = [np.asarray(a, dtype=np.float64) - h * v for a, v in zip(arrays, directions)]
    plus = [float(p) if np.ndim(p) == 0 else p for p in plus]
    minus = [float(m) if np.ndim(m) == 0 else m for m in minus]
    return (float(loss(*plus)) - float(loss(*minus))) / (2 * h)


def unit_directions(generator: np.random.Generator, arrays: list) -> list:
    """A random direction of total norm 1 over all entries of `arrays`."""
    parts = [generator.standard_normal(np.shape(a)) for a in arrays]
    norm = np.sqrt(sum(float(np.sum(p * p)) for p in parts))
    return [p / norm for p in parts]


# --------------------------------------------------------------------------- data

def regression_data(seed: int, n: int, d: int, *, scale: float = 1.0, offset: float = 0.0):
    """X (n, d) with column offsets, targets y from a noisy linear model, a point (w, b)."""
    g = rng(seed)
    X = g.standard_normal((n, d)) * scale + offset * g.standard_normal(d)
    w_true = g.standard_normal(d)
    y = X @ w_true + offset * g.standard_normal() + g.standard_normal(n)
    return X, y, g.standard_normal(d), float(g.standard_normal())


def labels(g: np.random.Generator, n: int, k: int) -> np.ndarray:
    return g.integers(0, k, size=n).astype(np.int64)


def logits_scale(X, W, b) -> float:
    """max_ij sum_l |X_il W_lj| + |b_j|: the size of the terms summed into a logit."""
    W = np.asarray(W).reshape(np.shape(X)[1], -1)
    return float(np.max(np.abs(X) @ np.abs(W) + np.abs(np.asarray(b))))


def rank_deficient_design(seed: int, n: int, rank: int, extra: list[str]):
    """X whose centred columns span exactly `rank` dimensions, and y.

    The first `rank` columns are random (with offsets); each entry of `extra` adds one more
    column: "duplicate" (a copy of a random column), "scaled" (a column times a power of
    two) or "constant" (a value exactly representable, so centring gives exact zeros).
    Exact in floating point: centring commutes with copying and with scaling by 2^k.
    """
    g = rng(seed)
    base = g.standard_normal((n, rank)) + g.integers(-4, 5, size=rank)
    columns = [base[:, j] for j in range(rank)]
    for kind in extra:
        source = columns[int(g.integers(0, rank))]
        if kind == "duplicate":
            columns.append(source.copy())
        elif kind == "scaled":
            columns.append(source * 2.0 ** int(g.integers(-3, 4)))
        else:
            columns.append(np.full(n, float(g.choice([0.5, -2.0, 3.0, 0.0]))))
    order = g.permutation(len(columns))
    X = np.stack([columns[j] for j in order], axis=1)
    y = base @ g.standard_normal(rank) + 2.0 + g.standard_normal(n)
    return X, y


def centred_singular_values(X) -> np.ndarray:
    return np.linalg.svd(X - X.mean(axis=0), compute_uv=False)


def min_norm_least_squares(X, y):
    """The l2 = 0 oracle: lstsq on centred data (minimum ||w||), b from the means."""
    x_mean, y_mean = X.mean(axis=0), y.mean()
    w = np.linalg.lstsq(X - x_mean, y - y_mean, rcond=None)[0]
    return w, float(y_mean - x_mean @ w)


def ridge_normal_equations(X, y, l2):
    """The l2 > 0 oracle: the (d+1) x (d+1) normal equations in (w, b), bias unpenalised."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])                      # (n, d + 1)
    penalty = np.diag(np.r_[np.full(d, l2), 0.0])            # no penalty on b
    M = A.T @ A / n + penalty
    theta = np.linalg.solve(M, A.T @ y / n)
    return theta[:d], float(theta[d]), float(np.linalg.cond(M))


def ridge_objective_gradient(X, y, w, b, l2):
    """Gradient of 1/(2n)||X w + b - y||^2 + l2/2 ||w||^2 at (w, b): zero at the minimiser."""
    n = X.shape[0]
    residual = X @ w + b - y
    return X.T @ residual / n + l2 * w, float(np.mean(residual))
