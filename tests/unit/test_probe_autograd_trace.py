"""The autograd_trace probe: the op trace covers the backward, and saved-for-backward shapes are reported."""
import torch

from autograder.runtime import instruments as probes


class SavesScores(torch.autograd.Function):
    """y = x @ x^T, saving the (n, n) product itself for backward (as a careless flash attention would)."""

    @staticmethod
    def forward(ctx, x):
        y = x @ x.transpose(0, 1)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, _ = ctx.saved_tensors
        return (dy + dy.transpose(0, 1)) @ x


def test_autograd_trace_sees_backward_ops_and_what_a_function_saves():
    x = torch.randn(5, 3, dtype=torch.float64)
    (output, grads), report = probes.autograd_trace(SavesScores.apply, [x], {}, [0], None)
    assert torch.allclose(output, x @ x.T)
    assert torch.allclose(grads[0], 2 * torch.ones(5, 5, dtype=torch.float64) @ x)
    assert [5, 5] in report["saved"] and [5, 3] in report["saved"]
    names = [op["name"] for op in report["ops"]]
    assert names.count("aten::mm") >= 2, names   # the forward's product and the backward's


def test_autograd_trace_of_a_plain_function_reports_autograd_saves():
    x = torch.randn(4, dtype=torch.float64)
    (output, grads), report = probes.autograd_trace(torch.exp, [x], {}, [0], None)
    assert torch.allclose(grads[0], torch.exp(x))
    assert report["saved"] == [[4]]              # exp saves its result
