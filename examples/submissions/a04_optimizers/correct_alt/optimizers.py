"""A correct submission in another style: float64 working precision, in-place torch ops,
the original Adam paper's folded bias correction, own state keys, the step as a tensor."""
import math

import torch


def _check(**values):
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")


def sgd_step(param, grad, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    _check(lr=lr, momentum=momentum, weight_decay=weight_decay)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov needs momentum > 0 and dampening == 0")
    p = param.double()
    d = grad.double().clone()
    d.add_(p, alpha=weight_decay)
    new_state = {}
    if momentum:
        if "velocity" in state:
            v = state["velocity"].clone().mul_(momentum).add_(d, alpha=1 - dampening)
        else:
            v = d.clone()
        new_state["velocity"] = v
        d = d.add(v, alpha=momentum) if nesterov else v
    return p.sub(d, alpha=lr).to(param.dtype), new_state


def adagrad_step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
    _check(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
           initial_accumulator_value=initial_accumulator_value, eps=eps)
    p = param.double()
    g = grad.double() + weight_decay * p
    t = state.get("t", torch.tensor(0, dtype=torch.int64)) + 1
    acc = state.get("G", torch.full(param.shape, float(initial_accumulator_value), dtype=torch.float64))
    acc = torch.addcmul(acc, g, g)
    rate = lr / (1 + lr_decay * (int(t) - 1))
    new = p - rate * g / (torch.sqrt(acc) + eps)
    return new.to(param.dtype), {"t": t, "G": acc}


def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False):
    _check(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
    p = param.double()
    g = grad.double() + weight_decay * p
    zero = torch.zeros_like(p)
    sq = torch.lerp(state.get("sq", zero), g * g, 1 - alpha)
    out = {"sq": sq}
    if centered:
        mean = torch.lerp(state.get("mean", zero), g, 1 - alpha)
        out["mean"] = mean
        denom = torch.sqrt(torch.addcmul(sq, mean, mean, value=-1)) + eps
    else:
        denom = torch.sqrt(sq) + eps
    update = g / denom
    if momentum > 0:
        update = state.get("buf", zero) * momentum + update
        out["buf"] = update
    return (p - lr * update).to(param.dtype), out


def _adam(param, grad, state, lr, betas, eps, amsgrad, l2, decoupled):
    b1, b2 = betas
    _check(lr=lr, eps=eps, weight_decay=min(l2, decoupled))
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas must lie in [0, 1), got {betas}")
    p = param.double()
    g = grad.double() + l2 * p
    p = p * (1 - lr * decoupled)
    t = int(state.get("t", 0)) + 1
    zero = torch.zeros_like(p)
    m = state.get("m", zero) * b1 + g * (1 - b1)
    v = state.get("v", zero) * b2 + g.square() * (1 - b2)
    out = {"t": t, "m": m, "v": v}
    if amsgrad:
        v = torch.max(state.get("vmax", zero), v)
        out["vmax"] = v
    # Kingma & Ba, section 2: fold both bias corrections into the step size.
    alpha_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    eps_t = eps * math.sqrt(1 - b2 ** t)
    return (p - alpha_t * m / (v.sqrt() + eps_t)).to(param.dtype), out


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, amsgrad, weight_decay, 0.0)


def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=1e-2, amsgrad=False):
    return _adam(param, grad, state, lr, betas, eps, amsgrad, 0.0, weight_decay)


def clip_grad_norm(grads, max_norm, eps=1e-6):
    if len(grads) == 0:
        return [], 0.0
    flat = torch.cat([g.detach().double().reshape(-1) for g in grads])
    total = torch.linalg.vector_norm(flat).item()
    coef = max_norm / (total + eps)
    if coef >= 1.0:
        return [g.clone() for g in grads], total
    return [(g.double() * coef).to(g.dtype) for g in grads], total
