"""Plausible bug: the textbook formulas for sigmoid and softmax, without the stability tricks.

Right at moderate logits; at |logits| ~ 1e3 exp overflows (numpy warnings, inf / inf = nan,
log(0) = -inf). Everything else is correct.
"""
import numpy as np


def linear_predict(X, w, b):
    return X @ w + b


def mse_loss(X, y, w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r ** 2), X.T @ r / len(y), np.mean(r)


def ridge_closed_form(X, y, l2=0.0):
    n, d = X.shape
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    if l2 > 0:
        w = np.linalg.solve(Xc.T @ Xc + n * l2 * np.eye(d), Xc.T @ yc)
    else:
        w = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    return w, y.mean() - X.mean(axis=0) @ w


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_loss(X, y, w, b):
    p = sigmoid(X @ w + b)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    g = (p - y) / len(y)
    return loss, X.T @ g, np.sum(g)


def softmax(Z, axis=-1):
    e = np.exp(Z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(Z, axis=-1):
    return np.log(softmax(Z, axis))


def softmax_cross_entropy(X, y, W, b):
    n = X.shape[0]
    Z = X @ W + b
    P = softmax(Z)
    loss = -np.mean(np.log(P[np.arange(n), y]))
    G = P.copy()
    G[np.arange(n), y] -= 1
    G /= n
    return loss, X.T @ G, G.sum(axis=0)


def mlp_loss(X, y, params):
    n = X.shape[0]
    A = X @ params["W1"] + params["b1"]
    H = np.maximum(A, 0)
    Z = H @ params["W2"] + params["b2"]
    P = softmax(Z)
    loss = -np.mean(np.log(P[np.arange(n), y]))
    G = P.copy()
    G[np.arange(n), y] -= 1
    G /= n
    dA = (G @ params["W2"].T) * (A > 0)
    return loss, {"W1": X.T @ dA, "b1": dA.sum(axis=0), "W2": H.T @ G, "b2": G.sum(axis=0)}


def accuracy(logits, y):
    return np.mean(np.argmax(logits, axis=1) == y)
