"""Hidden: ring_allreduce_dist in 2, 3 and 4 real processes.

Each test starts p sandboxed workers of the submission (the `rank_group` fixture): they share
a private network namespace holding only loopback, and have joined one gloo process group
before the submission was imported. Every collective is disarmed by the guard, so only
send/recv/isend/irecv move data. The bytes that crossed the namespace's loopback are read by
the trusted side (evidence the ranks cannot forge): the bandwidth-optimal ring sends about
2 (p - 1) / p of the tensor per rank, passing whole tensors around sends (p - 1) times it.
"""
import pytest
import torch

from autograder.harness import EXACT, assert_close, diagnose, first_true, require
from oracle import integer_tensors, ring_result_with

SEED = 2**24 + 909
CALL_SECONDS = 10.0


def shapes_for(p):
    """Shapes whose chunks are even, uneven, empty (numel < p) and absent (numel 0)."""
    return [(5,), (2, 3), (p - 1,), (0,), (3, 1, 2), (4 * p + 1,)]


def explain(results, tensors):
    return first_true([
        ("the all-gather adds the incoming chunk; it must overwrite it",
         lambda: all(torch.equal(a, b) for a, b in zip(results, ring_result_with(tensors, all_gather_adds=True)))),
        ("chunk the flattened tensor with torch.tensor_split(flat, p): some chunks are empty when numel < p, and "
         "every rank must skip (or exchange) the same ones", lambda: tensors[0].numel() < len(tensors)),
    ])


def run_ring(group, tensors, what):
    results = group.call("ring_allreduce_dist", [(t,) for t in tensors])
    for r, result in enumerate(results):
        require(hasattr(result, "shape"), f"{what}: rank {r} must return a tensor")
    return results


@pytest.mark.parametrize("p", [2, 3, 4])
def test_dist_sums_in_p_processes(rank_group, p):
    """Integer-valued data exactly (every shape, empty included); random floats within 1e-6."""
    with rank_group(p, call_seconds=CALL_SECONDS) as group:
        for index, shape in enumerate(shapes_for(p)):
            for dtype in (torch.float64, torch.int64):
                tensors = integer_tensors(SEED + index, p, shape, dtype)
                what = f"ring_allreduce_dist in {p} processes, a {len(shape)}-d {dtype} tensor" + (
                    " with fewer elements than ranks" if 0 < tensors[0].numel() < p else
                    " with no elements" if tensors[0].numel() == 0 else "")
                results = run_ring(group, tensors, what)
                with diagnose(lambda: explain(results, tensors)):
                    for r, result in enumerate(results):
                        assert_close(result, torch.stack(tensors).sum(0), f"{what}: rank {r}'s result", tol=EXACT)
        generator = torch.Generator().manual_seed(SEED + 50 + p)
        for dtype in (torch.float32, torch.float64):
            tensors = [torch.randn(3, 7, generator=generator, dtype=torch.float64).to(dtype) for _ in range(p)]
            exact = torch.stack([t.double() for t in tensors]).sum(0)
            scale = torch.stack([t.double().abs() for t in tensors]).sum(0)
            results = run_ring(group, tensors, f"ring_allreduce_dist in {p} processes, {dtype}")
            for r, result in enumerate(results):
                require(result.dtype == dtype and tuple(result.shape) == (3, 7),
                        f"ring_allreduce_dist ({dtype}): rank {r} must return the input's shape and dtype")
                error = float(((result.double() - exact).abs() - 1e-6 * scale).max())
                require(error <= 0, f"ring_allreduce_dist in {p} processes ({dtype}): rank {r}'s result is further "
                                    "than 1e-6 (relative to the sum of absolute values) from the sum")


@pytest.mark.parametrize("p", [3, 4])
def test_dist_is_the_bandwidth_optimal_ring(rank_group, p):
    numel = 60_000
    tensors = integer_tensors(SEED + 99, p, (numel,), torch.float32)
    ring_bytes = p * 2 * (p - 1) * -(-numel // p) * 4            # every rank's sends, all ranks together
    with rank_group(p, call_seconds=CALL_SECONDS) as group:
        before = group.loopback_bytes()
        results = run_ring(group, tensors, f"ring_allreduce_dist in {p} processes on a large tensor")
        sent = group.loopback_bytes() - before
    for r, result in enumerate(results):
        assert_close(result, torch.stack(tensors).sum(0), f"ring_allreduce_dist in {p} processes: rank {r}", tol=EXACT)
    with diagnose("send one chunk (1/p of the tensor) per step, p - 1 steps of reduce-scatter then p - 1 of all-gather: "
                  "passing whole tensors around the ring sends (p - 1) times the tensor per rank"):
        require(sent <= 1.2 * ring_bytes + 32_768,
                f"ring_allreduce_dist in {p} processes sent {sent / ring_bytes:.2f} times the bandwidth-optimal "
                "ring's bytes over the network (at most 2 (p - 1) ceil(numel / p) elements per rank)")
