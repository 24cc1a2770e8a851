"""torch.optim as the oracle for a04's hidden tests, and the strategies they draw from.

Trusted side only: the suite may call torch.optim, student code may not. A trajectory is
the list of parameter values after each step; the student's is built by feeding back
exactly the (param, state) each call returned.
"""
from __future__ import annotations

import torch
from hypothesis import strategies as st

from autograder.harness.strategies import hidden_seeds, random_tensor, shapes
from autograder.harness import diagnose
from autograder.harness.compare import assert_close

from a04_diagnosis import explain_trajectory
from a04_variants import variant

TORCH_OPTIMIZERS = {
    "sgd_step": torch.optim.SGD,
    "adagrad_step": torch.optim.Adagrad,
    "rmsprop_step": torch.optim.RMSprop,
    "adam_step": torch.optim.Adam,
    "adamw_step": torch.optim.AdamW,
}


def torch_trajectories(name: str, params: list[torch.Tensor], grads: list[list[torch.Tensor]],
                       **hyper) -> list[list[torch.Tensor]]:
    """Run torch.optim.<name> on len(params) parameters at once (the single-tensor path).

    grads[k] is the gradient sequence of params[k]; all sequences have the same length.
    Returns out[k][t]: parameter k after step t + 1.
    """
    tensors = [torch.nn.Parameter(p.clone()) for p in params]
    optimizer = TORCH_OPTIMIZERS[name](tensors, foreach=False, **hyper)
    out: list[list[torch.Tensor]] = [[] for _ in params]
    for t in range(len(grads[0])):
        for tensor, sequence in zip(tensors, grads):
            tensor.grad = sequence[t].clone()
        optimizer.step()
        for k, tensor in enumerate(tensors):
            out[k].append(tensor.detach().clone())
    return out


def torch_trajectory(name: str, param: torch.Tensor, grads: list[torch.Tensor], **hyper) -> list[torch.Tensor]:
    return torch_trajectories(name, [param], [grads], **hyper)[0]


def student_trajectory(function, param, grads, state=None, **hyper):
    """Call the student's step function once per gradient, feeding back what it returned.

    Returns (params after each step, the last state returned).
    """
    state = {} if state is None else state
    out = []
    for grad in grads:
        param, state = function(param, grad, state, **hyper)
        out.append(param)
    return out, state


def check_trajectory(function, param, grads, expected, what: str, state=None, tol=None, **hyper):
    """Step the student's function and compare after every step, stopping at the first
    difference (a failing example costs one or two calls, which keeps shrinking cheap).

    Returns the last (param, state) the student returned.
    """
    state = {} if state is None else state
    start = param
    with diagnose(lambda: explain_trajectory(function, start, grads, hyper, torch_trajectory, variant)):
        for t, (grad, want) in enumerate(zip(grads, expected), start=1):
            param, state = function(param, grad, state, **hyper)
            assert_close(param, want, f"{what}: param after step {t} of {len(expected)}", tol=tol)
    return param, state


FEATURES = ("momentum", "dampening", "nesterov", "weight_decay", "lr_decay", "initial_accumulator_value",
            "centered", "amsgrad")


def describe(name: str, hyper: dict) -> str:
    """What was called, for hidden feedback: the features in use, never the drawn values."""
    used = [key for key in FEATURES if hyper.get(key)]
    return f"{name} with {', '.join(used)}" if used else name


# --------------------------------------------------------------------------- strategies

def maybe_zero(values: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    """Zero (the feature off) about a third of the time, else a value from `values`."""
    return st.one_of(st.just(0.0), values, values)


learning_rates = st.floats(1e-3, 0.5)
decays = maybe_zero(st.floats(1e-4, 0.2))
epsilons = st.sampled_from([1e-10, 1e-8, 1e-6, 1e-3, 0.1])
averaging = st.floats(0.5, 0.999)        # betas and alpha: the spec's well-posed range


@st.composite
def sgd_hyperparameters(draw) -> dict:
    nesterov = draw(st.booleans())
    momentum = draw(st.floats(0.05, 0.99) if nesterov else maybe_zero(st.floats(0.05, 0.99)))
    return dict(lr=draw(learning_rates), momentum=momentum,
                dampening=0.0 if nesterov else draw(maybe_zero(st.floats(0.05, 0.9))),
                weight_decay=draw(decays), nesterov=nesterov)


@st.composite
def adagrad_hyperparameters(draw) -> dict:
    return dict(lr=draw(learning_rates), lr_decay=draw(maybe_zero(st.floats(1e-3, 0.5))),
                weight_decay=draw(decays),
                initial_accumulator_value=draw(maybe_zero(st.floats(1e-3, 2.0))),
                eps=draw(epsilons))


@st.composite
def rmsprop_hyperparameters(draw) -> dict:
    return dict(lr=draw(st.floats(1e-4, 0.05)), alpha=draw(averaging), eps=draw(epsilons),
                weight_decay=draw(decays), momentum=draw(maybe_zero(st.floats(0.05, 0.95))),
                centered=draw(st.booleans()))


@st.composite
def adam_hyperparameters(draw, default_weight_decay: float = 0.0) -> dict:
    return dict(lr=draw(st.floats(1e-4, 0.1)), betas=(draw(averaging), draw(averaging)),
                eps=draw(epsilons), weight_decay=draw(st.one_of(st.just(default_weight_decay), decays)),
                amsgrad=draw(st.booleans()))


HYPERPARAMETERS = {
    "sgd_step": sgd_hyperparameters(),
    "adagrad_step": adagrad_hyperparameters(),
    "rmsprop_step": rmsprop_hyperparameters(),
    "adam_step": adam_hyperparameters(),
    "adamw_step": adam_hyperparameters(default_weight_decay=1e-2),
}


@st.composite
def problems(draw, max_steps: int = 30, max_side: int = 5, scales=(1.0,)) -> tuple:
    """(param0, gradient sequence): a drawn shape, 1..max_steps steps, N(0, scale^2) data."""
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=max_side))
    steps = draw(st.integers(1, max_steps))
    seed = draw(hidden_seeds())
    scale = draw(st.sampled_from(scales))
    param = random_tensor(seed, shape)
    grads = list(random_tensor(seed + 1, (steps, *shape), scale=scale).unbind(0))
    return param, grads
