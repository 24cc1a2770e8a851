"""Evidence, not advice (issue 10, items 2 and 3): rules that hold whatever the submission does in its process.

Forbidden operators are disarmed in the dispatcher (popping the op trace's mode does not help), and
an audit hook installed before import refuses rebuilding code at run time (exec/compile of library
source, reloading a module, building functions from code objects) and the introspection that
reaches around the guard (frames, code objects, the garbage collector, ctypes). Honest idioms
(dataclasses, namedtuple, functools, typing, warnings, helper modules, stdlib imports) still work.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autograder.course.reader import load_course
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''

def outcomes():
    """For each trick: 'refused' if the guard, the dispatcher or the audit hook stopped it, else what happened."""
    results = {}
    for name, trick in TRICKS.items():
        try:
            value = trick()
            if callable(value):
                value()
            results[name] = "ran"
        except Exception as error:
            kind = type(error).__name__
            results[name] = "refused" if kind in ("ForbiddenCallError", "RefusedOperation") else f"{kind}: {error}"[:300]
    return results


def honest():
    """Honest idioms: each must run."""
    results = {}
    for name, idiom in HONEST.items():
        try:
            idiom()
            results[name] = "ran"
        except Exception as error:
            results[name] = f"{type(error).__name__}: {error}"[:300]
    return results
'''

TORCH_TRICKS = '''
import importlib
import sys
import torch
import torch.nn.utils.clip_grad as clip_module
from torch.utils._python_dispatch import _disable_current_modes

def _adam_args():
    p = [torch.zeros(3)]
    return (p, [torch.ones(3)], [torch.zeros(3)], [torch.zeros(3)], [], [torch.tensor(1.0)])

def _fused(**extra):
    return torch._fused_adam_(*_adam_args(), lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0, eps=1e-8,
                              amsgrad=False, maximize=False, **extra)

def _modes_popped():
    with _disable_current_modes():
        return _fused()

def _dispatch_disabled():
    with torch._C._DisableTorchDispatch():
        return _fused()

def _ops_namespace():
    return torch.ops.aten._fused_adam_.default(*_adam_args(), lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0,
                                              eps=1e-8, amsgrad=False, maximize=False)

def _fused_sgd():
    p = [torch.zeros(3)]
    return torch._fused_sgd_(p, [torch.ones(3)], [], weight_decay=0.0, momentum=0.0, lr=0.1, dampening=0.0,
                             nesterov=False, maximize=False, is_first_step=True)

def _rebuilt_from_source():
    namespace = {}
    exec(compile(open(clip_module.__file__).read(), clip_module.__file__, "exec"), namespace)
    return namespace["clip_grad_norm_"]([torch.ones(2, requires_grad=True)], 1.0)

def _reloaded():
    return importlib.reload(clip_module).clip_grad_norm_

def _eval_text():
    return eval("1 + 1")

def _function_from_code():
    return type(_adam_args)(_adam_args.__code__, {})

def _frames():
    return sys._getframe().f_back.f_globals

def _traceback_frames():
    try:
        raise ValueError
    except ValueError as error:
        return error.__traceback__.tb_frame.f_back

def _gc_walk():
    import gc
    return [o for o in gc.get_objects() if type(o).__name__ == "Library"]

def _launder_through_typing():
    import typing
    def f(x: "exec(compile('1', 'x', 'exec'))"): pass
    return typing.get_type_hints(f)

def _code_replaced():
    def f():
        return 1
    f.__code__ = _frames.__code__

def _ctypes_at_run_time():
    import ctypes  # loaded by the runtime and by torch, yet a first import for the submission
    return ctypes.memset

def _gc_by_computed_name():
    return importlib.import_module("g" + "c").get_objects

TRICKS = {
    "ctypes imported at run time": _ctypes_at_run_time,
    "gc imported by a computed name": _gc_by_computed_name,
    "fused kernel with the op trace's mode popped": _modes_popped,
    "fused kernel with torch dispatch disabled": _dispatch_disabled,
    "fused kernel through torch.ops": _ops_namespace,
    "another fused kernel (sgd)": _fused_sgd,
    "forbidden function rebuilt from library source": _rebuilt_from_source,
    "forbidden module reloaded": _reloaded,
    "eval of text": _eval_text,
    "function built from a code object": _function_from_code,
    "frames": _frames,
    "frames through a traceback": _traceback_frames,
    "garbage collector walk": _gc_walk,
    "exec laundered through typing's eval": _launder_through_typing,
    "code object replaced": _code_replaced,
}

def _dataclass():
    import dataclasses
    @dataclasses.dataclass
    class State:
        step: int = 0
        moments: dict = dataclasses.field(default_factory=dict)
    return State(1)

def _namedtuple():
    import collections
    Pair = collections.namedtuple("Pair", "a b")
    return Pair(1, 2)._replace(a=3)

def _functools():
    import functools, itertools, operator
    cached = functools.lru_cache(maxsize=None)(lambda n: n * 2)
    return functools.reduce(operator.add, itertools.chain([cached(2)], range(3)))

def _typing():
    from typing import NamedTuple, Optional
    class P(NamedTuple):
        x: int
        y: Optional[float] = None
    return P(1)

def _first_stdlib_import():
    import fractions, statistics
    return statistics.mean([fractions.Fraction(1, 3), 1])

def _warnings():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.warn("fine")

def _exceptions():
    import traceback
    try:
        raise ValueError("x")
    except ValueError:
        return traceback.format_exc()

def _in_place_torch():
    x = torch.zeros(3)
    x.add_(1).mul_(2)
    torch.optim  # merely naming the module is fine
    return torch.linalg.vector_norm(x)

def _numpy_state():
    import numpy as np
    state = {"m": np.zeros(3)}
    state["m"] *= 0.9
    return np.einsum("i,i->", state["m"], state["m"])

def _unfused_optimizer_math():
    p = torch.ones(3, requires_grad=True)
    (p * p).sum().backward()
    with torch.no_grad():
        p -= 0.1 * p.grad
    return p

HONEST = {
    "dataclass": _dataclass, "namedtuple": _namedtuple, "functools/itertools/operator": _functools,
    "typing": _typing, "stdlib imported on first use": _first_stdlib_import, "warnings": _warnings,
    "exceptions and tracebacks": _exceptions, "in-place torch": _in_place_torch,
    "numpy arrays in optimizer state": _numpy_state, "autograd and no_grad": _unfused_optimizer_math,
}
'''


def _session(tmp_path: Path, source: str, preload: tuple, forbidden_calls: tuple, forbidden_ops: tuple) -> Session:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tricks.py").write_text(textwrap.dedent(source) + PROBE)
    spec = WorkerSpec(tmp_path / "sub", "tricks", preload=preload, forbidden_calls=forbidden_calls,
                      forbidden_ops=forbidden_ops, zygote=None)
    return Session(spec, CallLimits(120, 240))


@pytest.fixture(scope="module")
def a04(tmp_path_factory):
    forbidden = load_course(ROOT / "grading.yaml").assignment("a04").forbidden
    session = _session(tmp_path_factory.mktemp("a04"), TORCH_TRICKS, ("numpy", "torch"), forbidden.calls, forbidden.ops)
    session.begin_test()
    student = StudentModule(session)
    yield student, session
    session.close()


def test_every_trick_is_refused(a04):
    student, _ = a04
    outcomes = student.outcomes()
    assert outcomes == {name: "refused" for name in outcomes}


def test_honest_idioms_still_run(a04):
    student, _ = a04
    outcomes = student.honest()
    assert outcomes == {name: "ran" for name in outcomes}


def test_the_worker_reports_the_measures(a04):
    _, session = a04
    assert session.isolation.get("audit_hook") is True
    assert session.isolation.get("disarmed_ops", 0) >= 10  # every overload of every aten::_fused_* kernel
