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
    raise NotImplementedError("Task 1.1: linear prediction")


def mse_loss(X, y, w, b):
    """Half mean squared error and its gradient.

    With residuals r = X w + b - y (n,):
        L       = 1/(2n) sum_i r_i^2
        dL/dw   = 1/n X^T r          (d,)
        dL/db   = 1/n sum_i r_i      scalar
    Returns (L, dL/dw, dL/db).
    """
    raise NotImplementedError("Task 1.2: squared error and its gradient")


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
    raise NotImplementedError("Task 1.3: ridge regression in closed form")


# --------------------------------------------------------------------------- binary classification

def sigmoid(z):
    """The logistic function sigma(z) = 1 / (1 + exp(-z)), elementwise, any shape.

    exp(-z) overflows for z < -709. With e = exp(-|z|) in (0, 1] nothing overflows:
        sigma(z) = 1 / (1 + e)    for z >= 0
        sigma(z) = e / (1 + e)    for z <  0
    """
    raise NotImplementedError("Task 1.4: stable sigmoid")


def logistic_loss(X, y, w, b):
    """Mean binary cross-entropy of p = sigmoid(X w + b) against labels y in {0, 1}.

    With z = X w + b, -log sigma(z) = softplus(-z) and -log(1 - sigma(z)) = softplus(z), and
    softplus(-z) = softplus(z) - z, so each term is
        l_i = softplus(z_i) - y_i z_i,   softplus(z) = max(z, 0) + log1p(exp(-|z|)),
    finite for every finite z (never log(0)). The gradient needs only dl/dz = sigma(z) - y:
        dL/dw = 1/n X^T (sigma(z) - y),   dL/db = 1/n sum_i (sigma(z_i) - y_i).
    Returns (L, dL/dw, dL/db).
    """
    raise NotImplementedError("Task 1.5: logistic loss and its gradient")


# --------------------------------------------------------------------------- multi-class classification

def softmax(Z, axis=-1):
    """softmax(z)_j = exp(z_j) / sum_l exp(z_l) along `axis`.

    Shift invariance, softmax(z - c) = softmax(z), with c = max_l z_l makes every exponent
    <= 0: no overflow, and the largest term is exactly 1 so the sum is never 0.
    """
    raise NotImplementedError("Task 1.6: stable softmax")


def log_softmax(Z, axis=-1):
    """log softmax(z)_j = z_j - logsumexp(z), with logsumexp(z) = c + log sum_l exp(z_l - c).

    Taking log(softmax(z)) instead gives -inf wherever softmax underflows to 0 (a gap of
    more than about 745 between logits); this form stays finite.
    """
    raise NotImplementedError("Task 1.7: stable log-softmax")


def softmax_cross_entropy(X, y, W, b):
    """Mean cross-entropy of softmax(X W + b) against integer labels y in [0, k).

    With logits Z = X W + b (n, k), probabilities P = softmax(Z) and one-hot labels Y,
        L      = -1/n sum_i log P[i, y_i]
        dL/dZ  = (P - Y) / n
        dL/dW  = X^T dL/dZ        (d, k)
        dL/db  = sum_i dL/dZ[i]   (k,)
    Returns (L, dL/dW, dL/db).
    """
    raise NotImplementedError("Task 1.8: softmax cross-entropy and its gradient")


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
    raise NotImplementedError("Task 1.9: two-layer network, forward and backward")


def accuracy(logits, y):
    """Fraction of rows whose largest logit is at the label; ties go to the first maximum."""
    raise NotImplementedError("Task 1.10: accuracy")
