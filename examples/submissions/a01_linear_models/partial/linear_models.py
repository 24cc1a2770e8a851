"""A partial submission: tasks 1.1, 1.2, 1.4 and 1.6 done, the rest still stubs."""
import numpy as np


def linear_predict(X, w, b):
    return X @ w + b


def mse_loss(X, y, w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r ** 2), X.T @ r / len(y), np.mean(r)


def ridge_closed_form(X, y, l2=0.0):
    raise NotImplementedError("Task 1.3: ridge regression in closed form")


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def logistic_loss(X, y, w, b):
    raise NotImplementedError("Task 1.5: logistic loss and its gradient")


def softmax(Z, axis=-1):
    e = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(Z, axis=-1):
    raise NotImplementedError("Task 1.7: stable log-softmax")


def softmax_cross_entropy(X, y, W, b):
    raise NotImplementedError("Task 1.8: softmax cross-entropy and its gradient")


def mlp_loss(X, y, params):
    raise NotImplementedError("Task 1.9: two-layer network, forward and backward")


def accuracy(logits, y):
    raise NotImplementedError("Task 1.10: accuracy")
