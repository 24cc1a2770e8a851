"""Diagnoses for a04: when a trajectory differs from torch.optim, find out why by experiment.

Run only on failure, on the trusted side. The student's step function is re-run on the
same data with one thing changed at a time, and compared with torch.optim (or with a
trusted re-implementation that has one known bug):
  1. two runs from an empty state differ: memory outside the state;
  2. a fresh run matches torch: the state fed back / resumed is at fault;
  3. (hidden tests) the run matches a known-bug variant from a04_variants.py: no bias
     correction, step count not stored, eps inside the square root;
  4. the run matches torch once a feature is switched off (weight_decay=0, momentum=0, ...);
  5. the run matches torch at a tiny eps but not at a large one: eps enters at the wrong place.
Sentences name the feature, never the drawn values.
"""
from __future__ import annotations

import math

import torch

from autograder.harness import first_true

# feature -> (its value when switched off, the sentence's advice)
SWITCHES = {
    "weight_decay": (0.0, "check where weight decay enters the update"),
    "momentum": (0.0, "check the momentum buffer"),
    "dampening": (0.0, "check dampening (torch leaves the first momentum buffer undampened: b_1 = g_1)"),
    "nesterov": (False, "check the Nesterov look-ahead (g_t + mu * b_t)"),
    "lr_decay": (0.0, "check the learning-rate decay lr / (1 + (t - 1) * lr_decay)"),
    "initial_accumulator_value": (0.0, "check how the accumulator starts"),
    "centered": (False, "check the centered variant (subtract the square of the average gradient)"),
    "amsgrad": (False, "check AMSGrad: it keeps the running maximum of the raw v, then bias-corrects it"),
}
DEPENDENT = {"dampening": ("momentum",), "nesterov": ("momentum",)}  # switched off together with their base


def _close(actual, expected, rtol=1e-9, atol=1e-12) -> bool:
    try:
        if torch.float32 in (getattr(actual, "dtype", None), getattr(expected, "dtype", None)):
            rtol, atol = 1e-4, 1e-6
        actual = torch.as_tensor(actual, dtype=torch.float64)
        expected = torch.as_tensor(expected, dtype=torch.float64)
        return actual.shape == expected.shape and bool(torch.allclose(actual, expected, rtol=rtol, atol=atol))
    except Exception:  # noqa: BLE001 - an unusable value matches nothing
        return False


def _run(function, param, grads, hyper):
    state, out = {}, []
    for grad in grads:
        param, state = function(param, grad, state, **hyper)
        out.append(param)
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))


def explain_trajectory(function, param, grads, hyper, oracle, variant=None) -> str | None:
    """Why the student's trajectory differs from torch's; `oracle(name, param, grads, **hyper)`.

    `variant(name, param, grads, hyper, bug)`: a trusted re-implementation with one known bug
    (hidden tests only: it is never released); without it, only torch-based experiments run.
    """
    name = getattr(function, "__name__", "")
    if not grads:
        return None
    grads = list(grads)[:12]

    def agrees(changed: dict) -> bool:
        trial = {**hyper, **changed}
        return _same(_run(function, param, grads, trial), oracle(name, param, grads, **trial))

    first = _run(function, param, grads, hyper)
    second = _run(function, param, grads, hyper)
    if not _same(first, second):
        return (f"{name}: two runs from an empty state ({{}}) with the same inputs gave different parameters: the "
                "step count and buffers must live in the returned state, not in module-level variables "
                "(state is the only memory)")
    experiments = []
    if name in ("adam_step", "adamw_step"):
        b1, b2 = hyper.get("betas", (0.9, 0.999))
        ratio = (1 - b1) / math.sqrt(1 - b2)
        lr = hyper.get("lr", 1e-3)
        decay = hyper.get("weight_decay", 1e-2 if name == "adamw_step" else 0.0)

        def first_step_uncorrected() -> bool:
            start = param.double() * (1 - lr * decay) if name == "adamw_step" else param.double()
            g = grads[0].double()
            moved = (torch.as_tensor(first[0]).double() - start).abs()
            big = g.abs() > 1e3 * hyper.get("eps", 1e-8)
            return (abs(ratio - 1) > 1e-3 and (name == "adamw_step" or decay == 0) and bool(big.any())
                    and bool(torch.allclose(moved[big], torch.full_like(moved[big], lr * ratio), rtol=1e-3)))

        experiments.append(
            (f"{name}: the first step moves by about {ratio:.3g} * lr instead of lr: is the bias correction "
             "applied? (m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t))", first_step_uncorrected))
    if variant is not None and name in ("adam_step", "adamw_step"):
        b1, b2 = hyper.get("betas", (0.9, 0.999))
        ratio = (1 - b1) / math.sqrt(1 - b2)
        experiments += [
            (f"{name}: the first step moves by about {ratio:.3g} * lr instead of lr: is the bias correction "
             "applied? (m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t))",
             lambda: _same(first, variant(name, param, grads, hyper, "no_bias_correction"))),
            (f"{name}: your steps match Adam with the bias correction at t = 1 on every step: is the step count "
             "stored in the state and incremented?",
             lambda: len(grads) > 1 and _same(first, variant(name, param, grads, hyper, "step_not_stored"))),
        ]
    if variant is not None and name in ("adagrad_step", "rmsprop_step", "adam_step", "adamw_step"):
        experiments.append(
            (f"{name}: your steps match the update with eps inside the square root, sqrt(v + eps); eps is added "
             "after the square root: sqrt(v) + eps",
             lambda: _same(first, variant(name, param, grads, hyper, "eps_inside_sqrt"))))
    found = first_true(experiments)
    if found:
        return found
    if _same(first, oracle(name, param, grads, **hyper)):
        return (f"{name}: a fresh trajectory matches torch, but not when the returned state is fed back, resumed or "
                "kept per parameter: keep every piece of memory (step count, buffers) in the state dict, and do "
                "not mutate a state you returned earlier")
    switched = []
    for feature, (off, advice) in SWITCHES.items():
        if feature == "weight_decay" and name == "adamw_step":
            pass  # AdamW's default weight_decay is 0.01: switch it off explicitly below as well
        elif not hyper.get(feature):
            continue
        changed = {feature: off, **{dep: SWITCHES[dep][0] for dep in DEPENDENT.get(feature, ())}}
        if feature == "momentum":
            changed.update(nesterov=False, dampening=0.0)
        try:
            if agrees(changed):
                switched.append((feature, off, advice))
        except Exception:  # noqa: BLE001 - a combination the student rejects is no evidence
            continue
    if switched:
        names = " or ".join(f"{feature}={off}" for feature, off, _ in switched)
        advice = "; ".join(advice for _, _, advice in switched)
        return (f"{name}: matches torch with {names} but not with {' and '.join(f for f, _, _ in switched)} "
                f"switched on: {advice}")
    if "eps" in hyper or name != "sgd_step":
        try:
            if agrees({"eps": 1e-30}) and not agrees({"eps": 0.5}):
                return (f"{name}: matches torch when eps is tiny but not when eps is large: eps enters the "
                        "formula at the wrong place (it is added to the square root's result: sqrt(v) + eps)")
        except Exception:  # noqa: BLE001
            pass
    return None


def explain_clip(student_clipped, student_total, grads, max_norm, eps=1e-6) -> str | None:
    """Why clip_grad_norm differs: the norm after clipping returned, or eps left out of the scale."""
    total = float(torch.linalg.vector_norm(torch.cat([g.double().reshape(-1) for g in grads]))) if grads else 0.0
    scale = min(1.0, max_norm / (total + eps))
    no_eps = min(1.0, max_norm / total) if total > 0 else 1.0
    return first_true([
        ("clip_grad_norm returns the total norm after clipping; it must return the total norm before clipping "
         "(what torch's clip_grad_norm_ returns)",
         lambda: scale < 1 and _close(student_total, total * scale) and not _close(student_total, total)),
        ("clip_grad_norm scales by max_norm / total: the scale is max_norm / (total + eps), with eps",
         lambda: scale < 1 and all(_close(c, g.double() * no_eps, rtol=1e-12, atol=0) for c, g in zip(student_clipped, grads))
         and not all(_close(c, g.double() * scale, rtol=1e-12, atol=0) for c, g in zip(student_clipped, grads))),
    ])
