"""Diagnoses for a01: why a loss/gradient, a softmax or a ridge solution differs, found by
experiment on the trusted side (run only when a check fails). Sentences name the part and
the lecture's fix, never the drawn inputs.
"""
from __future__ import annotations

import numpy as np

from autograder.harness import first_true

OVERFLOW = ("right at moderate magnitudes but not at large ones: exp overflows (or log reaches log(0)); "
            "use the max-shift: subtract the maximum before exp (log-sum-exp, or the stable form of the "
            "logistic loss / sigmoid)")


def _array(value):
    return np.asarray(value, dtype=np.float64)


def close(a, b, rtol=1e-7, atol=1e-10) -> bool:
    try:
        a, b = _array(a), _array(b)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except Exception:  # noqa: BLE001
        return False


def _ratio_sentence(part: str, actual, expected, n: int | None) -> str:
    """What is wrong with one part, by the factor it is off by (if it is one)."""
    for factor, sentence in [
        (-1.0, f"the {part} has the wrong sign (check the residual: prediction - target)"),
        (2.0, f"the {part} is twice too large: the factor 1/2 of the loss is missing"),
        (0.5, f"the {part} is half what it should be (a factor 1/2 too many)"),
    ] + ([(float(n), f"the {part} is n times too large: average over the n examples (1/n), do not sum"),
          (1.0 / n, f"the {part} is divided by n once too often (1/n applied twice)")] if n and n > 1 else []):
        if close(actual, factor * _array(expected)) and not close(actual, expected):
            return sentence
    return ""


def explain_parts(actual, expected, names: list[str], n: int | None = None) -> str | None:
    """For (loss, grad, ...) tuples or a (loss, {name: grad}) pair: which parts differ, and how."""
    try:
        if isinstance(expected[1], dict):
            parts = [("loss", actual[0], expected[0])] + [(f"gradient of {k}", actual[1][k], v) for k, v in expected[1].items()]
        else:
            parts = list(zip(names, actual, expected))
    except Exception:  # noqa: BLE001
        return None
    wrong = [(name, a, e) for name, a, e in parts if not close(a, e)]
    if not wrong:
        return None
    for name, a, e in wrong:
        sentence = _ratio_sentence(name, a, e, n)
        if sentence:
            right = [p for p, _, _ in parts if p not in {w for w, _, _ in wrong}]
            return sentence + (f" ({', '.join(right)} right)" if right else "")
    wrong_names = [name for name, _, _ in wrong]
    right = [name for name, _, _ in parts if name not in wrong_names]
    if not right:
        return None
    if "loss" in right:
        if set(wrong_names) >= {"gradient of W1", "gradient of b1"} and "gradient of W2" not in wrong_names:
            return ("the loss and the gradients of W2 and b2 are right but those of W1 and b1 are not: check the "
                    "backward pass through the ReLU (multiply by the relu derivative, 1 where A > 0, else 0)")
        if wrong_names == ["gradient of W2"]:
            return ("only the gradient of W2 is wrong: dL/dW2 = H^T dZ uses the hidden activations H = relu(A), "
                    "not the pre-activations A")
        return f"the loss is right but the {' and '.join(wrong_names)} {'is' if len(wrong_names) == 1 else 'are'} not: check the backward formula"
    return f"the gradients are right but the loss is not: check the loss formula ({', '.join(right)} right)"


def explain_overflow(moderate_ok) -> str | None:
    """`moderate_ok()`: the same check on the same data scaled to moderate magnitudes holds."""
    return first_true([(OVERFLOW, moderate_ok)])


def softmax(Z, axis):
    Z = _array(Z)
    shifted = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def explain_softmax_axis(actual, Z, axis) -> str | None:
    if axis is None or axis in (-1, np.ndim(Z) - 1):
        return None
    def sums(along):
        return np.sum(_array(actual), axis=along)

    return first_true([("normalises over the last axis whatever axis is asked for: use the axis argument "
                        "(max, exp-sum with keepdims=True along that axis)",
                        lambda: close(actual, softmax(Z, -1))
                        or (close(sums(-1), 1.0) and not close(sums(axis), 1.0)))])


def explain_ties(actual, logits, y) -> str | None:
    last = np.shape(logits)[1] - 1 - np.argmax(_array(logits)[:, ::-1], axis=1)
    return first_true([("ties go to the last maximum; the convention (np.argmax's) is that the first maximum wins",
                        lambda: close(actual, float(np.mean(last == np.asarray(y)))))])


def explain_ridge(w, b, X, y, l2) -> str | None:
    """Which known ridge mistake the student's (w, b) matches."""
    X, y = _array(X), _array(y)
    n, d = X.shape
    xm, ym = X.mean(axis=0), y.mean()
    Xc, yc = X - xm, y - ym

    def solve(A, r):
        return np.linalg.lstsq(A, r, rcond=None)[0]

    def matches(wv, bv):
        return close(w, wv, rtol=1e-6, atol=1e-8) and close(b, bv, rtol=1e-6, atol=1e-8)

    experiments = []
    if l2 > 0:
        summed = solve(Xc.T @ Xc + l2 * np.eye(d), Xc.T @ yc)
        experiments.append(("the penalty is not scaled to the averaged loss: the normal equations are "
                            "(Xc^T Xc / n + l2 I) w = Xc^T yc / n (penalty scaling by 1/n)",
                            lambda: matches(summed, ym - xm @ summed)))
        no_bias = solve(X.T @ X / n + l2 * np.eye(d), X.T @ y / n)
        experiments.append(("the bias is left out (b = 0, no centring): fit b = mean(y) - mean(X) . w and centre the data",
                            lambda: matches(no_bias, 0.0)))
        augmented = np.hstack([X, np.ones((n, 1))])
        both = solve(augmented.T @ augmented / n + l2 * np.eye(d + 1), augmented.T @ y / n)
        experiments.append(("the bias is penalised together with w: the penalty is l2/2 ||w||^2 only, b is not shrunk",
                            lambda: matches(both[:d], both[d])))
    else:
        no_bias = solve(X, y)
        experiments.append(("the bias is left out (b = 0, no centring): fit b = mean(y) - mean(X) . w and centre the data",
                            lambda: matches(no_bias, 0.0)))
        experiments.append(("at l2 = 0 with a rank-deficient X the normal equations are singular: use a "
                            "least-squares solver (lstsq) for the minimum-norm w",
                            lambda: np.linalg.matrix_rank(Xc) < d))
    return first_true(experiments)


def relu_zero_one_gradients(X, y, params):
    """The MLP's gradients of W1 and b1 with relu'(0) taken as 1 (the known mistake)."""
    X = _array(X)
    n = X.shape[0]
    A = X @ params["W1"] + params["b1"]
    H = np.maximum(A, 0.0)
    P = softmax(H @ params["W2"] + params["b2"], -1)
    P[np.arange(n), np.asarray(y)] -= 1.0
    dA = (P / n) @ _array(params["W2"]).T * (A >= 0)
    return X.T @ dA, dA.sum(axis=0)


def explain_relu_at_zero(actual, X, y, params) -> str | None:
    return first_true([("with pre-activations exactly 0 your gradients use relu'(0) = 1; the convention is "
                        "relu'(0) = 0 (a mask A > 0, not A >= 0)",
                        lambda: all(close(actual[1][k], v) for k, v in
                                    zip(("W1", "b1"), relu_zero_one_gradients(X, y, params))))])
