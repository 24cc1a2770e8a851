"""A subtle bug: Adam (and AdamW, built on it) without bias correction.

Assignment 4 (Lecture 5): advanced optimizers as pure step functions.

Every optimizer takes one step on one parameter tensor:

    new_param, new_state = step(param, grad, state, **hyperparameters)

`state` starts as an empty dict and is filled on first use, as torch.optim does lazily;
the caller feeds back exactly the dict that was returned. Notation: theta is the
parameter, g_t the gradient at step t (t = 1, 2, ...), gamma the learning rate (lr),
lambda the weight decay. The semantics are torch.optim's for one parameter
(maximize=False, foreach and fused off); using torch.optim itself is not allowed.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def sgd_step(param: Tensor, grad: Tensor, state: dict, *, lr: float, momentum: float = 0.0,
             dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False) -> tuple[Tensor, dict]:
    """SGD with weight decay, (dampened) momentum and Nesterov momentum.

        g_t     = grad + lambda * theta_{t-1}                       (weight decay, L2)
        b_1     = g_1,   b_t = mu * b_{t-1} + (1 - tau) * g_t       (momentum mu, dampening tau)
        d_t     = g_t + mu * b_t  if nesterov  else  b_t            (d_t = g_t when mu = 0)
        theta_t = theta_{t-1} - gamma * d_t

    Raises ValueError for lr, momentum or weight_decay < 0, and for nesterov without a
    positive momentum or with a non-zero dampening.
    """
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    state = dict(state)
    if weight_decay != 0.0:
        grad = grad + weight_decay * param                                  # (*shape)
    if momentum != 0.0:
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = grad.clone()                                           # b_1 = g_1: no dampening
        else:
            buffer = momentum * buffer + (1.0 - dampening) * grad
        state["momentum_buffer"] = buffer
        grad = grad + momentum * buffer if nesterov else buffer
    return param - lr * grad, state


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


def adam_step(param: Tensor, grad: Tensor, state: dict, *, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, amsgrad: bool = False) -> tuple[Tensor, dict]:
    """Adam with L2 weight decay and the AMSGrad variant.

        g_t     = grad + lambda * theta_{t-1}
        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t                m_0 = 0
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t ** 2           v_0 = 0
        u_t     = max(u_{t-1}, v_t)  if amsgrad  else  v_t           u_0 = 0
        m_hat   = m_t / (1 - beta1 ** t),   u_hat = u_t / (1 - beta2 ** t)
        theta_t = theta_{t-1} - gamma * m_hat / (sqrt(u_hat) + eps)

    Raises ValueError for a negative lr, eps or weight_decay, and for betas outside [0, 1).
    """
    beta1, beta2 = betas
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= beta1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
    if not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    state = dict(state)
    zeros = torch.zeros_like(param)
    step = state.get("step", 0) + 1
    if weight_decay != 0.0:
        grad = grad + weight_decay * param
    m = beta1 * state.get("exp_avg", zeros) + (1.0 - beta1) * grad           # (*shape)
    v = beta2 * state.get("exp_avg_sq", zeros) + (1.0 - beta2) * grad * grad
    state.update(step=step, exp_avg=m, exp_avg_sq=v)
    if amsgrad:
        v = torch.maximum(state.get("max_exp_avg_sq", zeros), v)
        state["max_exp_avg_sq"] = v
    m_hat = m                       # bug: no bias correction 1 / (1 - beta1 ** t)
    v_hat = v                       # bug: no bias correction 1 / (1 - beta2 ** t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), state


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
