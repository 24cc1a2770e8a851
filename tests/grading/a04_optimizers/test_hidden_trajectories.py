"""Hidden: whole trajectories (1..30 steps) of every optimizer against torch.optim.

Hyperparameters, shapes (0-d to 3-d) and gradient sequences are drawn by hypothesis in the
spec's well-posed ranges; some tests force a feature on (nesterov, lr_decay, centered,
amsgrad, ...) so that it is exercised on every example, not only on some.
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from oracle import (HYPERPARAMETERS, adam_hyperparameters, averaging, check_trajectory, describe, epsilons, problems,
                    torch_trajectory)
from autograder.harness.strategies import hidden_seeds, random_tensor, shapes
from autograder.harness.compare import FLOAT32


def check(student, name, problem, hyper, tol=None):
    param, grads = problem
    expected = torch_trajectory(name, param, grads, **hyper)
    check_trajectory(getattr(student, name), param, grads, expected, describe(name, hyper), tol=tol, **hyper)


@st.composite
def decaying_problems(draw, max_steps: int = 30):
    """Gradients whose size shrinks geometrically: AMSGrad's max and AdaGrad's sum matter."""
    param, grads = draw(problems(max_steps=max_steps))
    decay = draw(st.floats(0.5, 0.9))
    return param, [g * decay ** t for t, g in enumerate(grads)]


# ------------------------------------------------------------------ Task 1: SGD

@given(problem=problems(), hyper=HYPERPARAMETERS["sgd_step"])
def test_sgd_trajectory_matches_torch(student, problem, hyper):
    check(student, "sgd_step", problem, hyper)


@given(problem=problems(), lr=st.floats(1e-3, 0.5), momentum=st.floats(0.05, 0.99),
       weight_decay=st.floats(0.0, 0.2))
def test_sgd_nesterov_with_weight_decay_matches_torch(student, problem, lr, momentum, weight_decay):
    hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    check(student, "sgd_step", problem, hyper)


@given(problem=problems(), lr=st.floats(1e-3, 0.5), momentum=st.floats(0.05, 0.99),
       dampening=st.floats(0.05, 0.95))
def test_sgd_dampened_momentum_matches_torch(student, problem, lr, momentum, dampening):
    check(student, "sgd_step", problem, dict(lr=lr, momentum=momentum, dampening=dampening))


# ------------------------------------------------------------------ Task 2: AdaGrad

@given(problem=problems(), hyper=HYPERPARAMETERS["adagrad_step"])
def test_adagrad_trajectory_matches_torch(student, problem, hyper):
    check(student, "adagrad_step", problem, hyper)


@given(problem=decaying_problems(), lr=st.floats(1e-3, 0.5), lr_decay=st.floats(1e-3, 0.5),
       initial=st.floats(1e-3, 2.0), weight_decay=st.floats(0.0, 0.1), eps=epsilons)
def test_adagrad_lr_decay_and_initial_accumulator_match_torch(student, problem, lr, lr_decay, initial,
                                                              weight_decay, eps):
    hyper = dict(lr=lr, lr_decay=lr_decay, initial_accumulator_value=initial,
                 weight_decay=weight_decay, eps=eps)
    check(student, "adagrad_step", problem, hyper)


# ------------------------------------------------------------------ Task 3: RMSProp

@given(problem=problems(), hyper=HYPERPARAMETERS["rmsprop_step"])
def test_rmsprop_trajectory_matches_torch(student, problem, hyper):
    check(student, "rmsprop_step", problem, hyper)


@given(problem=problems(), lr=st.floats(1e-4, 0.05), alpha=averaging, eps=epsilons,
       momentum=st.floats(0.05, 0.95), weight_decay=st.floats(0.0, 0.1))
def test_rmsprop_centered_with_momentum_matches_torch(student, problem, lr, alpha, eps, momentum,
                                                      weight_decay):
    hyper = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay,
                 centered=True)
    check(student, "rmsprop_step", problem, hyper)


# ------------------------------------------------------------------ Task 4: Adam

@given(problem=problems(), hyper=HYPERPARAMETERS["adam_step"])
def test_adam_trajectory_matches_torch(student, problem, hyper):
    check(student, "adam_step", problem, hyper)


@given(problem=decaying_problems(), hyper=adam_hyperparameters())
def test_adam_amsgrad_with_shrinking_gradients_matches_torch(student, problem, hyper):
    check(student, "adam_step", problem, {**hyper, "amsgrad": True})


# ------------------------------------------------------------------ Task 5: AdamW

@given(problem=problems(), hyper=HYPERPARAMETERS["adamw_step"])
def test_adamw_trajectory_matches_torch(student, problem, hyper):
    check(student, "adamw_step", problem, hyper)


@given(problem=decaying_problems(), hyper=adam_hyperparameters(), weight_decay=st.floats(0.05, 0.5))
def test_adamw_decoupled_decay_with_amsgrad_matches_torch(student, problem, hyper, weight_decay):
    check(student, "adamw_step", problem, {**hyper, "weight_decay": weight_decay, "amsgrad": True})


# ------------------------------------------------------------------ all: dtype and magnitudes

OPTIMIZERS = list(HYPERPARAMETERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
@given(data=st.data(), seed=hidden_seeds(), shape=shapes(max_dims=2, max_side=5), steps=st.integers(1, 8))
def test_float32_trajectory_keeps_dtype_and_matches_torch(student, name, data, seed, shape, steps):
    hyper = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    param = random_tensor(seed, shape, dtype=torch.float32)
    grads = list(random_tensor(seed + 1, (steps, *shape), dtype=torch.float32).unbind(0))
    check(student, name, (param, grads), hyper, tol=FLOAT32)


@pytest.mark.parametrize("name", OPTIMIZERS)
@given(data=st.data(), problem=problems(max_steps=12, scales=(1e-7, 1e-4, 1e4, 1e7)))
def test_tiny_and_huge_gradients_match_torch(student, name, data, problem):
    """Scale-free methods must stay right where eps matters (tiny) and far from it (huge)."""
    hyper = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    check(student, name, problem, hyper)
