"""Public tests of a08_mixed_precision: rounding against numpy and torch casts, the scaler against GradScaler.

The values must match bit for bit (the sign of zero and nan included): rounding has one
right answer. The hidden tests check far more values (every binade, drawn floats over the
whole float64 range, ties plus or minus one float64 ulp, subnormals, the overflow
threshold), the scaler on drawn overflow sequences with hysteresis and min_scale, and
the training step and underflow fraction on drawn data.
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import assert_close, require
from autograder.harness.strategies import public_seeds


def differences(actual, expected) -> str:
    """'' when equal bit for bit as float64 values (nan == nan, -0.0 != +0.0), else where they differ."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return f"expected shape {e.shape}, got {a.shape}"
    same = (np.isnan(a) & np.isnan(e)) | ((a == e) & (np.signbit(a) == np.signbit(e)))
    if same.all():
        return ""
    index = tuple(int(i) for i in np.argwhere(~same)[0])
    return f"{int((~same).sum())} of {e.size} values differ; first at {index}: got {float(a[index])!r}, expected {float(e[index])!r}"


def numpy_fp16(x):
    with np.errstate(over="ignore"):
        return x.astype(np.float16).astype(np.float64)


# Exact ties (the most common bug rounds them away from zero), subnormals, the overflow threshold, specials.
FP16_CASES = np.array([
    1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 2.5, 2049.0, 2051.0, 0.5 * 2.0**-24, 1.5 * 2.0**-24, 2.5 * 2.0**-24,
    2.0**-24, 3 * 2.0**-25, 1e-8, 65504.0, 65519.0, 65520.0, 65536.0, 1e6,
    0.0, -0.0, -1e-12, np.inf, -np.inf, np.nan, 0.1, 1 / 3,
])
FP16_CASES = np.concatenate([FP16_CASES, -FP16_CASES])


def test_round_to_fp16_on_ties_subnormals_and_overflow(student):
    problem = differences(student.round_to_fp16(FP16_CASES.copy()), numpy_fp16(FP16_CASES))
    require(not problem, f"round_to_fp16 on ties, subnormals, 65504..65536, zeros, inf, nan: {problem} "
            "(expected: numpy's x.astype(np.float16), round half to even)")


@given(seed=public_seeds(), size=st.integers(1, 20), exponent=st.integers(-26, 17))
def test_round_to_fp16_matches_numpy(student, seed, size, exponent):
    x = np.random.default_rng(seed).standard_normal(size) * 2.0**exponent
    problem = differences(student.round_to_fp16(x.copy()), numpy_fp16(x))
    require(not problem, f"round_to_fp16 on values near 2^{exponent}: {problem}")


@given(seed=public_seeds(), size=st.integers(1, 20), exponent=st.integers(-135, 127))
def test_round_to_bf16_matches_torch_on_float32_values(student, seed, size, exponent):
    """For float32 inputs torch's float32 -> bfloat16 cast rounds once, correctly (from float64 it would not)."""
    x = (np.random.default_rng(seed).standard_normal(size) * 2.0**exponent).astype(np.float32)
    ties = np.array([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -(2.0 + 2.0**-7)], dtype=np.float32)
    x = np.concatenate([x, ties])
    expected = torch.from_numpy(x).to(torch.bfloat16).double().numpy()
    problem = differences(student.round_to_bf16(x.astype(np.float64)), expected)
    require(not problem, f"round_to_bf16 on float32 values near 2^{exponent} and exact ties: {problem}")


def test_fp16_ulp_matches_numpy_spacing(student):
    values = np.array([0.0, 2.0**-24, 2.0**-14, 0.1, 1.0, 1.5, 1000.0, 2.0**15, 65504.0, -0.5, -1.0, -3.0])
    half = np.abs(values).astype(np.float16)
    expected = (np.nextafter(half, np.float16(np.inf)).astype(np.float64) - half.astype(np.float64))
    expected[values == 65504.0] = 32.0       # the spacing of its binade (the next value would be inf)
    actual = student.fp16_ulp(np.abs(values).astype(np.float16).astype(np.float64) * np.sign(values + 0.0))
    problem = differences(actual, expected)
    require(not problem, f"fp16_ulp: {problem}")


def grad_scaler_run(student, steps, **options):
    """Drive GradScaler('cpu') and the student's scaler through the same clean/overflow steps."""
    scaler = torch.amp.GradScaler("cpu", **options)
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([param], lr=0.0)
    mine = student.DynamicLossScaler(**options)
    for t, overflow in enumerate(steps, start=1):
        loss = torch.tensor(0.75)
        assert_close(mine.scale_loss(loss), scaler.scale(loss), f"scale_loss before step {t}")
        grad = torch.tensor([1.0, -2.0, float("inf") if overflow else 3.0])
        param.grad = grad.clone()
        scaler.unscale_(optimizer)
        grads, found_inf = mine.unscale([grad.clone()])
        assert_close(list(grads), [param.grad], f"unscale at step {t}: the unscaled float32 grads", equal_nan=True)
        require(bool(found_inf) == overflow, f"unscale at step {t}: found_inf should be {overflow}")
        scaler.step(optimizer)
        scaler.update()
        mine.update(overflow)
        state = mine.state_dict()
        require(state["scale"] == scaler.get_scale(),
                f"after step {t} ({'overflow' if overflow else 'clean'}): scale {state['scale']}, GradScaler has {scaler.get_scale()}")
        require(state["growth_tracker"] == int(scaler.state_dict()["_growth_tracker"]),
                f"after step {t}: growth_tracker {state['growth_tracker']}, GradScaler has {int(scaler.state_dict()['_growth_tracker'])}")


def test_scaler_matches_grad_scaler(student):
    grad_scaler_run(student, [False, False, False, True, False, True, True, False, False, False, False],
                    init_scale=2.0**10, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)


def test_scaler_growth_tracker_and_backoff(student):
    grad_scaler_run(student, [False, True, False, False, True, False, False],
                    init_scale=2.0**4, growth_factor=4.0, backoff_factor=0.25, growth_interval=2)


def test_sgd_step_updates_and_skips(student):
    master = torch.tensor([1.0, -0.1, 0.3, -0.0], dtype=torch.float32)   # 0.1, 0.3: not float16 values
    grad = torch.tensor([1024.0, -512.0, 0.5, 2.0], dtype=torch.float16)
    new, copies, skipped = student.mixed_precision_sgd_step([master.clone()], [grad], 1024.0, 0.1)
    expected = master - 0.1 * (grad.float() * (1.0 / 1024.0))
    require(not skipped, "mixed_precision_sgd_step with finite grads: skipped should be False")
    assert_close(list(new), [expected], "mixed_precision_sgd_step: new float32 masters")
    assert_close(list(copies), [expected.half()], "mixed_precision_sgd_step: float16 copies of the new masters")
    overflow = torch.tensor([1.0, float("inf"), 0.0, 1.0], dtype=torch.float16)
    new, copies, skipped = student.mixed_precision_sgd_step([master.clone()], [overflow], 1024.0, 0.1)
    require(bool(skipped), "mixed_precision_sgd_step with an inf grad: skipped should be True")
    require(new[0].dtype == torch.float32 and new[0].numpy().tobytes() == master.numpy().tobytes(),
            "mixed_precision_sgd_step with an inf grad: the masters must come back bit for bit unchanged")


@pytest.mark.parametrize("scale, expected", [(1.0, 1.0), (2.0**16, 0.0)])
def test_underflow_demonstration(student, scale, expected):
    fraction = student.underflow_fraction(torch.tensor([1e-8], dtype=torch.float32), scale)
    require(float(fraction) == expected,
            f"underflow_fraction of a 1e-8 gradient at scale {scale:g}: {float(fraction)!r}, expected {expected} "
            "(float16 flushes values below 2^-25 to 0)")


def test_underflow_fraction_counts_only_nonzero_grads(student):
    grads = torch.tensor([0.0, 1e-9, 1e-3, 0.0, 2e-8, 1.0], dtype=torch.float32)
    fraction = student.underflow_fraction(grads, 1.0)
    require(abs(float(fraction) - 0.5) < 1e-12, f"underflow_fraction of [0, 1e-9, 1e-3, 0, 2e-8, 1] at scale 1: "
            f"{float(fraction)!r}, expected 0.5 (2 of the 4 non-zero grads are lost; zeros do not count)")
    require(float(student.underflow_fraction(torch.zeros(4), 8.0)) == 0.0, "underflow_fraction of all zeros: expected 0.0")
