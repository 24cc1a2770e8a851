"""probe.module_autograd: a student module's forward in the worker, with the gradients of its inputs and
of every named parameter (what torch.autograd gives the trusted side for the same module and weights)."""
import textwrap
from pathlib import Path

import torch

from autograder.sandbox.probe import Probe
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

TINY = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.frozen = nn.Parameter(torch.ones(2), requires_grad=False)
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x, scale=1.0):
        return torch.tanh(self.lin(x)) * scale * self.frozen
'''


def _session(tmp_path: Path) -> Session:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "tiny.py").write_text(textwrap.dedent(TINY))
    return Session(WorkerSpec(folder, "tiny", preload=("numpy", "torch"), zygote=None), CallLimits(60, 120))


def test_module_autograd_returns_output_input_and_parameter_gradients(tmp_path):
    torch.manual_seed(0)
    weight, bias = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    x, cotangent = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    session = _session(tmp_path)
    try:
        module = StudentModule(session).Tiny().double()
        module.load_state_dict({"lin.weight": weight, "lin.bias": bias, "frozen": torch.ones(2, dtype=torch.float64),
                                "unused": torch.zeros(1, dtype=torch.float64)})
        out, input_grads, parameter_grads = Probe(session).module_autograd(module, (x,), {"scale": 2.0}, wrt=[0],
                                                                            cotangents=cotangent)
    finally:
        session.close()
    leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    expected = torch.tanh(leaves[0] @ leaves[1].T + leaves[2]) * 2.0
    gx, gw, gb = torch.autograd.grad(expected, leaves, cotangent)
    torch.testing.assert_close(out, expected.detach())
    assert len(input_grads) == 1
    torch.testing.assert_close(input_grads[0], gx)
    assert sorted(parameter_grads) == ["lin.bias", "lin.weight", "unused"]   # frozen: not a gradient leaf
    torch.testing.assert_close(parameter_grads["lin.weight"], gw)
    torch.testing.assert_close(parameter_grads["lin.bias"], gb)
    assert parameter_grads["unused"] is None
