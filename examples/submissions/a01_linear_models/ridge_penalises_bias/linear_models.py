"""Plausible bug: ridge on the augmented design [X, 1], so the penalty (and, at l2 = 0, the
minimum-norm choice) also applies to the bias. Right whenever l2 = 0 and X has full rank;
everything else is correct and stable.
"""
import numpy as np


def linear_predict(X, w, b):
    return X @ w + b


def mse_loss(X, y, w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r ** 2), X.T @ r / len(y), np.mean(r)


def ridge_closed_form(X, y, l2=0.0):
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    if l2 > 0:
        theta = np.linalg.solve(A.T @ A / n + l2 * np.eye(d + 1), A.T @ y / n)
    else:
        theta = np.linalg.lstsq(A, y, rcond=None)[0]
    return theta[:d], theta[d]


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def logistic_loss(X, y, w, b):
    z = X @ w + b
    loss = np.mean(np.logaddexp(0, z) - y * z)
    g = (sigmoid(z) - y) / len(y)
    return loss, X.T @ g, np.sum(g)


def log_softmax(Z, axis=-1):
    s = Z - Z.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def softmax(Z, axis=-1):
    return np.exp(log_softmax(Z, axis))


def softmax_cross_entropy(X, y, W, b):
    n = X.shape[0]
    Z = X @ W + b
    loss = -np.mean(log_softmax(Z)[np.arange(n), y])
    G = softmax(Z)
    G[np.arange(n), y] -= 1
    G /= n
    return loss, X.T @ G, G.sum(axis=0)


def mlp_loss(X, y, params):
    n = X.shape[0]
    A = X @ params["W1"] + params["b1"]
    H = np.maximum(A, 0)
    Z = H @ params["W2"] + params["b2"]
    loss = -np.mean(log_softmax(Z)[np.arange(n), y])
    G = softmax(Z)
    G[np.arange(n), y] -= 1
    G /= n
    dA = (G @ params["W2"].T) * (A > 0)
    return loss, {"W1": X.T @ dA, "b1": dA.sum(axis=0), "W2": H.T @ G, "b2": G.sum(axis=0)}


def accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))
