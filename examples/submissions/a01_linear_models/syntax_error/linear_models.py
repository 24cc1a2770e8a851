import numpy as np


def linear_predict(X, w, b)
    return X @ w + b
