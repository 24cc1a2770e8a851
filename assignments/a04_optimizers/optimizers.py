"""Assignment 4 (Lecture 5): advanced optimizers as pure step functions.

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
    raise NotImplementedError("Task 1: SGD with momentum and Nesterov")


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
    raise NotImplementedError("Task 2: AdaGrad")


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
    raise NotImplementedError("Task 3: RMSProp")


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
    raise NotImplementedError("Task 4: Adam and AMSGrad")


def adamw_step(param: Tensor, grad: Tensor, state: dict, *, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, amsgrad: bool = False) -> tuple[Tensor, dict]:
    """AdamW: decoupled weight decay, applied to the weights instead of the gradient.

        theta'  = (1 - gamma * lambda) * theta_{t-1}
        theta_t = Adam step from theta' with the gradient g_t = grad (no L2 term)

    The moments never see lambda * theta. Raises ValueError as adam_step does.
    """
    raise NotImplementedError("Task 5: AdamW")


def clip_grad_norm(grads: list[Tensor], max_norm: float,
                   eps: float = 1e-6) -> tuple[list[Tensor], float]:
    """Clip gradients by their total 2-norm, as torch.nn.utils.clip_grad_norm_ does.

        total = sqrt(sum_i ||g_i||_2 ** 2)
        g_i  <- g_i * min(1, max_norm / (total + eps))

    Returns the clipped gradients (same shapes and dtypes) and `total` as a float;
    an empty list has total 0.0.
    """
    raise NotImplementedError("Task 6: gradient clipping")
