"""Hidden: the state is the only memory, and invalid hyperparameters raise ValueError.

The grader feeds back exactly the state each call returned and nothing else: two
parameters stepped in turn keep separate states, and a trajectory resumed from a saved
state (after other work, and twice from the same state) continues as torch's does.
A submission that keeps module-level memory (a global step counter, a cache keyed by
tensor identity) fails here.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracle import (HYPERPARAMETERS, check_trajectory, describe, problems, student_trajectory, torch_trajectories,
                    torch_trajectory)
from autograder.harness.strategies import random_tensor
from autograder.harness import diagnose, expect_raises
from autograder.harness.compare import assert_close

from a04_diagnosis import explain_trajectory
from a04_variants import variant

OPTIMIZERS = list(HYPERPARAMETERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
@given(data=st.data(), first=problems(max_steps=15), second=problems(max_steps=15))
def test_two_parameters_stepped_in_turn_keep_separate_states(student, name, data, first, second):
    hyper = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    steps = min(len(first[1]), len(second[1]))
    params = [first[0], second[0]]
    grads = [first[1][:steps], second[1][:steps]]
    expected = torch_trajectories(name, params, grads, **hyper)
    step = getattr(student, name)
    states = [{}, {}]
    for t in range(steps):
        for k in (0, 1):
            params[k], states[k] = step(params[k], grads[k][t], states[k], **hyper)
            with diagnose(lambda: explain_trajectory(step, first[0], grads[0], hyper, torch_trajectory, variant)):
                assert_close(params[k], expected[k][t],
                             f"{describe(name, hyper)}, two parameters stepped in turn: parameter {k + 1} after step {t + 1}")


@pytest.mark.parametrize("name", OPTIMIZERS)
@given(data=st.data(), problem=problems(max_steps=24), split=st.integers(1, 12),
       branch_seed=st.integers(0, 2**20))
def test_trajectory_resumed_from_a_returned_state(student, name, data, problem, split, branch_seed):
    """Save (param, state) after `split` steps, do other work, resume twice from the save."""
    hyper = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    param, grads = problem
    split = min(split, len(grads))
    step = getattr(student, name)
    rest = grads[split:] or [grads[0] * -1.0]
    expected = torch_trajectory(name, param, grads[:split] + rest, **hyper)
    saved_param, saved_state = check_trajectory(step, param, grads[:split], expected[:split],
                                                describe(name, hyper), **hyper)
    # other work in between: a fresh trajectory on an unrelated parameter
    other = random_tensor(branch_seed, (2, 3))
    student_trajectory(step, other, [other * 0.5, other * -0.25], **hyper)

    check_trajectory(step, saved_param, rest, expected[split:],
                     f"{describe(name, hyper)}, resumed after step {split}", state=saved_state, **hyper)

    branch = list(random_tensor(branch_seed + 1, (3, *param.shape)).unbind(0))
    expected = torch_trajectory(name, param, grads[:split] + branch, **hyper)[split:]
    check_trajectory(step, saved_param, branch, expected,
                     f"{describe(name, hyper)}, resumed a second time after step {split}", state=saved_state, **hyper)


@pytest.mark.parametrize("name", OPTIMIZERS)
@given(data=st.data(), problem=problems(max_steps=6))
def test_empty_state_starts_a_new_trajectory(student, name, data, problem):
    """After a trajectory, a call with {} starts over: no memory outside the state."""
    hyper = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    param, grads = problem
    step = getattr(student, name)
    expected = torch_trajectory(name, param, grads, **hyper)
    check_trajectory(step, param, grads, expected, describe(name, hyper), **hyper)
    check_trajectory(step, param, grads, expected, f"{describe(name, hyper)}, run again from an empty state", **hyper)


INVALID = [
    ("sgd_step", dict(lr=-1e-3)),
    ("sgd_step", dict(lr=0.1, momentum=-0.5)),
    ("sgd_step", dict(lr=0.1, weight_decay=-0.1)),
    ("sgd_step", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("sgd_step", dict(lr=0.1, momentum=0.0, nesterov=True)),
    ("adagrad_step", dict(lr=-0.1)),
    ("adagrad_step", dict(weight_decay=-1e-4)),
    ("adagrad_step", dict(initial_accumulator_value=-0.1)),
    ("adagrad_step", dict(eps=-1e-10)),
    ("rmsprop_step", dict(lr=-0.01)),
    ("rmsprop_step", dict(eps=-1e-8)),
    ("rmsprop_step", dict(momentum=-0.9)),
    ("rmsprop_step", dict(weight_decay=-0.01)),
    ("adam_step", dict(lr=-1e-3)),
    ("adam_step", dict(eps=-1e-8)),
    ("adam_step", dict(betas=(-0.1, 0.999))),
    ("adam_step", dict(betas=(0.9, 1.0))),
    ("adam_step", dict(weight_decay=-0.01)),
    ("adamw_step", dict(betas=(1.0, 0.999))),
    ("adamw_step", dict(weight_decay=-0.01)),
    ("adamw_step", dict(lr=-1e-3)),
]


RULES = {"lr": "< 0", "momentum": "< 0 or nesterov without momentum", "weight_decay": "< 0",
         "dampening": "!= 0 with nesterov", "nesterov": "without momentum > 0 and dampening = 0",
         "initial_accumulator_value": "< 0", "eps": "< 0", "lr_decay": "< 0", "alpha": "< 0",
         "betas": "outside [0, 1)"}


def _ids(value):
    return value if isinstance(value, str) else ",".join(f"{k}={v}" for k, v in value.items())


@pytest.mark.parametrize("name, hyper", INVALID, ids=_ids)
def test_invalid_hyperparameter_raises_value_error(student, name, hyper):
    param, grad = random_tensor(2**25, (2, 2)), random_tensor(2**25 + 1, (2, 2))
    rule = ", ".join(f"{k} {RULES[k]}" for k in hyper if k in RULES) or "an invalid hyperparameter"
    expect_raises(ValueError, lambda: getattr(student, name)(param, grad, {}, **hyper),
                  f"{name} with {rule}, invalid as in torch.optim,")


VALID_EDGES = [
    ("sgd_step", dict(lr=0.0, momentum=0.9)),
    ("sgd_step", dict(lr=0.1, momentum=0.0, dampening=0.5)),
    ("adagrad_step", dict(lr=0.1, eps=0.0, initial_accumulator_value=0.1)),
    ("rmsprop_step", dict(alpha=0.0)),
    ("adam_step", dict(betas=(0.0, 0.0))),
    ("adamw_step", dict(weight_decay=0.0, betas=(0.0, 0.5))),
]


@pytest.mark.parametrize("name, hyper", VALID_EDGES, ids=_ids)
def test_edge_hyperparameters_are_accepted_and_match_torch(student, name, hyper):
    """Values on the boundary of the valid range (lr = 0, beta = 0, alpha = 0) do not raise."""
    param = random_tensor(2**26, (3, 2))
    grads = list(random_tensor(2**26 + 1, (4, 3, 2)).unbind(0))
    expected = torch_trajectory(name, param, grads, **hyper)
    check_trajectory(getattr(student, name), param, grads, expected, f"{name}({hyper})", **hyper)
