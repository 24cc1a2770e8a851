"""Hidden tests, tasks 1.4-1.10: sigmoid, logistic loss, softmax, cross-entropy, MLP, accuracy.

Oracles: torch in float64 (sigmoid, softmax, log_softmax, binary and multi-class
cross-entropy, autograd through a ReLU network, whose relu'(0) is 0), central differences,
brute force for accuracy. Stability tests push |logits| to 1e3..1e4 and run the call
under `probe.numpy_warnings`: results must be finite and exact (sigmoid down to its subnormal
values); the warnings, reported by the worker, only explain a failure (values decide).
"""
from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import oracle
from autograder.harness.strategies import hidden_seeds
from a01_diagnosis import close, explain_overflow, explain_parts, explain_relu_at_zero, explain_softmax_axis, explain_ties
from autograder.harness import diagnose
from autograder.harness.compare import FLOAT64, Tolerance, assert_close

LARGE = st.sampled_from([1e3, 2.5e3, 1e4])   # the largest |logit| in a stability test


NUMPY_WARNINGS = {"overflow": "overflow", "divide by zero": "divide-by-zero", "invalid value": "invalid-value"}


@contextlib.contextmanager
def _judged_by_values(warnings: list[str]):
    """Values decide: numpy's warnings come from the worker (the submission can silence them with
    np.errstate), so they are supporting evidence only, named (in the grader's words) when values fail."""
    try:
        yield
    except AssertionError as error:
        kinds = sorted({name for key, name in NUMPY_WARNINGS.items() if any(key in str(w) for w in warnings)})
        if kinds:
            raise AssertionError(f"{error} (numpy also reported {', '.join(kinds)} warnings)") from None
        raise


def _subnormal_exact(result, z, what: str) -> None:
    """Where exp(z) is a subnormal number (-745 < z < -709.8), sigmoid(z) is that subnormal: 1 / (1 + exp(-z))
    overflows to 1 / inf = 0 there, with or without numpy's warnings."""
    result = np.asarray(result, dtype=np.float64)
    tiny = (z > -745.0) & (z < -709.8)
    expected = np.exp(z)  # for z < -700, 1 + exp(z) == 1: sigmoid(z) is exp(z), correctly rounded (torch gives 0)
    close = np.abs(result[tiny] - expected[tiny]) <= 1e-3 * expected[tiny] + 1e-323
    oracle.require(bool(np.all(close)), f"{what}: for z below -709.8 the result must be the tiny positive "
                                        "exp(z) / (1 + exp(z)), not 0 (does 1 + exp(-z) overflow?)")


def _finite(value, what: str) -> None:
    values = [value] if not isinstance(value, (tuple, list, dict)) else (
        list(value.values()) if isinstance(value, dict) else list(value))
    for item in values:
        if isinstance(item, (tuple, list, dict)):
            _finite(item, what)
        else:
            oracle.require(bool(np.all(np.isfinite(np.asarray(item, dtype=np.float64)))),
                           f"{what}: the result holds nan or inf")


def _huge_logits(g: np.random.Generator, shape, largest: float) -> np.ndarray:
    """Logits of both signs, magnitudes spread over [1, largest], the largest one present."""
    magnitudes = 10.0 ** g.uniform(0.0, np.log10(largest), size=shape)
    Z = magnitudes * g.choice([-1.0, 1.0], size=shape)
    Z.flat[int(g.integers(0, Z.size))] = largest * g.choice([-1.0, 1.0])
    return Z


def _rescale_to(largest: float, X, W, b):
    """Scale (W, b) so that max |X W + b| == largest."""
    Z = X @ W + b
    factor = largest / max(float(np.max(np.abs(Z))), 1e-12)
    return W * factor, b * factor


def _axis_call(function, Z, axis, positional):
    """softmax(Z), softmax(Z, axis) or softmax(Z, axis=axis)."""
    if axis is None:
        return function(Z)
    return function(Z, axis) if positional else function(Z, axis=axis)


@st.composite
def _array_and_axis(draw, min_dims=1):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=3)))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return shape, axis


# --------------------------------------------------------------------------- Task 1.4

@given(seed=hidden_seeds(), shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
       scale=st.sampled_from([1.0, 8.0, 40.0]))
def test_sigmoid_matches_torch(student, seed, shape, scale):
    z = oracle.rng(seed).standard_normal(shape) * scale
    assert_close(student.sigmoid(z), oracle.torch_sigmoid(z), "sigmoid on an array")


@given(seed=hidden_seeds(), n=st.integers(1, 20), largest=LARGE)
def test_sigmoid_stable_at_large_magnitudes(student, probe, seed, n, largest):
    edges = np.array([0.0, 36.8, -36.8, 709.5, -709.5, 745.2, -745.2, largest, -largest])
    subnormal = -oracle.rng(seed + 1).uniform(710.0, 740.0, size=3)  # exp(z) subnormal: the naive form gives 0
    z = np.concatenate([_huge_logits(oracle.rng(seed), (n,), largest), edges, subnormal])
    result, warnings = probe.numpy_warnings(student.sigmoid, z)
    with diagnose(lambda: explain_overflow(lambda: close(student.sigmoid(z * 5 / largest), oracle.torch_sigmoid(z * 5 / largest)))), _judged_by_values(warnings):
        _finite(result, "sigmoid at |z| in the thousands (exp overflows beyond 709)")
        assert_close(result, oracle.torch_sigmoid(z), "sigmoid at |z| in the thousands (exp overflows beyond 709)")
        _subnormal_exact(result, z, "sigmoid at |z| in the thousands (exp overflows beyond 709)")

        oracle.require(bool(np.all((np.asarray(result) >= 0) & (np.asarray(result) <= 1))), "sigmoid values must lie in [0, 1]")
        mirrored = student.sigmoid(-z)
        assert_close(np.asarray(result) + np.asarray(mirrored), np.ones_like(z),
                     "sigmoid(z) + sigmoid(-z) (should be 1)", tol=Tolerance(rtol=0.0, atol=4 * oracle.EPS))


# --------------------------------------------------------------------------- Task 1.5

def _binary_problem(seed, n, d, scale=1.0):
    g = oracle.rng(seed)
    X = g.standard_normal((n, d))
    w, b = g.standard_normal(d) * scale, float(g.standard_normal()) * scale
    y = g.integers(0, 2, size=n).astype(np.float64)
    return X, y, w, b


def _check_against_oracle(actual, expected, X, W, b, what):
    """(loss, grad, grad): the loss is known to ulps of the logits, gradients also times |X|."""
    size = oracle.logits_scale(X, W, b)
    loss_tol = oracle.scaled(size)
    grad_tol = oracle.scaled(size * max(1.0, float(np.max(np.abs(X)))))
    oracle.require(isinstance(actual, (tuple, list)) and len(actual) == 3, f"{what} should return (loss, grad, grad)")
    with diagnose(lambda: explain_parts(actual, expected, ["loss", "gradient in the weights", "gradient in the bias"],
                                        n=X.shape[0])):
        assert_close(actual[0], expected[0], f"{what} loss", tol=loss_tol)
        assert_close(actual[1], expected[1], f"{what} gradient in the weights", tol=grad_tol)
        assert_close(actual[2], expected[2], f"{what} gradient in the bias", tol=grad_tol)


@given(seed=hidden_seeds(), n=st.integers(1, 16), d=st.integers(1, 6),
       scale=st.sampled_from([0.3, 1.0, 4.0]), integer_labels=st.booleans())
def test_logistic_loss_matches_torch_autograd(student, seed, n, d, scale, integer_labels):
    X, y, w, b = _binary_problem(seed, n, d, scale)
    labels = y.astype(np.int64) if integer_labels else y
    _check_against_oracle(student.logistic_loss(X, labels, w, b), oracle.torch_logistic(X, y, w, b),
                          X, w, b, "logistic_loss")


@given(seed=hidden_seeds(), n=st.integers(1, 10), d=st.integers(1, 5))
def test_logistic_loss_gradient_by_central_differences(student, reference, seed, n, d):
    X, y, w, b = _binary_problem(seed, n, d)
    _, grad_w, grad_b = student.logistic_loss(X, y, w, b)
    numeric_w, numeric_b = oracle.numeric_gradient(lambda w_, b_: reference.logistic_loss(X, y, w_, b_)[0], [w, b])
    tol = oracle.CENTRAL_DIFFERENCE
    assert_close(grad_w, numeric_w, "logistic_loss grad_w against central differences", tol=tol)
    assert_close(grad_b, numeric_b, "logistic_loss grad_b against central differences", tol=tol)
    v_w, v_b = oracle.unit_directions(oracle.rng(seed + 1), [w, b])
    slope = oracle.directional_difference(lambda w_, b_: student.logistic_loss(X, y, w_, b_)[0], [w, b], [v_w, v_b])
    assert_close(slope, float(np.dot(grad_w, v_w) + grad_b * v_b),
                 "logistic_loss: (L(theta + h v) - L(theta - h v)) / 2h against grad . v", tol=tol)


@given(seed=hidden_seeds(), n=st.integers(1, 12), d=st.integers(1, 4), largest=LARGE)
def test_logistic_loss_stable_at_large_logits(student, probe, seed, n, d, largest):
    X, y, w, b = _binary_problem(seed, n, d)
    w, b = _rescale_to(largest, X, w, b)
    what = "logistic_loss at |X w + b| in the thousands"
    result, warnings = probe.numpy_warnings(student.logistic_loss, X, y, w, b)
    with diagnose(lambda: explain_overflow(lambda: close(student.logistic_loss(X, y, *_rescale_to(5.0, X, w, b))[0], oracle.torch_logistic(X, y, *_rescale_to(5.0, X, w, b))[0]))), _judged_by_values(warnings):
        _finite(result, what)
        _check_against_oracle(result, oracle.torch_logistic(X, y, w, b), X, w, b, what)


@given(seed=hidden_seeds(), n=st.integers(2, 12), d=st.integers(1, 4))
def test_logistic_loss_drives_gradient_descent(student, seed, n, d):
    """Six steps of gradient descent with the student's gradients, fed back each step."""
    X, y, w, b = _binary_problem(seed, n, d)
    lr = 2.0 / (1.0 + float(np.max(np.sum(X * X, axis=1))))
    expected_w, expected_b = w.copy(), b
    tol = Tolerance(rtol=1e-9, atol=1e-11)                    # six steps of float64 drift
    for step in range(6):
        loss, grad_w, grad_b = student.logistic_loss(X, y, w, b)
        expected = oracle.torch_logistic(X, y, expected_w, expected_b)
        assert_close(loss, expected[0], f"logistic_loss loss at gradient-descent step {step}", tol=tol)
        w, b = w - lr * np.asarray(grad_w), b - lr * float(grad_b)
        expected_w, expected_b = expected_w - lr * expected[1], expected_b - lr * expected[2]


# --------------------------------------------------------------------------- Task 1.6 - 1.7

@given(seed=hidden_seeds(), shape_axis=_array_and_axis(), scale=st.sampled_from([1.0, 5.0, 30.0]), positional=st.booleans())
def test_softmax_matches_torch_along_any_axis(student, seed, shape_axis, scale, positional):
    shape, axis = shape_axis
    Z = oracle.rng(seed).standard_normal(shape) * scale
    expected = oracle.torch_softmax(Z, -1 if axis is None else axis)
    actual = _axis_call(student.softmax, Z, axis, positional)
    with diagnose(lambda: explain_softmax_axis(actual, Z, axis)):
        assert_close(actual, expected, f"softmax along {'the default axis' if axis is None else ('the last axis' if axis in (-1, len(shape) - 1) else 'another axis than the last')}")


@given(seed=hidden_seeds(), shape_axis=_array_and_axis(), shift=st.sampled_from([-700.0, 3.0, 1e3]))
def test_softmax_is_shift_invariant(student, seed, shape_axis, shift):
    """softmax(Z + c) == softmax(Z) for c constant along the axis (here up to 1e3)."""
    shape, axis = shape_axis
    g = oracle.rng(seed)
    Z = g.standard_normal(shape) * 3.0
    along = -1 if axis is None else axis
    c = shift * (1.0 + g.random(np.max(Z, axis=along, keepdims=True).shape))   # constant along the axis
    expected = oracle.torch_softmax(Z, along)
    # Z + c is rounded to ulps of |c|: softmax moves by that much, relatively.
    tol = Tolerance(rtol=FLOAT64.rtol + 256 * oracle.EPS * float(np.max(np.abs(Z + c))), atol=FLOAT64.atol)
    shifted = _axis_call(student.softmax, Z + c, axis, False)
    assert_close(shifted, expected, "softmax(Z + c) against softmax(Z) (shift invariance)", tol=tol)


@given(seed=hidden_seeds(), n=st.integers(1, 6), k=st.integers(1, 6), largest=LARGE)
def test_softmax_stable_at_large_logits(student, probe, seed, n, k, largest):
    g = oracle.rng(seed)
    Z = np.vstack([_huge_logits(g, (n, k), largest),
                   np.full((1, k), largest),                             # all equal: uniform
                   np.linspace(-largest, largest, k)[None, ::-1]])       # one huge gap
    what = "softmax at |logits| in the thousands"
    result, warnings = probe.numpy_warnings(student.softmax, Z)
    with diagnose(lambda: explain_overflow(lambda: close(student.softmax(Z * 5 / largest), oracle.torch_softmax(Z * 5 / largest, -1)))), _judged_by_values(warnings):
        _finite(result, what)
        assert_close(result, oracle.torch_softmax(Z, -1), what,
                     tol=Tolerance(rtol=FLOAT64.rtol + 256 * oracle.EPS * largest, atol=FLOAT64.atol))
        assert_close(np.sum(result, axis=-1), np.ones(Z.shape[0]), f"row sums of {what}")


@given(seed=hidden_seeds(), shape_axis=_array_and_axis(), scale=st.sampled_from([1.0, 5.0, 30.0]), positional=st.booleans())
def test_log_softmax_matches_torch_along_any_axis(student, seed, shape_axis, scale, positional):
    shape, axis = shape_axis
    Z = oracle.rng(seed).standard_normal(shape) * scale
    expected = oracle.torch_log_softmax(Z, -1 if axis is None else axis)
    assert_close(_axis_call(student.log_softmax, Z, axis, positional), expected,
                 f"log_softmax along {'the default axis' if axis is None else ('the last axis' if axis in (-1, len(shape) - 1) else 'another axis than the last')}",
                 tol=oracle.scaled(float(np.max(np.abs(Z)))))


@given(seed=hidden_seeds(), n=st.integers(1, 6), k=st.integers(2, 6), largest=LARGE, axis=st.sampled_from([0, -1]))
def test_log_softmax_stable_without_minus_infinity(student, probe, seed, n, k, largest, axis):
    g = oracle.rng(seed)
    Z = np.vstack([_huge_logits(g, (n, k), largest), np.linspace(-largest, largest, k)[None, :]])
    what = "log_softmax at |logits| in the thousands"
    result, warnings = probe.numpy_warnings(student.log_softmax, Z, axis=axis)
    with diagnose(lambda: explain_overflow(lambda: close(student.log_softmax(Z * 5 / largest, axis=axis), oracle.torch_log_softmax(Z * 5 / largest, axis)))), _judged_by_values(warnings):
        _finite(result, what)
        assert_close(result, oracle.torch_log_softmax(Z, axis), what, tol=oracle.scaled(2 * largest))


# --------------------------------------------------------------------------- Task 1.8

def _multiclass_problem(seed, n, d, k, scale=1.0):
    g = oracle.rng(seed)
    X = g.standard_normal((n, d))
    W, b = g.standard_normal((d, k)) * scale, g.standard_normal(k) * scale
    return X, oracle.labels(g, n, k), W, b


@given(seed=hidden_seeds(), n=st.integers(1, 12), d=st.integers(1, 5), k=st.integers(1, 6),
       scale=st.sampled_from([0.5, 1.0, 5.0]))
def test_softmax_cross_entropy_matches_torch_autograd(student, seed, n, d, k, scale):
    X, y, W, b = _multiclass_problem(seed, n, d, k, scale)
    _check_against_oracle(student.softmax_cross_entropy(X, y, W, b), oracle.torch_softmax_cross_entropy(X, y, W, b),
                          X, W, b, "softmax_cross_entropy")


@given(seed=hidden_seeds(), n=st.integers(1, 8), d=st.integers(1, 4), k=st.integers(2, 4))
def test_softmax_cross_entropy_gradient_by_central_differences(student, reference, seed, n, d, k):
    X, y, W, b = _multiclass_problem(seed, n, d, k)
    _, grad_W, grad_b = student.softmax_cross_entropy(X, y, W, b)
    numeric_W, numeric_b = oracle.numeric_gradient(
        lambda W_, b_: reference.softmax_cross_entropy(X, y, W_, b_)[0], [W, b])
    tol = oracle.CENTRAL_DIFFERENCE
    assert_close(grad_W, numeric_W, "softmax_cross_entropy grad_W against central differences", tol=tol)
    assert_close(grad_b, numeric_b, "softmax_cross_entropy grad_b against central differences", tol=tol)
    v_W, v_b = oracle.unit_directions(oracle.rng(seed + 1), [W, b])
    slope = oracle.directional_difference(
        lambda W_, b_: student.softmax_cross_entropy(X, y, W_, b_)[0], [W, b], [v_W, v_b])
    assert_close(slope, float(np.sum(np.asarray(grad_W) * v_W) + np.dot(grad_b, v_b)),
                 "softmax_cross_entropy: (L(theta + h v) - L(theta - h v)) / 2h against grad . v", tol=tol)


@given(seed=hidden_seeds(), n=st.integers(1, 10), d=st.integers(1, 4), k=st.integers(2, 6), largest=LARGE)
def test_softmax_cross_entropy_stable_at_large_logits(student, probe, seed, n, d, k, largest):
    X, y, W, b = _multiclass_problem(seed, n, d, k)
    W, b = _rescale_to(largest, X, W, b)
    what = "softmax_cross_entropy at |X W + b| in the thousands"
    result, warnings = probe.numpy_warnings(student.softmax_cross_entropy, X, y, W, b)
    with diagnose(lambda: explain_overflow(lambda: close(student.softmax_cross_entropy(X, y, *_rescale_to(5.0, X, W, b))[0], oracle.torch_softmax_cross_entropy(X, y, *_rescale_to(5.0, X, W, b))[0]))), _judged_by_values(warnings):
        _finite(result, what)
        _check_against_oracle(result, oracle.torch_softmax_cross_entropy(X, y, W, b), X, W, b, what)


# --------------------------------------------------------------------------- Task 1.9

def _mlp_problem(seed, n, d, h, k):
    g = oracle.rng(seed)
    X = g.standard_normal((n, d))
    params = {"W1": g.standard_normal((d, h)), "b1": g.standard_normal(h),
              "W2": g.standard_normal((h, k)), "b2": g.standard_normal(k)}
    return X, oracle.labels(g, n, k), params


def _check_mlp(actual, expected, X, params, what, explain=True):
    hidden = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    size = oracle.logits_scale(hidden, params["W2"], params["b2"]) * (1.0 + oracle.logits_scale(X, params["W1"], params["b1"]))
    oracle.require(isinstance(actual, (tuple, list)) and len(actual) == 2, f"{what} should return (loss, grads)")
    with diagnose(lambda: explain_parts(actual, expected, [], n=X.shape[0]) if explain else None):
        assert_close(actual[0], expected[0], f"{what} loss", tol=oracle.scaled(size))
        assert_close(actual[1], expected[1], f"{what} grads", tol=oracle.scaled(size * (1.0 + float(np.max(np.abs(X))))))


@given(seed=hidden_seeds(), n=st.integers(1, 10), d=st.integers(1, 5), h=st.integers(1, 6), k=st.integers(1, 5))
def test_mlp_loss_matches_torch_autograd(student, seed, n, d, h, k):
    X, y, params = _mlp_problem(seed, n, d, h, k)
    _check_mlp(student.mlp_loss(X, y, params), oracle.torch_mlp(X, y, params), X, params,
               "mlp_loss")


@given(seed=hidden_seeds(), n=st.integers(1, 6), d=st.integers(1, 3), h=st.integers(1, 4), k=st.integers(2, 3))
def test_mlp_loss_gradient_by_central_differences(student, reference, seed, n, d, h, k):
    X, y, params = _mlp_problem(seed, n, d, h, k)
    step = 1e-6
    assume(np.min(np.abs(X @ params["W1"] + params["b1"])) > 1e-3)   # no ReLU kink within reach
    names = ["W1", "b1", "W2", "b2"]
    _, grads = student.mlp_loss(X, y, params)

    def trusted_loss(*arrays):
        return reference.mlp_loss(X, y, dict(zip(names, arrays)))[0]

    numeric = oracle.numeric_gradient(trusted_loss, [params[name] for name in names], h=step)
    tol = Tolerance(rtol=1e-5, atol=1e-6)   # h = 1e-6: rounding eps |L| / h ~ 1e-9
    for name, expected in zip(names, numeric):
        assert_close(grads[name], expected, f"mlp_loss grads[{name!r}] against central differences", tol=tol)
    directions = oracle.unit_directions(oracle.rng(seed + 1), [params[name] for name in names])
    slope = oracle.directional_difference(
        lambda *arrays: student.mlp_loss(X, y, dict(zip(names, arrays)))[0],
        [params[name] for name in names], directions, h=step)
    expected_slope = sum(float(np.sum(np.asarray(grads[name]) * v)) for name, v in zip(names, directions))
    assert_close(slope, expected_slope, "mlp_loss: (L(theta + h v) - L(theta - h v)) / 2h against grads . v", tol=tol)


@given(seed=hidden_seeds(), n=st.integers(1, 8), d=st.integers(1, 4), h=st.integers(2, 6), k=st.integers(2, 4))
def test_mlp_loss_relu_derivative_at_zero_is_zero(student, seed, n, d, h, k):
    """Integer inputs and weights make some pre-activations exactly 0: relu'(0) must be 0."""
    g = oracle.rng(seed)
    X = g.integers(-2, 3, size=(n, d)).astype(np.float64)
    params = {"W1": g.integers(-1, 2, size=(d, h)).astype(np.float64),
              "b1": g.integers(-1, 2, size=h).astype(np.float64),
              "W2": g.standard_normal((h, k)), "b2": g.standard_normal(k)}
    params["W1"][:, 0], params["b1"][0] = 0.0, 0.0                  # unit 0 is exactly 0 everywhere
    y = oracle.labels(g, n, k)
    actual = student.mlp_loss(X, y, params)
    with diagnose(lambda: explain_relu_at_zero(actual, X, y, params)):
        _check_mlp(actual, oracle.torch_mlp(X, y, params), X, params, "mlp_loss with pre-activations exactly 0 (relu'(0) = 0)",
                   explain=False)


@given(seed=hidden_seeds(), n=st.integers(1, 8), d=st.integers(1, 4), h=st.integers(1, 5), k=st.integers(2, 5), largest=LARGE)
def test_mlp_loss_stable_at_large_logits(student, probe, seed, n, d, h, k, largest):
    X, y, params = _mlp_problem(seed, n, d, h, k)
    hidden = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    assume(np.max(hidden) > 0.1)
    params["W2"], params["b2"] = _rescale_to(largest, hidden, params["W2"], params["b2"])
    what = "mlp_loss at |logits| in the thousands"
    result, warnings = probe.numpy_warnings(student.mlp_loss, X, y, params)
    with diagnose(lambda: explain_overflow(lambda: close(student.mlp_loss(X, y, _moderate(params, hidden))[0], oracle.torch_mlp(X, y, _moderate(params, hidden))[0]))), _judged_by_values(warnings):
        _finite(result, what)
        _check_mlp(result, oracle.torch_mlp(X, y, params), X, params, what)


# --------------------------------------------------------------------------- Task 1.10

def _moderate(params, hidden):
    """The same network with the logits rescaled to |logits| <= 5 (for the overflow experiment)."""
    W2, b2 = _rescale_to(5.0, hidden, params["W2"], params["b2"])
    return {**params, "W2": W2, "b2": b2}


def _first_max_accuracy(logits, y) -> float:
    """Brute force: the prediction of a row is the first index holding its maximum."""
    correct = 0
    for row, label in zip(logits, y):
        best = 0
        for j in range(1, len(row)):
            if row[j] > row[best]:
                best = j
        correct += best == label
    return correct / len(y)


@given(seed=hidden_seeds(), n=st.integers(1, 20), k=st.integers(1, 6), scale=st.sampled_from([1.0, 1e4]))
def test_accuracy_matches_brute_force(student, seed, n, k, scale):
    g = oracle.rng(seed)
    logits = g.standard_normal((n, k)) * scale
    y = np.where(g.random(n) < 0.5, np.argmax(logits, axis=1), oracle.labels(g, n, k))
    assert_close(student.accuracy(logits, y), _first_max_accuracy(logits, y), "accuracy")


@given(seed=hidden_seeds(), n=st.integers(1, 20), k=st.integers(2, 5))
def test_accuracy_ties_go_to_the_first_maximum(student, seed, n, k):
    g = oracle.rng(seed)
    logits = g.integers(0, 2, size=(n, k)).astype(np.float64)         # many exact ties
    last_max = k - 1 - np.argmax(logits[:, ::-1], axis=1)
    y = np.where(g.random(n) < 0.5, np.argmax(logits, axis=1), last_max)
    assume(np.any(last_max != np.argmax(logits, axis=1)))
    actual = student.accuracy(logits, y)
    with diagnose(lambda: explain_ties(actual, logits, y)):
        assert_close(actual, _first_max_accuracy(logits, y), "accuracy with tied logits (the first maximum wins)")
