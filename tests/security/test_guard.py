"""The guard: forbidden functions raise in the worker however the submission reaches them."""
import textwrap
from pathlib import Path

import pytest

from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.remote import StudentModule
from autograder.course.reader import load_course
from autograder.sandbox.worker import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]

TOY_TRICKS = '''
import importlib
import json
import numpy
from numpy.linalg import solve as taken_at_import
from json import dumps as dumps_at_import

TRICKS = {
    "alias taken at import": lambda: taken_at_import([[1.0]], [1.0]),
    "attribute": lambda: numpy.linalg.solve([[1.0]], [1.0]),
    "getattr": lambda: getattr(numpy.linalg, "so" + "lve")([[1.0]], [1.0]),
    "importlib": lambda: importlib.import_module("numpy.linalg").solve([[1.0]], [1.0]),
    "private module": lambda: importlib.import_module("numpy.linalg._linalg").solve([[1.0]], [1.0]),
    "dispatcher implementation": lambda: getattr(taken_at_import, "_implementation", taken_at_import)([[1.0]], [1.0]),
    "json.dumps alias": lambda: dumps_at_import({"a": 1}),
    "json.dumps": lambda: json.dumps([1]),
}
'''

A04_TRICKS = '''
import importlib
import torch
from torch.optim import Adam as TakenAtImport
from torch.nn.utils import clip_grad_norm_ as clip_at_import

def _param():
    return [torch.zeros(2, requires_grad=True)]

TRICKS = {
    "class alias taken at import": lambda: TakenAtImport(_param()),
    "getattr": lambda: getattr(torch.optim, "S" + "GD")(_param(), lr=0.1),
    "importlib submodule": lambda: importlib.import_module("torch.optim.adamw").AdamW(_param()),
    "functional api": lambda: importlib.import_module("torch.optim.adam").adam,
    "functional call": lambda: importlib.import_module("torch.optim._functional").sgd([], [], []),
    "clip alias taken at import": lambda: clip_at_import(_param(), 1.0),
    "clip behind its decorator": lambda: getattr(clip_at_import, "__wrapped__", clip_at_import)(_param(), 1.0),
    "clip via submodule": lambda: importlib.import_module("torch.nn.utils.clip_grad").clip_grad_norm_(_param(), 1.0),
    "total norm": lambda: torch.nn.utils.get_total_norm([torch.ones(2)]),
}
'''

PROBE = '''

def outcomes():
    """For each trick: 'forbidden' if it raised the guard's error, else what happened."""
    results = {}
    for name, trick in TRICKS.items():
        try:
            value = trick()
            if callable(value):
                value()  # a function object reached: calling it must raise
            results[name] = "ran"
        except Exception as error:
            results[name] = "forbidden" if type(error).__name__ == "ForbiddenCallError" else repr(error)[:200]
    return results


def allowed():
    import numpy
    return float(numpy.linalg.norm(numpy.ones(4)))
'''


def _outcomes(tmp_path: Path, source: str, preload: tuple, forbidden: tuple) -> tuple[dict, float]:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tricks.py").write_text(textwrap.dedent(source) + PROBE)
    spec = WorkerSpec(tmp_path / "sub", "tricks", preload=preload, forbidden_calls=forbidden, zygote=None)
    session = Session(spec, CallLimits(120, 240))
    try:
        student = StudentModule(session)
        return student.outcomes(), student.allowed()
    finally:
        session.close()


def test_toy_guard_catches_aliases_getattr_importlib_and_json(tmp_path):
    forbidden = load_course(ROOT / "tests" / "fixtures" / "course" / "grading.yaml").assignment("a99").forbidden.calls
    outcomes, allowed = _outcomes(tmp_path, TOY_TRICKS, ("numpy",), forbidden)
    assert outcomes == {name: "forbidden" for name in outcomes}
    assert allowed == 2.0  # the rest of numpy.linalg still works


@pytest.mark.skipif(not (ROOT / "solutions" / "a04_optimizers").exists(), reason="a04 not in this checkout")
def test_a04_guard_catches_torch_optim_and_clipping_however_reached(tmp_path):
    forbidden = load_course(ROOT / "grading.yaml").assignment("a04").forbidden.calls
    outcomes, _ = _outcomes(tmp_path, A04_TRICKS, ("numpy", "torch"), forbidden)
    assert outcomes == {name: "forbidden" for name in outcomes}


A05_TRICKS = '''
import importlib
import torch
from torch.autograd import grad as grad_at_import

def _leaf():
    return torch.ones(2, dtype=torch.float64, requires_grad=True)

def _loss(x):
    return (x * x).sum()

def square_sum(x):
    return (x * x).sum()

TRICKS = {
    "Tensor.backward": lambda: _loss(_leaf()).backward(),
    "autograd.grad": lambda: torch.autograd.grad(_loss(x := _leaf()), [x]),
    "grad alias taken at import": lambda: grad_at_import(_loss(x := _leaf()), [x]),
    "grad via importlib": lambda: importlib.import_module("torch.autograd").grad(_loss(x := _leaf()), [x]),
    "autograd.backward": lambda: torch.autograd.backward([_loss(_leaf())]),
    "torch.func": lambda: importlib.import_module("torch.func").grad(_loss)(torch.ones(2)),
    "nn.RNN": lambda: torch.nn.RNN(2, 2),
}
'''


def test_a05_guard_refuses_autograd_in_student_code_while_the_autograd_probe_still_differentiates(tmp_path):
    """a05's manual gradients: every way to autograd raises for the student; the grader's own probe works."""
    import torch

    from autograder.sandbox.probe import Probe

    forbidden = load_course(ROOT / "grading.yaml").assignment("a05").forbidden.calls
    outcomes, _ = _outcomes(tmp_path, A05_TRICKS, ("numpy", "torch"), forbidden)
    assert outcomes == {name: "forbidden" for name in outcomes}
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "tricks.py").write_text(textwrap.dedent(A05_TRICKS) + PROBE)
    session = Session(WorkerSpec(tmp_path / "again", "tricks", preload=("numpy", "torch"), forbidden_calls=forbidden,
                                 zygote=None), CallLimits(120, 240))
    try:
        student = StudentModule(session)
        value, grads = Probe(session).autograd(student.square_sum, (torch.tensor([1.0, -2.0], dtype=torch.float64),), wrt=[0])
        assert float(value) == 5.0 and grads[0].tolist() == [2.0, -4.0]
    finally:
        session.close()
