"""Public tests of a04_optimizers: short trajectories against torch.optim.

Each test runs a few steps of your step function, feeding back exactly the (param, state)
it returned, and compares the parameter after every step with torch.optim's. The hidden
tests check the same things on more hyperparameters, shapes, longer trajectories, float32,
several parameters, resumed states and edge cases.
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from a04_diagnosis import explain_clip, explain_trajectory
from autograder.harness import diagnose, expect_raises
from autograder.harness.strategies import public_seeds, random_tensor, shapes
from autograder.harness.compare import FLOAT32, assert_close

OPTIMIZERS = {
    "sgd_step": torch.optim.SGD,
    "adagrad_step": torch.optim.Adagrad,
    "rmsprop_step": torch.optim.RMSprop,
    "adam_step": torch.optim.Adam,
    "adamw_step": torch.optim.AdamW,
}


def torch_trajectory(name, param, grads, **hyper):
    """The parameter after each step of torch.optim (the trusted oracle)."""
    tensor = torch.nn.Parameter(param.clone())
    optimizer = OPTIMIZERS[name]([tensor], foreach=False, **hyper)
    out = []
    for grad in grads:
        tensor.grad = grad.clone()
        optimizer.step()
        out.append(tensor.detach().clone())
    return out


def check_trajectory(student, name, seed, shape, steps, **hyper):
    param = random_tensor(seed, shape)
    grads = list(random_tensor(seed + 1, (steps, *shape)).unbind(0))
    expected = torch_trajectory(name, param, grads, **hyper)
    state, start, function = {}, param, getattr(student, name)
    with diagnose(lambda: explain_trajectory(function, start, grads, hyper, torch_trajectory)):
        for t, grad in enumerate(grads, start=1):
            param, state = function(param, grad, state, **hyper)
            assert_close(param, expected[t - 1], f"{name}({hyper}): param after step {t} of {steps}")


CASES = {
    "sgd_step": [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
                 dict(lr=0.1, momentum=0.5, dampening=0.5, weight_decay=0.01)],
    # eps=0.1: large enough that eps inside the square root, sqrt(v + eps), shows
    "adagrad_step": [dict(), dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5),
                     dict(lr=0.1, weight_decay=0.05), dict(lr=0.1, eps=0.1)],
    "rmsprop_step": [dict(), dict(momentum=0.9), dict(centered=True, alpha=0.9),
                     dict(weight_decay=0.05, centered=True, momentum=0.5), dict(eps=0.1)],
    "adam_step": [dict(), dict(lr=0.01, betas=(0.8, 0.99)), dict(amsgrad=True, weight_decay=0.05),
                  dict(lr=0.01, eps=0.1)],
    "adamw_step": [dict(), dict(lr=0.01, weight_decay=0.1), dict(amsgrad=True, betas=(0.5, 0.9))],
}


def _cases(name):
    return pytest.mark.parametrize("hyper", CASES[name], ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()) or "defaults")


@_cases("sgd_step")
@given(seed=public_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(1, 5))
def test_sgd_matches_torch(student, hyper, seed, shape, steps):
    check_trajectory(student, "sgd_step", seed, shape, steps, **hyper)


@_cases("adagrad_step")
@given(seed=public_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(1, 5))
def test_adagrad_matches_torch(student, hyper, seed, shape, steps):
    check_trajectory(student, "adagrad_step", seed, shape, steps, **hyper)


@_cases("rmsprop_step")
@given(seed=public_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(1, 5))
def test_rmsprop_matches_torch(student, hyper, seed, shape, steps):
    check_trajectory(student, "rmsprop_step", seed, shape, steps, **hyper)


@_cases("adam_step")
@given(seed=public_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(1, 5))
def test_adam_matches_torch(student, hyper, seed, shape, steps):
    check_trajectory(student, "adam_step", seed, shape, steps, **hyper)


@_cases("adamw_step")
@given(seed=public_seeds(), shape=shapes(max_dims=2, max_side=4), steps=st.integers(1, 5))
def test_adamw_matches_torch(student, hyper, seed, shape, steps):
    check_trajectory(student, "adamw_step", seed, shape, steps, **hyper)


def test_adam_keeps_float32(student):
    param = random_tensor(7, (3, 2), dtype=torch.float32)
    grad = random_tensor(8, (3, 2), dtype=torch.float32)
    expected = torch_trajectory("adam_step", param, [grad], lr=0.01)[0]
    actual, _ = student.adam_step(param, grad, {}, lr=0.01)
    assert_close(actual, expected, "adam_step on float32: param after step 1", tol=FLOAT32)


@given(seed=public_seeds(), count=st.integers(1, 3), factor=st.sampled_from([0.5, 2.0]))
def test_clip_grad_norm_matches_torch(student, seed, count, factor):
    grads = [random_tensor(seed + k, (k + 2,)) for k in range(count)]
    total = float(torch.linalg.vector_norm(torch.cat(grads)))
    max_norm = factor * total
    parameters = []
    for grad in grads:
        parameter = torch.nn.Parameter(torch.zeros_like(grad))
        parameter.grad = grad.clone()
        parameters.append(parameter)
    expected_total = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=False))
    clipped, actual_total = student.clip_grad_norm(grads, max_norm)
    with diagnose(lambda: explain_clip(clipped, actual_total, grads, max_norm)):
        assert_close(actual_total, expected_total, f"clip_grad_norm(max_norm={max_norm:.4g}): total norm (before clipping)")
        assert_close(list(clipped), [p.grad for p in parameters], f"clip_grad_norm(max_norm={max_norm:.4g}): clipped grads")


@pytest.mark.parametrize("name, hyper", [
    ("sgd_step", dict(lr=-0.1)),
    ("sgd_step", dict(lr=0.1, nesterov=True)),
    ("adagrad_step", dict(lr_decay=-0.1)),
    ("rmsprop_step", dict(alpha=-0.5)),
    ("adam_step", dict(betas=(1.0, 0.999))),
], ids=lambda value: value if isinstance(value, str) else ",".join(f"{k}={v}" for k, v in value.items()))
def test_invalid_hyperparameters_raise_value_error(student, name, hyper):
    param, grad = random_tensor(1, (3,)), random_tensor(2, (3,))
    expect_raises(ValueError, lambda: getattr(student, name)(param, grad, {}, **hyper),
                  f"{name}({', '.join(f'{k}={v}' for k, v in hyper.items())}), invalid as in torch.optim,")
