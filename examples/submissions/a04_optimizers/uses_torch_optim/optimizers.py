"""A cheat: sgd_step and adam_step wrap torch.optim, reached through getattr so that the
static scan does not see the name. The worker's guard makes torch.optim raise, so every
test of these two functions errors; the other functions are honest.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_optim = getattr(torch, "op" + "tim")


def _wrapped_step(factory, param, grad, state, **hyper):
    tensor = torch.nn.Parameter(param.clone())
    optimizer = factory([tensor], **hyper)
    if state:
        optimizer.state[tensor] = {k: v.clone() if isinstance(v, Tensor) else v for k, v in state.items()}
    tensor.grad = grad.clone()
    optimizer.step()
    return tensor.detach().clone(), dict(optimizer.state[tensor])


def sgd_step(param, grad, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    return _wrapped_step(_optim.SGD, param, grad, state, lr=lr, momentum=momentum,
                         dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, amsgrad=False):
    return _wrapped_step(_optim.Adam, param, grad, state, lr=lr, betas=tuple(betas), eps=eps,
                         weight_decay=weight_decay, amsgrad=amsgrad)


def adagrad_step(param: Tensor, grad: Tensor, state: dict, *, lr: float = 1e-2,
                 lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> tuple[Tensor, dict]:
    """AdaGrad: per-coordinate step sizes shrink with the sum of squared gradients.

        g_t     = grad + lambda * theta_{t-1}
        gamma_t = gamma / (1 + (t - 1) * lr_decay)
        s_t     = s_{t-1} + g_t ** 2,          s_0 = initial_accumulator_value
        theta_t = theta_{t-1} - gamma_t * g_t / (sqrt(s_t) + eps)

    Raises ValueError for a negative lr, lr_decay, weight_decay,
    initial_accumulator_value or eps.
    """
    for name, value in (("learning rate", lr), ("lr_decay value", lr_decay),
                        ("weight_decay value", weight_decay),
                        ("initial_accumulator_value value", initial_accumulator_value),
                        ("epsilon value", eps)):
        if value < 0.0:
            raise ValueError(f"Invalid {name}: {value}")
    state = dict(state)
    step = state.get("step", 0) + 1
    accumulator = state.get("sum")
    if accumulator is None:
        accumulator = torch.full_like(param, initial_accumulator_value)    # s_0, (*shape)
    if weight_decay != 0.0:
        grad = grad + weight_decay * param
    step_size = lr / (1.0 + (step - 1) * lr_decay)
    accumulator = accumulator + grad * grad
    state.update(step=step, sum=accumulator)
    return param - step_size * (grad / (accumulator.sqrt() + eps)), state


def rmsprop_step(param: Tensor, grad: Tensor, state: dict, *, lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> tuple[Tensor, dict]:
    """RMSProp: divide by a running root mean square of the gradient.

        g_t     = grad + lambda * theta_{t-1}
        v_t     = alpha * v_{t-1} + (1 - alpha) * g_t ** 2                    v_0 = 0
        a_t     = alpha * a_{t-1} + (1 - alpha) * g_t      (centered only)    a_0 = 0
        r_t     = sqrt(v_t - a_t ** 2) + eps  if centered  else  sqrt(v_t) + eps
        b_t     = mu * b_{t-1} + g_t / r_t,   theta_t = theta_{t-1} - gamma * b_t   (mu > 0)
        theta_t = theta_{t-1} - gamma * g_t / r_t                                    (mu = 0)

    Raises ValueError for a negative lr, eps, momentum, weight_decay or alpha.
    """
    for name, value in (("learning rate", lr), ("epsilon value", eps),
                        ("momentum value", momentum), ("weight_decay value", weight_decay),
                        ("alpha value", alpha)):
        if value < 0.0:
            raise ValueError(f"Invalid {name}: {value}")
    state = dict(state)
    zeros = torch.zeros_like(param)
    if weight_decay != 0.0:
        grad = grad + weight_decay * param
    square_avg = alpha * state.get("square_avg", zeros) + (1.0 - alpha) * grad * grad
    state["square_avg"] = square_avg
    if centered:
        grad_avg = alpha * state.get("grad_avg", zeros) + (1.0 - alpha) * grad
        state["grad_avg"] = grad_avg
        rms = (square_avg - grad_avg * grad_avg).sqrt() + eps               # (*shape)
    else:
        rms = square_avg.sqrt() + eps
    if momentum > 0.0:
        buffer = momentum * state.get("momentum_buffer", zeros) + grad / rms
        state["momentum_buffer"] = buffer
        return param - lr * buffer, state
    return param - lr * (grad / rms), state


def adamw_step(param: Tensor, grad: Tensor, state: dict, *, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, amsgrad: bool = False) -> tuple[Tensor, dict]:
    """AdamW: decoupled weight decay, applied to the weights instead of the gradient.

        theta'  = (1 - gamma * lambda) * theta_{t-1}
        theta_t = Adam step from theta' with the gradient g_t = grad (no L2 term)

    The moments never see lambda * theta. Raises ValueError as adam_step does.
    """
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    decayed = param * (1.0 - lr * weight_decay)
    return adam_step(decayed, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=0.0,
                     amsgrad=amsgrad)


def clip_grad_norm(grads: list[Tensor], max_norm: float,
                   eps: float = 1e-6) -> tuple[list[Tensor], float]:
    """Clip gradients by their total 2-norm, as torch.nn.utils.clip_grad_norm_ does.

        total = sqrt(sum_i ||g_i||_2 ** 2)
        g_i  <- g_i * min(1, max_norm / (total + eps))

    Returns the clipped gradients (same shapes and dtypes) and `total` as a float;
    an empty list has total 0.0.
    """
    total = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    scale = min(1.0, max_norm / (total + eps))
    return [g * scale for g in grads], total
