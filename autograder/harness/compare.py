"""Helpers for grading-suite authors: named tolerances and comparisons that say what differed.

Trusted code only. Suites compare the student's returned values with the reference's
through `assert_close`, whose failure message is the feedback a student reads: it names
what was compared, the shapes, the worst entry and the tolerance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """|actual - expected| <= atol + rtol * |expected|, entrywise (numpy.isclose's rule)."""

    rtol: float
    atol: float

    def __str__(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


# float64: the same maths summed in another order differs by a few ulps per operation; over
# 30 optimizer steps or a 200-node graph that stays far below 1e-10 relative.
FLOAT64 = Tolerance(rtol=1e-10, atol=1e-12)
# float32: eps 1.2e-7; reductions over a few thousand terms and fused vs unfused kernels
# drift to ~1e-6 relative.
FLOAT32 = Tolerance(rtol=1e-5, atol=1e-6)
# float16: eps 9.8e-4, one rounding of an fp32-accumulated result is half an ulp.
FLOAT16 = Tolerance(rtol=2e-3, atol=1e-3)
# bfloat16: eps 7.8e-3.
BFLOAT16 = Tolerance(rtol=1.6e-2, atol=1e-2)
EXACT = Tolerance(rtol=0.0, atol=0.0)


def tolerance_for(dtype: Any) -> Tolerance:
    """The named tolerance for a numpy or torch dtype (by name, so torch need not be loaded)."""
    name = str(dtype).replace("torch.", "")
    if name in ("float64", "double", "complex128"):
        return FLOAT64
    if name in ("float32", "float", "complex64"):
        return FLOAT32
    if name in ("float16", "half"):
        return FLOAT16
    if name == "bfloat16":
        return BFLOAT16
    return EXACT


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter")


def _describe(value: Any) -> str:
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _to_numpy(value: Any) -> np.ndarray:
    if _is_tensor(value):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _fail(what: str, message: str) -> None:
    raise AssertionError(f"{what}: {message}")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it stands for (messages without np.int64(...))."""
    return value.item() if isinstance(value, np.generic) else value


def _numbers(actual: Any, expected_shape: tuple, what: str) -> np.ndarray:
    """`actual` (a list, tuple or array the student returned) as a numeric array, or a plain failure."""
    try:
        array = np.asarray(actual)
    except (ValueError, TypeError):
        _fail(what, f"expected an array of shape {expected_shape}, got a {type(actual).__name__} numpy cannot "
                    f"turn into an array (ragged or mixed entries)")
    if array.dtype.kind not in "biufc":
        _fail(what, f"expected an array of numbers of shape {expected_shape}, got entries of type "
                    f"{type(array.flat[0]).__name__ if array.size else array.dtype}")
    return array


def assert_close(actual: Any, expected: Any, what: str, *, tol: Tolerance | None = None,
                 check_dtype: bool = True, equal_nan: bool = False) -> None:
    """Assert the student's `actual` equals the reference's `expected` within `tol`.

    Containers (list, tuple, dict) are compared entry by entry, tensors must come back as
    tensors and arrays as arrays (or anything numpy turns into the same shape), with the same
    dtype when `check_dtype`. The tolerance defaults to the expected value's dtype's.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            _fail(what, f"expected a dict, got {_describe(actual)}")
        if set(actual) != set(expected):
            _fail(what, f"expected keys {sorted(map(str, expected))}, got {sorted(map(str, actual))}")
        for key in expected:
            assert_close(actual[key], expected[key], f"{what}[{key!r}]", tol=tol, check_dtype=check_dtype, equal_nan=equal_nan)
        return
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            _fail(what, f"expected a {type(expected).__name__} of {len(expected)} values, got {_describe(actual)}")
        if len(actual) != len(expected):
            _fail(what, f"expected {len(expected)} values, got {len(actual)}")
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{what}[{index}]", tol=tol, check_dtype=check_dtype, equal_nan=equal_nan)
        return
    if _is_tensor(expected):
        if not _is_tensor(actual):
            _fail(what, f"expected a {_describe(expected)}, got {_describe(actual)}")
        if check_dtype and actual.dtype != expected.dtype:
            _fail(what, f"expected dtype {expected.dtype}, got {actual.dtype}")
        if tuple(actual.shape) != tuple(expected.shape):
            _fail(what, f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}")
        tol = tol or tolerance_for(expected.dtype)
    elif isinstance(expected, np.ndarray):
        if _is_tensor(actual) or not isinstance(actual, (np.ndarray, list, tuple, float, int, np.generic)):
            _fail(what, f"expected a numpy {_describe(expected)}, got {_describe(actual)}")
        actual_array = _numbers(actual, expected.shape, what)
        if actual_array.shape != expected.shape:
            _fail(what, f"expected shape {expected.shape}, got {actual_array.shape}")
        if check_dtype and isinstance(actual, np.ndarray) and actual.dtype != expected.dtype:
            _fail(what, f"expected dtype {expected.dtype}, got {actual.dtype}")
        tol = tol or tolerance_for(expected.dtype)
    else:
        # A scalar: Python or numpy numbers, a 0-d array, or a one-element tensor are all fine.
        if isinstance(actual, (bool, np.bool_)) != isinstance(expected, (bool, np.bool_)):
            _fail(what, f"expected {_plain(expected)!r}, got {_describe(actual)}")
        if isinstance(actual, (np.ndarray,)) and actual.size != 1 or (_is_tensor(actual) and actual.numel() != 1):
            _fail(what, f"expected a scalar, got {_describe(actual)}")
        if isinstance(actual, np.ndarray) or _is_tensor(actual):
            actual = _to_numpy(actual).reshape(())   # a one-element array or tensor stands for its value
        if not (isinstance(actual, (int, float, np.generic, np.ndarray)) or _is_tensor(actual)):
            _fail(what, f"expected a number, got {_describe(actual)}")
        if isinstance(expected, (int, bool, np.integer)) and not isinstance(expected, float):
            tol = tol or EXACT
        else:
            tol = tol or tolerance_for(getattr(expected, "dtype", "float64"))
    _compare_values(_to_numpy(actual), _to_numpy(expected), what, tol, equal_nan)


def _compare_values(actual: np.ndarray, expected: np.ndarray, what: str, tol: Tolerance, equal_nan: bool) -> None:
    if expected.dtype == bool or expected.dtype.kind in "iub" and tol == EXACT:
        mismatch = actual != expected
        if np.any(mismatch):
            index = tuple(int(i) for i in np.argwhere(mismatch)[0])
            where = f"; first at index {index}" if expected.shape else ""
            _fail(what, f"{int(mismatch.sum())} of {expected.size} entries differ{where}: "
                        f"got {_plain(actual[index])!r}, expected {_plain(expected[index])!r}")
        return
    a = actual.astype(np.float64) if actual.dtype.kind != "c" else actual
    e = expected.astype(np.float64) if expected.dtype.kind != "c" else expected
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.isclose(a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=equal_nan)
        # np.isclose treats inf == inf of the same sign as close; nan only with equal_nan.
    if np.all(close):
        return
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(a - e)
    error = np.where(np.isnan(error), np.inf, error)
    error = np.where(close, 0.0, error)
    index = np.unravel_index(int(np.argmax(error)), e.shape) if e.shape else ()
    where = f" at index {tuple(int(i) for i in index)}" if e.shape else ""
    worst = error[index] if e.shape else float(error)
    _fail(what, (
        f"{int((~close).sum())} of {e.size} entries differ beyond {tol}; worst{where}: "
        f"got {_format(a[index] if e.shape else a)}, expected {_format(e[index] if e.shape else e)} "
        f"(abs error {_format(worst)})"
    ))


def _format(value: Any) -> str:
    value = complex(value) if np.iscomplexobj(value) else float(value)
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return repr(value)
    return f"{value:.10g}"


def assert_equal(actual: Any, expected: Any, what: str) -> None:
    """Exact equality for integers, bools, strings and nested lists/tuples/dicts of them."""
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            _fail(what, f"expected {expected!r}, got {actual!r}")
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_equal(a, e, f"{what}[{index}]")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            _fail(what, f"expected keys {sorted(expected)}, got {actual!r}")
        for key in expected:
            assert_equal(actual[key], expected[key], f"{what}[{key!r}]")
        return
    if _is_tensor(expected) or isinstance(expected, np.ndarray):
        assert_close(actual, expected, what, tol=EXACT)
        return
    if _is_tensor(actual) or isinstance(actual, np.ndarray):
        if (actual.numel() if _is_tensor(actual) else actual.size) != 1:
            _fail(what, f"expected {_plain(expected)!r}, got {_describe(actual)}")
        actual = _to_numpy(actual).reshape(()).item()
    actual, expected = _plain(actual), _plain(expected)
    if isinstance(actual, bool) != isinstance(expected, bool) or actual != expected:
        _fail(what, f"expected {expected!r}, got {actual!r}")
