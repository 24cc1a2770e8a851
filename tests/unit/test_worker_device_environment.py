"""Without CUDA the worker runs Triton kernels through Triton's interpreter."""
import torch

from autograder.runtime import worker


def test_worker_without_cuda_sets_the_triton_interpreter(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker.device_environment() == {"TRITON_INTERPRET": "1"}


def test_worker_with_cuda_compiles_triton_kernels(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert worker.device_environment() == {}


def test_zygote_judges_by_the_build_without_touching_cuda(monkeypatch):
    def touched():
        raise AssertionError("the zygote must not initialise CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", touched)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert worker.device_environment(probe_cuda=False) == {"TRITON_INTERPRET": "1"}
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert worker.device_environment(probe_cuda=False) == {}
