"""Uses torch, which a01 forbids (numpy only): refused before any test runs, score 0."""
import numpy as np
import torch


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
    return torch.sigmoid(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()


def logistic_loss(X, y, w, b):
    z = X @ w + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(z), torch.from_numpy(y * 1.0))
    g = (sigmoid(z) - y) / len(y)
    return float(loss), X.T @ g, np.sum(g)


def softmax(Z, axis=-1):
    return torch.softmax(torch.from_numpy(Z), dim=axis).numpy()


def log_softmax(Z, axis=-1):
    return torch.log_softmax(torch.from_numpy(Z), dim=axis).numpy()


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
