"""Trusted re-implementations of AdaGrad, RMSProp and Adam(W) with one known bug each, for the
hidden tests' diagnoses (never released: they re-implement the answer)."""
from __future__ import annotations

import torch


def variant(name: str, param, grads, hyper, bug: str):
    """A trusted re-implementation of adagrad/rmsprop/adam(w) with one known bug."""
    p = param.clone().double()
    out = []
    lr = hyper.get("lr", {"adagrad_step": 1e-2, "rmsprop_step": 1e-2}.get(name, 1e-3))
    eps = hyper.get("eps", 1e-10 if name == "adagrad_step" else 1e-8)
    wd = hyper.get("weight_decay", 1e-2 if name == "adamw_step" else 0.0)
    root = (lambda v: (v + eps).sqrt()) if bug == "eps_inside_sqrt" else (lambda v: v.sqrt() + eps)
    if name == "adagrad_step":
        acc = torch.full_like(p, hyper.get("initial_accumulator_value", 0.0))
        for t, g in enumerate(grads, 1):
            g = g.double() + wd * p
            acc = acc + g * g
            clr = lr / (1 + (t - 1) * hyper.get("lr_decay", 0.0))
            p = p - clr * g / root(acc)
            out.append(p)
        return out
    if name == "rmsprop_step":
        alpha, mom, centered = hyper.get("alpha", 0.99), hyper.get("momentum", 0.0), hyper.get("centered", False)
        v, avg, buf = torch.zeros_like(p), torch.zeros_like(p), torch.zeros_like(p)
        for g in grads:
            g = g.double() + wd * p
            v = alpha * v + (1 - alpha) * g * g
            if centered:
                avg = alpha * avg + (1 - alpha) * g
                denom = root(v - avg * avg)
            else:
                denom = root(v)
            if mom > 0:
                buf = mom * buf + g / denom
                p = p - lr * buf
            else:
                p = p - lr * g / denom
            out.append(p)
        return out
    b1, b2 = hyper.get("betas", (0.9, 0.999))
    m, v, vmax = torch.zeros_like(p), torch.zeros_like(p), torch.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = g.double()
        if name == "adamw_step":
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = 1 if bug == "step_not_stored" else t
        c1, c2 = (1.0, 1.0) if bug == "no_bias_correction" else (1 - b1 ** step, 1 - b2 ** step)
        if hyper.get("amsgrad"):
            vmax = torch.maximum(vmax, v)
            v_used = vmax
        else:
            v_used = v
        p = p - lr * (m / c1) / root(v_used / c2)
        out.append(p)
    return out
