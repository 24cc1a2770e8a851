"""Make forbidden library functions raise inside the worker, before the submission loads.

Each dotted name in grading.yaml's `forbidden.calls` is either a module (every function and
class in it and its loaded submodules is forbidden) or one function/class. Python functions
are disarmed in place (their code object is replaced), so every alias reaches the same
raising function: `from torch.optim import Adam as A`, getattr, importlib, a reference kept
anywhere. Classes get raising constructors and methods. Built-in (C) functions cannot be
changed in place: their bindings are replaced in every loaded module that holds them, and
the op trace is the second net.
"""
from __future__ import annotations

import builtins
import importlib
import sys
import types
from typing import Any


class ForbiddenCallError(RuntimeError):
    """Raised when student code reaches a function the assignment forbids."""


# Disarmed code keeps its module's globals, so the error class must be found from any module.
builtins.ForbiddenCallError = ForbiddenCallError  # type: ignore[attr-defined]
# The worker's own machinery: never disarmed, or the protocol itself would break.
PROTECTED_MODULES = ("json", "struct", "os", "select", "sys", "traceback", "importlib", "operator", "builtins",
                     "types", "warnings", "resource", "_autograder_runtime", "autograder")


def _message(name: str) -> str:
    return (f"{name} is forbidden in this assignment (grading.yaml forbidden.calls); "
            "implement the computation yourself")


def _raiser(name: str):
    message = _message(name)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenCallError(message)

    forbidden.__name__ = name.rsplit(".", 1)[-1]
    return forbidden


def _stub_code(function: types.FunctionType, name: str) -> types.CodeType | None:
    """A code object that raises, with the same free variables as `function` (or None)."""
    freevars = function.__code__.co_freevars
    lines = ["def make():"]
    lines += [f"    {var} = None" for var in freevars]
    lines += ["    def stub(*args, **kwargs):"]
    if freevars:
        lines += [f"        ({', '.join(freevars)},)"]
    lines += [f"        raise ForbiddenCallError({_message(name)!r})", "    return stub"]
    namespace: dict = {}
    exec(compile("\n".join(lines), f"<forbidden {name}>", "exec"), namespace)
    code = namespace["make"]().__code__
    return code if code.co_freevars == freevars else None


def _disarm_function(function: types.FunctionType, name: str) -> bool:
    code = _stub_code(function, name)
    if code is None:
        return False
    function.__code__ = code
    function.__kwdefaults__ = None
    return True


def _disarm_class(cls: type, name: str) -> None:
    for attribute, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and not attribute.startswith("__") or attribute in ("__init__", "__call__"):
            try:
                setattr(cls, attribute, _raiser(f"{name}.{attribute}"))
            except (TypeError, AttributeError):
                pass
    try:
        cls.__init__ = _raiser(name)  # type: ignore[misc]
    except (TypeError, AttributeError):
        pass


def _rebind_everywhere(original: Any, replacement: Any) -> None:
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            if value is original:
                namespace[key] = replacement


def _protected(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return any(module == m or module.startswith(m + ".") for m in PROTECTED_MODULES)


def _forbid_object(obj: Any, name: str, seen: set[int], explicit: bool = False) -> None:
    """Disarm `obj` in place where Python allows, else rebind every module's reference to it.

    Wrapped functions (functools.wraps: `__wrapped__`) and numpy's C dispatchers (`_implementation`)
    are followed, so the original behind a decorator raises too. An explicitly named object is
    disarmed even in a module the runtime itself uses (json.dumps): the protocol does not call it.
    """
    if id(obj) in seen or (_protected(obj) and not explicit) or _runtime_own(obj):
        return
    seen.add(id(obj))
    for inner in (getattr(obj, "__wrapped__", None), getattr(obj, "_implementation", None)):
        if isinstance(inner, types.FunctionType):
            _forbid_object(inner, name, seen, explicit)
    if isinstance(obj, types.FunctionType):
        if not _disarm_function(obj, name):
            _rebind_everywhere(obj, _raiser(name))
    elif isinstance(obj, type):
        _disarm_class(obj, name)
    elif callable(obj):
        _rebind_everywhere(obj, _raiser(name))


def _runtime_own(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return module.startswith(("_autograder_runtime", "autograder"))


def _forbid_module(module: types.ModuleType, seen: set[int]) -> None:
    prefix = module.__name__
    modules = [m for key, m in list(sys.modules.items()) if m is not None and (key == prefix or key.startswith(prefix + "."))]
    for submodule in modules:
        for attribute, value in list(vars(submodule).items()):
            if attribute.startswith("__") or isinstance(value, types.ModuleType):
                continue
            origin = getattr(value, "__module__", "") or ""
            if origin == prefix or origin.startswith(prefix + "."):
                _forbid_object(value, f"{origin}.{getattr(value, '__qualname__', attribute)}", seen)


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def install_guard(forbidden_calls: list[str]) -> list[str]:
    """Disarm every forbidden name; returns the names that could not be found (for the log)."""
    missing, seen = [], set()
    for dotted in forbidden_calls:
        try:
            target = _resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
            continue
        if isinstance(target, types.ModuleType):
            _forbid_module(target, seen)
        else:
            _forbid_object(target, dotted, seen, explicit=True)
    return missing


# ------------------------------------------------------------------ the dispatcher

OP_DISPATCH_KEYS = ("CPU", "CUDA", "Meta", "CompositeImplicitAutograd", "CompositeExplicitAutograd")


def forbidden_op_names(patterns: list[str]) -> list[str]:
    """Every registered operator overload (aten, c10d, ...) whose name matches a grading.yaml `forbidden.ops` pattern
    ('aten::_fused_*' matches 'aten::_fused_adam_' and its overloads 'aten::_fused_adam_.tensor_lr').
    Backward kernels are left to the op trace: the worker's own autograd instruments run them (a05's
    "no autograd in a manual gradient" rule is judged per call by the trace and the guard)."""
    import fnmatch

    import torch

    names = torch._C._dispatch_get_all_op_names()
    return sorted(name for name in names if "_backward" not in name  # autograd's own: the autograd probes need them
                  and any(fnmatch.fnmatchcase(name.split(".", 1)[0], p) or fnmatch.fnmatchcase(name, p) for p in patterns))


def disarm_ops(patterns: list[str]) -> list[str]:
    """Register a raising kernel for every forbidden operator, for every backend, in the dispatcher.

    Python cannot reach around the dispatcher: popping the op trace's TorchDispatchMode
    (`_disable_current_modes`), calling `torch.ops.aten.X` directly, or rebuilding the Python code
    that calls the operator all end in the same raising kernel. The registrations live as long as
    the process; the Library that holds them is referenced only from a closure. Returns the
    operators disarmed.
    """
    import warnings

    import torch

    names = forbidden_op_names(patterns)
    libraries: dict[str, object] = {}  # one per namespace (aten, c10d, ...), kept alive by the closure below
    done = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        for name in names:
            namespace, overload = name.split("::", 1)
            if namespace not in libraries:
                libraries[namespace] = torch.library.Library(namespace, "IMPL")
            library = libraries[namespace]
            raiser = _op_raiser(name)
            registered = False
            for key in OP_DISPATCH_KEYS:
                try:
                    library.impl(overload, raiser, key)
                    registered = True
                except Exception:  # e.g. no Meta kernel may be registered beside a composite one
                    continue
            if registered:
                done.append(name)

    def keep() -> object:
        return libraries

    _KEEP.append(keep)
    return done


_KEEP: list = []


def _op_raiser(name: str):
    message = (f"the operator {name} is forbidden in this assignment (grading.yaml forbidden.ops); "
               "implement the computation yourself")

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenCallError(message)

    return forbidden
