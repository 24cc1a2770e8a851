"""Hidden: the mixed-precision SGD step and the underflow fraction (with the lecture's demonstration).

A skipped step must return the master parameters bit for bit (compared as bytes: -0.0,
float32 subnormals and values float16 cannot hold included); the float16 copies must be
exactly the cast of the returned masters.
"""
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT32, assert_close, diagnose, first_true, require
from autograder.harness.strategies import hidden_seeds
from oracle import sgd_oracle, tensor_bytes, underflow_oracle


def masters_and_grads(seed, shapes, grad_scale):
    rng = np.random.default_rng(seed)
    masters, grads = [], []
    for shape in shapes:
        master = torch.from_numpy(rng.standard_normal(shape)).float()
        flat = master.view(-1)
        flat[0] = -0.0
        if flat.numel() > 1:
            flat[1] = 1e-40                      # a float32 subnormal: no float16 round trip keeps it
        masters.append(master)
        grads.append(torch.from_numpy(rng.standard_normal(shape) * grad_scale).half())
    return masters, grads


shape_lists = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4)), min_size=1, max_size=3)
scales = st.one_of(st.integers(0, 16).map(lambda k: 2.0**k), st.sampled_from([1000.0, 3.0]))


def sgd_diagnosis(student_new, masters, grads, scale, lr):
    expected, _, _ = sgd_oracle(masters, grads, scale, lr)
    times, _, _ = sgd_oracle(masters, [g.float() * scale * scale for g in grads], scale, lr)
    ahead = [m - lr * g.float() for m, g in zip(masters, grads)]
    return first_true([
        ("unscale: the grads are multiplied by 1/scale before the update (not by scale)",
         lambda: all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(student_new, times))),
        ("unscale: the float16 grads must be divided by scale before the update",
         lambda: all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(student_new, ahead))),
    ])


@given(seed=hidden_seeds(), shapes=shape_lists, scale=scales, lr=st.sampled_from([0.1, 0.01, 1.0]))
def test_sgd_step_matches_the_update(student, seed, shapes, scale, lr):
    masters, grads = masters_and_grads(seed, shapes, grad_scale=scale / 16)   # no float16 overflow
    expected, _, _ = sgd_oracle(masters, grads, scale, lr)
    new, copies, skipped = student.mixed_precision_sgd_step([m.clone() for m in masters], [g.clone() for g in grads], scale, lr)
    require(not skipped, "mixed_precision_sgd_step with finite grads: skipped should be False")
    with diagnose(lambda: sgd_diagnosis(new, masters, grads, scale, lr)):
        assert_close(list(new), expected, "mixed_precision_sgd_step: the new float32 masters", tol=FLOAT32)
    with diagnose("the float16 model copies are the cast of the NEW masters (after the update)"):
        require(len(copies) == len(new) and all(c.dtype == torch.float16 for c in copies),
                "mixed_precision_sgd_step: the model copies must be float16 tensors, one per master")
        require(tensor_bytes(copies) == tensor_bytes([m.half() for m in new]),
                "mixed_precision_sgd_step: the float16 copies are not the cast of the returned masters")


@given(seed=hidden_seeds(), shapes=shape_lists, scale=scales, kind=st.sampled_from(["inf", "-inf", "nan", "overflow"]),
       lr=st.sampled_from([0.1, 1.0]))
def test_skipped_step_keeps_the_masters_bit_identical(student, seed, shapes, scale, kind, lr):
    masters, grads = masters_and_grads(seed, shapes, grad_scale=1.0)
    target = seed % len(grads)
    bad = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan"), "overflow": 65504.0 * 2}[kind]
    grads[target].view(-1)[-1] = bad                                    # float16: 131008 overflows to inf too
    new, copies, skipped = student.mixed_precision_sgd_step([m.clone() for m in masters], [g.clone() for g in grads], scale, lr)
    what = f"mixed_precision_sgd_step with {'an overflowed' if kind == 'overflow' else 'a ' + kind} grad in one of {len(grads)} tensors"
    require(bool(skipped), f"{what}: skipped should be True")
    others = [k for k in range(len(masters)) if k != target]
    with diagnose(lambda: first_true([
            ("a skipped step returns the masters bit for bit: a round trip through float16 loses bits",
             lambda: tensor_bytes(new) == tensor_bytes([m.half().float() for m in masters])),
            ("a skipped step must skip every parameter, not only those whose grad overflowed",
             lambda: bool(others) and all(torch.allclose(new[k], masters[k] - lr * (grads[k].float() / scale)) for k in others)),
    ])):
        require(all(m.dtype == torch.float32 for m in new), f"{what}: the masters must stay float32")
        require(tensor_bytes(new) == tensor_bytes(masters), f"{what}: the masters must come back bit for bit unchanged")
        require(tensor_bytes(copies) == tensor_bytes([m.half() for m in masters]),
                f"{what}: the float16 copies must be the cast of the unchanged masters")


# --------------------------------------------------------------------------- underflow

def underflow_diagnosis(actual, grads, scale):
    values = grads.numpy()
    nonzero = values != 0
    with np.errstate(over="ignore"):
        lost = nonzero & ((values * np.float32(scale)).astype(np.float16) == 0)
        unscaled_lost = nonzero & (values.astype(np.float16) == 0)
        below_normal = nonzero & (np.abs(values * np.float32(scale)) < 2.0**-14)
    return first_true([
        ("the fraction is over the NON-ZERO grads only (zeros are not lost)",
         lambda: abs(actual - lost.sum() / values.size) < 1e-12),
        ("the grads are multiplied by scale before the float16 cast",
         lambda: abs(actual - unscaled_lost.sum() / max(1, nonzero.sum())) < 1e-12),
        ("float16 keeps subnormals down to 2^-24: a value is lost only when it rounds to 0",
         lambda: abs(actual - below_normal.sum() / max(1, nonzero.sum())) < 1e-12),
    ])


def check_underflow(student, grads, scale, what):
    expected = underflow_oracle(grads, scale)
    actual = student.underflow_fraction(grads.clone(), scale)
    require(isinstance(actual, (float, int, np.floating)) or (torch.is_tensor(actual) and actual.numel() == 1),
            f"underflow_fraction on {what}: return a float")
    actual = float(actual)
    with diagnose(lambda: underflow_diagnosis(actual, grads, scale)):
        require(abs(actual - expected) <= 1e-12, f"underflow_fraction on {what}: {actual:.6g}, expected {expected:.6g}")


def test_underflow_lecture_demonstration(student):
    one = torch.tensor([1e-8], dtype=torch.float32)
    check_underflow(student, one, 1.0, "the lecture's 1e-8 gradient at scale 1 (lost)")
    check_underflow(student, one, 2.0**16, "the lecture's 1e-8 gradient at scale 2^16 (kept)")
    many = torch.full((4, 4), 1e-8, dtype=torch.float32)
    check_underflow(student, many, 1.0, "a tensor of 1e-8 gradients at scale 1")
    check_underflow(student, many, 2.0**16, "a tensor of 1e-8 gradients at scale 2^16")


@given(seed=hidden_seeds(), size=st.integers(1, 60), low=st.integers(-40, -4), zeros=st.floats(0.0, 0.5),
       scale=st.integers(0, 24).map(lambda k: 2.0**k))
def test_underflow_fraction_on_drawn_gradients(student, seed, size, low, zeros, scale):
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(low, 0, size) * rng.choice([-1.0, 1.0], size)
    magnitudes[rng.random(size) < zeros] = 0.0
    grads = torch.from_numpy(magnitudes).float()
    check_underflow(student, grads, scale, "drawn gradients spanning many magnitudes, some zero")


@given(seed=hidden_seeds(), shape=st.sampled_from([(3,), (2, 5), (4, 1, 3)]))
def test_underflow_fraction_edges(student, seed, shape):
    check_underflow(student, torch.zeros(shape), 2.0**10, "all-zero gradients (no non-zero grad: 0.0)")
    tiny = torch.full(shape, 2.0**-24, dtype=torch.float32)
    check_underflow(student, tiny, 1.0, "gradients equal to the smallest float16 subnormal (kept)")
    check_underflow(student, tiny / 2, 1.0, "gradients at half the smallest subnormal (a tie that rounds to 0: lost)")
