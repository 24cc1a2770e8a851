"""A partial submission: SGD and AdaGrad done, Adam without AMSGrad, AdamW written as
Adam with L2 decay (wrong), RMSProp and clipping not started."""
import torch


def sgd_step(param, grad, state, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    if lr < 0 or momentum < 0 or weight_decay < 0:
        raise ValueError("negative hyperparameter")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov needs momentum and no dampening")
    g = grad + weight_decay * param
    state = dict(state)
    if momentum != 0:
        if "buf" not in state:
            state["buf"] = g.clone()
        else:
            state["buf"] = momentum * state["buf"] + (1 - dampening) * g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return param - lr * g, state


def adagrad_step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
    if min(lr, lr_decay, weight_decay, initial_accumulator_value, eps) < 0:
        raise ValueError("negative hyperparameter")
    step = state.get("step", 0) + 1
    total = state.get("sum", torch.full_like(param, initial_accumulator_value))
    g = grad + weight_decay * param
    total = total + g * g
    clr = lr / (1 + (step - 1) * lr_decay)
    return param - clr * g / (total.sqrt() + eps), {"step": step, "sum": total}


def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False):
    raise NotImplementedError("Task 3: RMSProp")


def adam_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, amsgrad=False):
    if amsgrad:
        raise NotImplementedError("AMSGrad")
    b1, b2 = betas
    if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError("invalid hyperparameter")
    t = state.get("t", 0) + 1
    g = grad + weight_decay * param
    m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * g
    v = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), {"t": t, "m": m, "v": v}


def adamw_step(param, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=1e-2, amsgrad=False):
    # wrong: this is Adam with L2 regularisation, not decoupled weight decay
    return adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                     weight_decay=weight_decay, amsgrad=amsgrad)


def clip_grad_norm(grads, max_norm, eps=1e-6):
    raise NotImplementedError("Task 6: gradient clipping")
