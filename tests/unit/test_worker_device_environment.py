"""Without CUDA the worker runs Triton kernels through Triton's interpreter."""
import torch

from autograder.runtime import worker


def test_worker_without_cuda_sets_the_triton_interpreter(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker.device_environment() == {"TRITON_INTERPRET": "1"}


def test_worker_with_cuda_compiles_triton_kernels(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert worker.device_environment() == {}
