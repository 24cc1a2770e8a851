"""Hidden: properties of the methods, gradient clipping, and no fused kernels.

Properties are checked on the student's parameters only (the state is opaque):
SGD's displacement is linear in the gradient sequence, Adam's first step moves each
coordinate by lr, AdaGrad's effective step size |delta theta| / |g| never grows because
its accumulator never decreases.
"""
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from oracle import averaging, describe, student_trajectory
from autograder.harness.strategies import hidden_seeds, random_tensor, shapes
from autograder.harness import diagnose, require
from autograder.harness.compare import FLOAT32, assert_close

from a04_diagnosis import explain_clip

float_shapes = shapes(min_dims=0, max_dims=3, max_side=5)


# ------------------------------------------------------------------ Task 1: SGD is linear

@given(seed=hidden_seeds(), shape=float_shapes, steps=st.integers(1, 10), lr=st.floats(1e-3, 0.5),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), dampening=st.sampled_from([0.0, 0.3]),
       nesterov=st.booleans(), a=st.floats(-3.0, 3.0), b=st.floats(-3.0, 3.0))
def test_sgd_displacement_is_linear_in_the_gradients(student, seed, shape, steps, lr, momentum,
                                                     dampening, nesterov, a, b):
    """Without weight decay theta_T - theta_0 is a linear map of (g_1, ..., g_T)."""
    if nesterov:
        momentum, dampening = max(momentum, 0.5), 0.0
    hyper = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
    zero = torch.zeros(shape, dtype=torch.float64)
    first = list(random_tensor(seed, (steps, *shape)).unbind(0))
    second = list(random_tensor(seed + 1, (steps, *shape)).unbind(0))
    combined = [a * g + b * h for g, h in zip(first, second)]
    moved = [student_trajectory(student.sgd_step, zero, grads, **hyper)[0][-1]
             for grads in (first, second, combined)]
    expected = a * moved[0] + b * moved[1]
    scale = abs(a) * float(moved[0].abs().max()) + abs(b) * float(moved[1].abs().max())
    error = float((moved[2] - expected).abs().max())
    require(error <= 1e-12 * (1.0 + scale), (
        f"{describe('sgd_step', hyper)} is not linear in the gradients: moving with a*g + b*h differs from "
        f"a*(move with g) + b*(move with h) by {error:.3g} (scale {scale:.3g})"))


# ------------------------------------------------------------------ Task 4: Adam's first step

@given(seed=hidden_seeds(), shape=float_shapes, lr=st.floats(1e-4, 0.1),
       betas=st.tuples(averaging, averaging), amsgrad=st.booleans(),
       scale=st.sampled_from([1e-2, 1.0, 1e3, 1e6]))
def test_adam_first_step_moves_each_coordinate_by_lr(student, seed, shape, lr, betas, amsgrad, scale):
    """m_hat = g and v_hat = g^2 at t = 1, so theta_1 - theta_0 = -lr g / (|g| + eps)."""
    eps = 1e-8
    param = random_tensor(seed, shape)
    magnitude = torch.from_numpy(np.asarray(np.random.default_rng(seed + 1).uniform(1.0, 3.0, shape))) * scale
    grad = magnitude * torch.where(random_tensor(seed + 2, shape) < 0, -1.0, 1.0).to(torch.float64)
    new, _ = student.adam_step(param, grad, {}, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad)
    moved = new - param
    require(bool(torch.all(moved * grad < 0)), "adam_step: the first step must go against the gradient's sign")
    lower = lr * (1 - eps / float(magnitude.min())) * (1 - 1e-9)
    upper = lr * (1 + 1e-9)
    ratio = (1 - betas[0]) / np.sqrt(1 - betas[1])
    no_correction = abs(float(moved.abs().max()) / lr - ratio) <= 1e-3 * ratio and abs(ratio - 1) > 1e-3
    with diagnose(f"the first step moves by {ratio:.3g}*lr, which is (1 - beta1) / sqrt(1 - beta2) times lr: "
                  "is the bias correction applied? (m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t))"
                  if no_correction else None):
        require(bool(torch.all((moved.abs() >= lower) & (moved.abs() <= upper))), (
            "adam_step: the first step from an empty state should move every coordinate by lr "
            f"(up to eps/|g|); it moved between {float(moved.abs().min()) / lr:.6g} and "
            f"{float(moved.abs().max()) / lr:.6g} times lr"))


# ------------------------------------------------------------------ Task 2: AdaGrad's sum grows

@given(seed=hidden_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(2, 20),
       lr=st.floats(1e-3, 0.5), lr_decay=st.sampled_from([0.0, 0.0, 0.1]),
       initial=st.sampled_from([0.0, 0.5]), decay=st.floats(0.5, 1.0))
def test_adagrad_effective_step_size_never_grows(student, seed, shape, steps, lr, lr_decay, initial, decay):
    """The accumulator never decreases, so |theta_t - theta_{t-1}| / |g_t| is non-increasing,
    even when the gradients shrink (where a moving average would let the step grow)."""
    rng = np.random.default_rng(seed)
    sizes = rng.uniform(0.5, 2.0, (steps, *shape)) * decay ** np.arange(steps).reshape((steps,) + (1,) * len(shape))
    signs = np.where(rng.standard_normal((steps, *shape)) < 0, -1.0, 1.0)
    grads = list(torch.from_numpy(np.asarray(sizes * signs)).unbind(0))
    param = torch.zeros(shape, dtype=torch.float64)
    hyper = dict(lr=lr, lr_decay=lr_decay, initial_accumulator_value=initial)
    trajectory, _ = student_trajectory(student.adagrad_step, param, grads, **hyper)
    previous = param
    rates = []
    for new, grad in zip(trajectory, grads):
        rates.append((new - previous).abs() / grad.abs())
        previous = new
    for t in range(1, steps):
        grew = rates[t] > rates[t - 1] * (1 + 1e-9)
        if bool(grew.any()):
            raise AssertionError(
                f"{describe('adagrad_step', hyper)}: the effective step size |delta theta| / |g| grew from step {t} "
                f"to step {t + 1} (from {float(rates[t - 1][grew][0]):.6g} to {float(rates[t][grew][0]):.6g}); "
                "the accumulator of squared gradients must never decrease")


# ------------------------------------------------------------------ Task 6: clipping

def torch_clip(grads, max_norm):
    parameters = []
    for grad in grads:
        parameter = torch.nn.Parameter(torch.zeros_like(grad))
        parameter.grad = grad.clone()
        parameters.append(parameter)
    total = torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=False)
    return [p.grad for p in parameters], float(total)


@st.composite
def gradient_lists(draw, dtype=torch.float64, scales=(1e-3, 1.0, 1e3)):
    count = draw(st.integers(1, 5))
    seed = draw(hidden_seeds())
    scale = draw(st.sampled_from(scales))
    return [random_tensor(seed + k, draw(float_shapes), dtype=dtype, scale=scale) for k in range(count)]


def check_clip(student, grads, max_norm, **compare):
    expected, expected_total = torch_clip(grads, max_norm)
    clipped, total = student.clip_grad_norm(grads, max_norm)
    what = f"clip_grad_norm of {len(grads)} gradients"
    with diagnose(lambda: explain_clip(clipped, total, grads, max_norm)):
        assert_close(total, expected_total, f"{what}: total norm (before clipping)", **compare)
        assert_close(list(clipped), expected, f"{what}: clipped gradients", **compare)


@given(grads=gradient_lists(), factor=st.sampled_from([0.01, 0.5, 0.99, 1.0, 1.01, 3.0]))
def test_clip_grad_norm_matches_torch(student, grads, factor):
    """factor = max_norm / total; 1.0 is the boundary where only eps decides the scale."""
    total = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])))
    check_clip(student, grads, factor * total)


@given(grads=gradient_lists(scales=(1e-30, 1e30)), factor=st.sampled_from([0.5, 2.0]))
def test_clip_grad_norm_tiny_and_huge_gradients(student, grads, factor):
    total = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])))
    check_clip(student, grads, factor * total)


@given(grads=gradient_lists(dtype=torch.float32), factor=st.sampled_from([0.3, 3.0]))
def test_clip_grad_norm_float32(student, grads, factor):
    total = float(torch.linalg.vector_norm(torch.cat([g.double().reshape(-1) for g in grads])))
    check_clip(student, grads, factor * total, tol=FLOAT32)


def test_clip_grad_norm_zero_gradients_and_empty_list(student):
    check_clip(student, [torch.zeros(3, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)], 1.0)
    clipped, total = student.clip_grad_norm([], 1.0)
    require(list(clipped) == [], f"clip_grad_norm([]) should return no gradients, got {len(clipped)}")
    assert_close(total, 0.0, "clip_grad_norm([], 1.0): total norm")


@given(grads=gradient_lists(), eps=st.sampled_from([0.0, 1e-3, 0.5]), factor=st.sampled_from([0.2, 1.0]))
def test_clip_grad_norm_uses_the_given_eps(student, reference, grads, eps, factor):
    total = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])))
    max_norm = factor * total
    expected, expected_total = reference.clip_grad_norm(grads, max_norm, eps)
    clipped, actual_total = student.clip_grad_norm(grads, max_norm, eps)
    what = "clip_grad_norm with the given eps (max_norm / (total + eps))"
    with diagnose(lambda: explain_clip(clipped, actual_total, grads, max_norm, eps)):
        assert_close(actual_total, expected_total, f"{what}: total norm")
        assert_close(list(clipped), expected, f"{what}: clipped gradients")


# ------------------------------------------------------------------ no fused kernels

def test_adam_step_runs_no_fused_kernel(student, reference, probe):
    """torch's fused optimizer kernels (aten::_fused_*) do the whole task: not allowed."""
    param, grad = random_tensor(2**27, (4, 3)), random_tensor(2**27 + 1, (4, 3))
    (new, _), ops = probe.op_trace(student.adam_step, param, grad, {}, lr=0.01, amsgrad=True)
    forbidden = probe.forbidden_ops(ops)
    require(forbidden == [], "adam_step ran a forbidden fused kernel (aten::_fused_*, torch's whole-optimizer kernel): "
            "write the update with plain tensor ops")
    expected = reference.adam_step(param, grad, {}, lr=0.01, amsgrad=True)[0]
    assert_close(new, expected, "adam_step(lr=0.01, amsgrad=True): param after step 1")
