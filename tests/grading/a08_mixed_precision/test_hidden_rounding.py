"""Hidden: rounding to float16 and bfloat16, the float16 ulp, and no half dtype in those functions.

round_to_fp16 is compared with numpy's float64 -> float16 cast, round_to_bf16 with the exact
nearest-value oracle (oracle.nearest: never torch's cast, which rounds twice), bit for bit:
drawn floats over the whole float64 range, drawn ties between neighbours of the format
(exact, and one float64 ulp either side), and constructed hard cases by category. Messages
name the category, never the values.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.harness import diagnose, require
from oracle import (BF16, FP16, exact_bf16, format_values, fp16_overflow_cases, fp16_spacing,
                    fp16_values_of_every_binade, hard_cases, numpy_fp16, rounding_diagnosis, same_values)

FORMATS = {"round_to_fp16": (FP16, numpy_fp16), "round_to_bf16": (BF16, exact_bf16)}


def check_rounding(student, name, x, what):
    fmt, oracle = FORMATS[name]
    x = np.asarray(x, dtype=np.float64)
    expected = oracle(x)
    actual = getattr(student, name)(x.copy())
    a = np.asarray(actual, dtype=np.float64) if np.shape(actual) == x.shape else None
    with diagnose(lambda: rounding_diagnosis(actual, x, fmt)):
        require(a is not None, f"{name} on {what}: expected a float64 array of shape {x.shape}")
        require(isinstance(actual, np.ndarray) and actual.dtype == np.float64,
                f"{name} on {what}: return a numpy float64 array")
        same = (np.isnan(a) & np.isnan(expected)) | ((a == expected) & (np.signbit(a) == np.signbit(expected)))
        require(same.all(), f"{name} on {what}: {int((~same).sum())} of {x.size} values differ from the nearest "
                f"{fmt.name} value (round half to even; the sign of zero, inf and nan count)")


any_float64 = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=64)


def near_range(fmt):
    """Floats spread over the format's finite range and a little past it."""
    top = 70000.0 if fmt is FP16 else 3.5e38
    return st.floats(-top, top, allow_subnormal=True)


def drawn_ties(fmt):
    """(bit pattern, offset): the tie above that value of the format, exact or one float64 ulp off."""
    count = len(format_values(fmt.name)) - 1
    return st.tuples(st.integers(0, count - 1), st.sampled_from([-1, 0, 1]))


def ties_from(fmt, draws, negate):
    table = format_values(fmt.name)
    x = []
    for index, offset in draws:
        tie = (table[index] + table[index + 1]) / 2            # exact: one more bit than the format has
        x.append(tie if offset == 0 else np.nextafter(tie, np.inf if offset > 0 else -np.inf))
    x = np.array(x)
    return np.where(negate[: len(x)], -x, x)


@pytest.mark.parametrize("name", list(FORMATS))
@given(data=st.data())
def test_rounding_matches_the_oracle_on_drawn_float64(student, name, data):
    fmt = FORMATS[name][0]
    x = data.draw(hnp.arrays(np.float64, st.integers(1, 40), elements=any_float64 | near_range(fmt)), label="x")
    check_rounding(student, name, x, "hypothesis-drawn float64 values")


@pytest.mark.parametrize("name", list(FORMATS))
@given(data=st.data())
def test_rounding_matches_the_oracle_on_drawn_ties(student, name, data):
    fmt = FORMATS[name][0]
    draws = data.draw(st.lists(drawn_ties(fmt), min_size=1, max_size=30), label="ties")
    negate = np.array(data.draw(st.lists(st.booleans(), min_size=30, max_size=30), label="signs"))
    check_rounding(student, name, ties_from(fmt, draws, negate), "drawn ties between neighbours, exact or +- one float64 ulp")


@given(data=st.data())
def test_rounding_keeps_shape_of_2d_arrays(student, data):
    x = data.draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5), elements=near_range(FP16)))
    check_rounding(student, "round_to_fp16", x, "a 2-d array")
    check_rounding(student, "round_to_bf16", x, "a 2-d array")


def categories(fmt):
    cases = hard_cases(fmt)
    magnitude = np.abs(cases)
    smallest = fmt.smallest_subnormal
    normal = 2.0**fmt.min_exponent
    out = {
        "exact ties and ties +- one float64 ulp in every binade": cases[np.isfinite(cases) & (magnitude >= normal)
                                                                       & (magnitude <= fmt.max_finite)],
        "subnormals, the smallest subnormal and half of it": cases[(magnitude < normal) & (magnitude > 0)],
        "signed zeros, +-inf and nan": np.array([0.0, -0.0, np.inf, -np.inf, np.nan, smallest / 4, -smallest / 4]),
        "the largest finite value and the overflow threshold": cases[np.isfinite(cases) & (magnitude > fmt.max_finite / 2)],
    }
    if fmt is FP16:
        out["65504 to 65520 and past the overflow threshold"] = fp16_overflow_cases()
    return out


CATEGORIES = [(name, category) for name, (fmt, _) in FORMATS.items() for category in categories(fmt)]


@pytest.mark.parametrize("name, category", CATEGORIES, ids=[f"{n}-{c.split(',')[0].split(' and')[0]}" for n, c in CATEGORIES])
def test_rounding_on_hard_cases(student, name, category):
    fmt = FORMATS[name][0]
    check_rounding(student, name, categories(fmt)[category], category)


# --------------------------------------------------------------------------- fp16_ulp

def ulp_diagnosis(actual, x):
    a = np.asarray(actual, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    expected = fp16_spacing(x)
    wrong = ~((a == expected) | (np.isnan(a) & np.isnan(expected)))
    magnitude = np.abs(x)
    at_negative_power = (x < 0) & (np.frexp(magnitude)[0] == 0.5) & (magnitude > 2.0**-14)
    toward_plus_inf = np.where(at_negative_power, expected / 2, expected)
    if same_values(a, toward_plus_inf) or same_values(a, np.where(x < 0, -expected, expected)):
        return "fp16_ulp(-x) must equal fp16_ulp(x): the spacing above |x|, also at negative powers of two"
    if wrong.any() and np.all(magnitude[wrong] < 2.0**-14):
        return "below 2^-14 (zero and the subnormals) the float16 spacing is 2^-24"
    if wrong.any() and np.all(magnitude[wrong] == 65504.0):
        return "at 65504 fp16_ulp is the spacing of its binade, 32 (not inf)"
    return None


def check_ulp(student, x, what):
    actual = student.fp16_ulp(x.copy())
    with diagnose(lambda: ulp_diagnosis(actual, x)):
        require(np.shape(actual) == x.shape, f"fp16_ulp on {what}: expected an array of shape {x.shape}")
        require(same_values(actual, fp16_spacing(x)),
                f"fp16_ulp on {what}: {int(np.sum(np.asarray(actual, dtype=np.float64) != fp16_spacing(x)))} "
                f"of {x.size} spacings differ from the gap to the next larger float16 value")


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_fp16_ulp_in_every_binade(student, sign):
    values = fp16_values_of_every_binade()
    check_ulp(student, np.abs(values) * sign, f"zero, subnormals and every binade 2^-14 .. 2^15 ({'positive' if sign > 0 else 'negative'})")


@given(bits=st.lists(st.integers(0, 0x7BFF), min_size=1, max_size=40), negate=st.booleans())
def test_fp16_ulp_on_drawn_float16_values(student, bits, negate):
    values = format_values("float16")[np.array(bits)]
    check_ulp(student, -values if negate else values, "drawn float16 values")


# --------------------------------------------------------------------------- rules

HALF_DTYPES = {"float16", "bfloat16", "half"}


@pytest.mark.parametrize("name", ["round_to_fp16", "round_to_bf16", "fp16_ulp"])
def test_no_half_dtype_in_the_rounding_functions(student, probe, name):
    """The op trace of each call: no tensor of a half-precision dtype may appear (the static scan is the first net)."""
    x = np.concatenate([hard_cases(FP16, binades=[-24, -15, 0, 15]), [0.1, 1 / 3, 1e-6]])
    if name == "fp16_ulp":
        x = numpy_fp16(x)
        x = x[np.isfinite(x)]
    result, ops = probe.op_trace(getattr(student, name), x)
    half_ops = sorted({op.name for op in ops if HALF_DTYPES & set(op.dtypes)})
    with diagnose("no half-precision dtype may appear in the rounding functions or their helpers (op trace): "
                  "round with float64 arithmetic or bit operations"):
        require(not half_ops, f"{name} computed with a half-precision dtype ({', '.join(half_ops[:3])}): "
                "round with float64 arithmetic or bit operations")
    expected = {"round_to_fp16": numpy_fp16, "round_to_bf16": exact_bf16, "fp16_ulp": fp16_spacing}[name](x)
    explain = (lambda: rounding_diagnosis(result, x, FORMATS[name][0])) if name in FORMATS else (lambda: ulp_diagnosis(result, x))
    with diagnose(explain):
        require(same_values(result, expected), f"{name} on the traced call (ties, subnormals, overflow): wrong values")
