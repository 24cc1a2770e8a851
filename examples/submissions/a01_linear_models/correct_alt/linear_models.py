"""A correct submission in another style: loops, SVD, logaddexp/tanh, one-hot matrices."""
import numpy as np


def linear_predict(X, w, b):
    return np.array([np.dot(row, w) for row in X], dtype=np.float64) + b


def mse_loss(X, y, w, b):
    n, d = X.shape
    loss, grad_w, grad_b = 0.0, np.zeros(d), 0.0
    for i in range(n):
        r = np.dot(X[i], w) + b - y[i]
        loss += r * r / (2 * n)
        grad_w += r * X[i] / n
        grad_b += r / n
    return loss, grad_w, grad_b


def ridge_closed_form(X, y, l2=0.0):
    # SVD of the centred data: w = V diag(s / (s^2 + n l2)) U^T yc, dropping s ~ 0 when l2 == 0.
    n, d = X.shape
    mx, my = X.sum(axis=0) / n, y.sum() / n
    U, s, Vt = np.linalg.svd(X - mx, full_matrices=False)
    if l2 > 0:
        factors = s / (s ** 2 + n * l2)
    else:
        keep = s > np.finfo(np.float64).eps * max(n, d) * (s[0] if s.size else 0.0)
        factors = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    w = Vt.T @ (factors * (U.T @ (y - my)))
    return w, my - np.dot(mx, w)


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def logistic_loss(X, y, w, b):
    n = len(y)
    z = X @ w + b
    losses = y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    g = (p - y) / n
    return losses.sum() / n, g @ X, g.sum()


def _logsumexp_last(Z):
    m = Z.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(Z - m).sum(axis=-1, keepdims=True))


def log_softmax(Z, axis=-1):
    moved = np.moveaxis(np.asarray(Z, dtype=np.float64), axis, -1)
    return np.moveaxis(moved - _logsumexp_last(moved), -1, axis)


def softmax(Z, axis=-1):
    return np.exp(log_softmax(Z, axis))


def softmax_cross_entropy(X, y, W, b):
    n, k = X.shape[0], W.shape[1]
    Y = np.eye(k)[y]
    Z = np.einsum("nd,dk->nk", X, W) + b
    loss = -(Y * log_softmax(Z)).sum() / n
    G = (softmax(Z) - Y) / n
    return loss, np.einsum("nd,nk->dk", X, G), G.sum(axis=0)


def mlp_loss(X, y, params):
    n = X.shape[0]
    A = np.einsum("nd,dh->nh", X, params["W1"]) + params["b1"]
    H = np.where(A > 0, A, 0.0)
    Z = H @ params["W2"] + params["b2"]
    Y = np.eye(Z.shape[1])[y]
    loss = -(Y * log_softmax(Z)).sum() / n
    G = (softmax(Z) - Y) / n
    dA = np.where(A > 0, G @ params["W2"].T, 0.0)
    return loss, {"W2": H.T @ G, "b2": G.sum(axis=0), "W1": X.T @ dA, "b1": dA.sum(axis=0)}


def accuracy(logits, y):
    hits = 0
    for row, label in zip(logits, y):
        best = 0
        for j in range(1, len(row)):
            if row[j] > row[best]:
                best = j
        hits += int(best == label)
    return hits / len(y)
