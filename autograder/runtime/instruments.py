"""Generic instruments that run inside the worker around one call of student code.

Their results are data for the trusted side, which treats them as untrusted hints (the
student's code runs in the same process and could tamper with them); the score rests on
values the trusted side checks itself.
"""
from __future__ import annotations

import resource
import sys
import types
import warnings
from typing import Any, Callable

MAX_TRACED_OPS = 200_000


def op_trace(call: Callable[[], Any]) -> tuple[Any, list[dict]]:
    """Every aten op dispatched during the call, with output shapes and dtypes."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: list[dict] = []

    def describe(value: Any, shapes: list, dtypes: list) -> None:
        if isinstance(value, torch.Tensor):
            shapes.append(list(value.shape))
            dtypes.append(str(value.dtype).replace("torch.", ""))
        elif isinstance(value, (list, tuple)):
            for item in value:
                describe(item, shapes, dtypes)

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if len(ops) < MAX_TRACED_OPS:
                shapes: list = []
                dtypes: list = []
                describe(out, shapes, dtypes)
                name = func.name() if hasattr(func, "name") else str(func)
                ops.append({"name": _aten_name(name), "shapes": shapes, "dtypes": dtypes})
            return out

    with Recorder():
        result = call()
    return result, ops


def _aten_name(name: str) -> str:
    """'aten::mm' from 'aten::mm' or 'aten.mm.default'."""
    if "::" in name:
        return name.split(".")[0]
    parts = name.split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) > 1 else name


_TRUSTED: dict[str, Callable] = {}


def keep_trusted_copies() -> None:
    """Before the guard: private copies of the autograd entry points the instruments call. The guard
    disarms a forbidden function in place (its code object), so an assignment may forbid
    torch.autograd.grad to student code while the grader's autograd probe still differentiates."""
    import torch

    original = torch.autograd.grad
    copy = types.FunctionType(original.__code__, original.__globals__, original.__name__, original.__defaults__,
                              original.__closure__)
    copy.__kwdefaults__ = original.__kwdefaults__
    _TRUSTED["grad"] = copy


def autograd(function: Callable, args: list, kwargs: dict, wrt: list[int], cotangents: Any,
             extra: tuple = ()) -> tuple[Any, list]:
    """Outputs of function(*args) and the gradients of <outputs, cotangents> w.r.t. args[wrt]
    (then w.r.t. the `extra` leaf tensors, e.g. a module's parameters, in order)."""
    import torch

    args = list(args)
    inputs = []
    for index in wrt:
        tensor = args[index].detach().clone().requires_grad_(True)
        args[index] = tensor
        inputs.append(tensor)
    inputs += list(extra)
    with torch.enable_grad():
        outputs = function(*args, **kwargs)
        flat_out = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if cotangents is None:
            flat_cot = [torch.ones_like(o) for o in flat_out]
        else:
            flat_cot = list(cotangents) if isinstance(cotangents, (list, tuple)) else [cotangents]
        pairs = [(o, c) for o, c in zip(flat_out, flat_cot) if isinstance(o, torch.Tensor) and o.requires_grad]
        if not pairs:
            grads = [None] * len(inputs)
        else:
            grad = _TRUSTED.get("grad", torch.autograd.grad)
            grads = grad([o for o, _ in pairs], inputs, [c.to(o.dtype) for o, c in pairs], allow_unused=True)
    detached = [o.detach() if isinstance(o, torch.Tensor) else o for o in flat_out]
    outputs = type(outputs)(detached) if isinstance(outputs, (list, tuple)) else detached[0]
    return outputs, [None if g is None else g.detach() for g in grads]


def module_autograd(module: Any, args: list, kwargs: dict, wrt: list[int], cotangents: Any) -> tuple[Any, dict]:
    """autograd() through a torch module's forward, with the gradients of its parameters too:
    (outputs, {"inputs": grads of args[wrt], "parameters": {name: grad}}); None for an unused one."""
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    outputs, grads = autograd(module, args, kwargs, wrt, cotangents, extra=tuple(p for _, p in named))
    return outputs, {"inputs": grads[:len(wrt)], "parameters": {name: g for (name, _), g in zip(named, grads[len(wrt):])}}


def autograd_trace(function: Callable, args: list, kwargs: dict, wrt: list[int], cotangents: Any) -> tuple[Any, dict]:
    """autograd() under the op trace (its forward and its backward), with the shape of every tensor
    saved for backward (saved-tensor hooks see what a custom autograd.Function saves too)."""
    import torch

    saved: list[list[int]] = []

    def pack(tensor: Any) -> Any:
        if len(saved) < MAX_TRACED_OPS:
            saved.append(list(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        (outputs, grads), ops = op_trace(lambda: autograd(function, args, kwargs, wrt, cotangents))
    return [outputs, grads], {"ops": ops, "saved": saved}


def peak_memory(call: Callable[[], Any]) -> tuple[Any, dict]:
    """The call's result and peak memory: process RSS high-water mark, CUDA peak allocation."""
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = call()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stats = {"rss_peak_bytes": after, "rss_growth_bytes": after - before,
             "cuda_peak_bytes": int(torch.cuda.max_memory_allocated()) if cuda else 0}
    return result, stats


def numpy_warnings(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """The call's result and numpy's floating-point warnings (overflow, divide, invalid)."""
    import numpy as np

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            result = call()
    texts = [f"{w.category.__name__}: {w.message}" for w in caught][:100]
    return result, texts
