"""Assignment 1 (lecture 2): linear models, from regression to a two-layer network.

Every model here scores an example x (a row of X) with an affine map, z = x . w + b, and
turns the scores into a loss whose gradient we write by hand:

    linear regression     L = 1/(2n) sum_i (z_i - y_i)^2          (squared error)
    logistic regression   L = 1/n sum_i softplus(z_i) - y_i z_i     (binary cross-entropy)
    softmax regression    L = 1/n sum_i logsumexp(z_i) - z_{i,y_i}  (cross-entropy, k classes)
    two-layer network     the same cross-entropy on logits relu(X W1 + b1) W2 + b2

Shapes: X (n, d), y (n,), w (d,), b a scalar; for k classes W (d, k), b (k,).
numpy only. The exponentials are written so that |logits| up to 1e4 give finite, exact
results without a single numpy overflow, divide-by-zero or invalid warning.
"""
from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- regression

def linear_predict(X, w, b):
    """Predictions of a linear model: y_hat = X w + b, one per row of X. Returns (n,)."""
    # BEGIN SOLUTION Task 1.1: linear prediction
    return X @ w + b  # (n,)
    # END SOLUTION


def mse_loss(X, y, w, b):
    """Half mean squared error and its gradient.

    With residuals r = X w + b - y (n,):
        L       = 1/(2n) sum_i r_i^2
        dL/dw   = 1/n X^T r          (d,)
        dL/db   = 1/n sum_i r_i      scalar
    Returns (L, dL/dw, dL/db).
    """
    # BEGIN SOLUTION Task 1.2: squared error and its gradient
    n = X.shape[0]
    residual = X @ w + b - y                    # (n,)
    loss = 0.5 * np.mean(residual ** 2)
    grad_w = X.T @ residual / n                 # (d,)
    grad_b = np.mean(residual)
    return float(loss), grad_w, float(grad_b)
    # END SOLUTION


def ridge_closed_form(X, y, l2=0.0):
    """Minimiser of 1/(2n) ||X w + b - y||^2 + l2/2 ||w||^2 (the bias is not penalised).

    Setting dL/db = 0 gives b = y_mean - x_mean . w, so with the centred data
    Xc = X - x_mean and yc = y - y_mean the problem in w alone is ridge without a bias:
        (Xc^T Xc / n + l2 I) w = Xc^T yc / n.
    For l2 > 0 the matrix is positive definite: solve it. For l2 == 0 and a rank-deficient
    Xc, infinitely many w fit equally well; the least-squares solver returns the one of
    minimum ||w|| (the pseudo-inverse solution), which is also the limit of ridge as l2 -> 0.
    Returns (w (d,), b scalar).
    """
    # BEGIN SOLUTION Task 1.3: ridge regression in closed form
    n, d = X.shape
    x_mean = X.mean(axis=0)                     # (d,)
    y_mean = y.mean()
    Xc = X - x_mean                             # (n, d)
    yc = y - y_mean                             # (n,)
    if l2 > 0:
        A = Xc.T @ Xc / n + l2 * np.eye(d)      # (d, d), positive definite
        w = np.linalg.solve(A, Xc.T @ yc / n)   # (d,)
    else:
        w = np.linalg.lstsq(Xc, yc, rcond=None)[0]  # (d,), minimum norm
    b = y_mean - x_mean @ w
    return w, float(b)
    # END SOLUTION


# --------------------------------------------------------------------------- binary classification

def sigmoid(z):
    """The logistic function sigma(z) = 1 / (1 + exp(-z)), elementwise, any shape.

    exp(-z) overflows for z < -709. With e = exp(-|z|) in (0, 1] nothing overflows:
        sigma(z) = 1 / (1 + e)    for z >= 0
        sigma(z) = e / (1 + e)    for z <  0
    """
    # BEGIN SOLUTION Task 1.4: stable sigmoid
    z = np.asarray(z)
    e = np.exp(-np.abs(z))                      # in (0, 1], may underflow to 0
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    # END SOLUTION


def logistic_loss(X, y, w, b):
    """Mean binary cross-entropy of p = sigmoid(X w + b) against labels y in {0, 1}.

    With z = X w + b, -log sigma(z) = softplus(-z) and -log(1 - sigma(z)) = softplus(z), and
    softplus(-z) = softplus(z) - z, so each term is
        l_i = softplus(z_i) - y_i z_i,   softplus(z) = max(z, 0) + log1p(exp(-|z|)),
    finite for every finite z (never log(0)). The gradient needs only dl/dz = sigma(z) - y:
        dL/dw = 1/n X^T (sigma(z) - y),   dL/db = 1/n sum_i (sigma(z_i) - y_i).
    Returns (L, dL/dw, dL/db).
    """
    # BEGIN SOLUTION Task 1.5: logistic loss and its gradient
    n = X.shape[0]
    z = X @ w + b                                           # (n,)
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    loss = np.mean(softplus - y * z)
    dz = (sigmoid(z) - y) / n                               # (n,)
    return float(loss), X.T @ dz, float(np.sum(dz))
    # END SOLUTION


# --------------------------------------------------------------------------- multi-class classification

def softmax(Z, axis=-1):
    """softmax(z)_j = exp(z_j) / sum_l exp(z_l) along `axis`.

    Shift invariance, softmax(z - c) = softmax(z), with c = max_l z_l makes every exponent
    <= 0: no overflow, and the largest term is exactly 1 so the sum is never 0.
    """
    # BEGIN SOLUTION Task 1.6: stable softmax
    shifted = Z - np.max(Z, axis=axis, keepdims=True)       # <= 0
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
    # END SOLUTION


def log_softmax(Z, axis=-1):
    """log softmax(z)_j = z_j - logsumexp(z), with logsumexp(z) = c + log sum_l exp(z_l - c).

    Taking log(softmax(z)) instead gives -inf wherever softmax underflows to 0 (a gap of
    more than about 745 between logits); this form stays finite.
    """
    # BEGIN SOLUTION Task 1.7: stable log-softmax
    shifted = Z - np.max(Z, axis=axis, keepdims=True)       # <= 0
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    # END SOLUTION


def softmax_cross_entropy(X, y, W, b):
    """Mean cross-entropy of softmax(X W + b) against integer labels y in [0, k).

    With logits Z = X W + b (n, k), probabilities P = softmax(Z) and one-hot labels Y,
        L      = -1/n sum_i log P[i, y_i]
        dL/dZ  = (P - Y) / n
        dL/dW  = X^T dL/dZ        (d, k)
        dL/db  = sum_i dL/dZ[i]   (k,)
    Returns (L, dL/dW, dL/db).
    """
    # BEGIN SOLUTION Task 1.8: softmax cross-entropy and its gradient
    n = X.shape[0]
    rows = np.arange(n)
    Z = X @ W + b                                           # (n, k)
    loss = -np.mean(log_softmax(Z)[rows, y])
    dZ = softmax(Z)                                         # (n, k)
    dZ[rows, y] -= 1.0
    dZ /= n
    return float(loss), X.T @ dZ, dZ.sum(axis=0)
    # END SOLUTION


# --------------------------------------------------------------------------- a two-layer network

def mlp_loss(X, y, params):
    """Cross-entropy of a two-layer ReLU network, and its gradients by backpropagation.

    Forward, for params W1 (d, h), b1 (h,), W2 (h, k), b2 (k,):
        A = X W1 + b1 (n, h),   H = relu(A),   Z = H W2 + b2 (n, k),   L = CE(Z, y).
    Backward, from dZ = (softmax(Z) - Y) / n:
        dW2 = H^T dZ,   db2 = sum_i dZ[i],   dH = dZ W2^T,
        dA  = dH * [A > 0]          (relu'(0) = 0),
        dW1 = X^T dA,   db1 = sum_i dA[i].
    Returns (L, grads) with grads a dict with the keys of params.
    """
    # BEGIN SOLUTION Task 1.9: two-layer network, forward and backward
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    rows = np.arange(n)
    A = X @ W1 + b1                                         # (n, h)
    H = np.maximum(A, 0.0)                                  # (n, h)
    Z = H @ W2 + b2                                         # (n, k)
    loss = -np.mean(log_softmax(Z)[rows, y])
    dZ = softmax(Z)                                         # (n, k)
    dZ[rows, y] -= 1.0
    dZ /= n
    dH = dZ @ W2.T                                          # (n, h)
    dA = dH * (A > 0)                                       # (n, h)
    grads = {
        "W1": X.T @ dA, "b1": dA.sum(axis=0),
        "W2": H.T @ dZ, "b2": dZ.sum(axis=0),
    }
    return float(loss), grads
    # END SOLUTION


def accuracy(logits, y):
    """Fraction of rows whose largest logit is at the label; ties go to the first maximum."""
    # BEGIN SOLUTION Task 1.10: accuracy
    return float(np.mean(np.argmax(logits, axis=1) == y))
    # END SOLUTION
