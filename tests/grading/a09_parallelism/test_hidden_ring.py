"""Hidden: the simulated ring all-reduce, exactly (integer-valued data), with its transfer log."""
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import EXACT, assert_close, assert_equal, diagnose, first_true, require
from autograder.harness.strategies import hidden_seeds, shapes
from oracle import integer_tensors, ring_log, ring_result_with


SPLIT_HINT = ("split the flattened tensor with torch.tensor_split(flat, p): chunk sizes differ by one when p does "
              "not divide numel, and some chunks are empty when numel < p")


def explain_ring(student_results, tensors):
    p = len(tensors)
    if student_results is None:                 # the call itself raised
        return SPLIT_HINT if tensors[0].numel() < p or tensors[0].numel() % p != 0 else None

    def matches(variant):
        return all(torch.equal(a, e) for a, e in zip(student_results, variant))

    return first_true([
        ("the all-gather adds the incoming chunk; it must overwrite (the chunk it receives is already the full sum)",
         lambda: matches(ring_result_with(tensors, all_gather_adds=True))),
        ("the reduce-scatter sends the wrong chunk: at step t rank r sends chunk (r - t) % p",
         lambda: matches(ring_result_with(tensors, reduce_scatter_chunk=lambda r, t, p: (r + t) % p))),
        (SPLIT_HINT, lambda: tensors[0].numel() < p or tensors[0].numel() % p != 0),
    ])


def explain_log(log, p):
    expected = ring_log(p)
    return first_true([
        ("the log does not have 2 (p - 1) steps of p transfers each", lambda: len(log) != 2 * (p - 1)
         or any(len(step) != p for step in log)),
        ("the log's reduce-scatter steps are wrong: rank r sends chunk (r - t) % p to rank (r + 1) % p",
         lambda: [list(map(tuple, s)) for s in log[:p - 1]] != expected[:p - 1]),
        ("the log's all-gather steps are wrong: rank r sends chunk (r + 1 - t) % p to rank (r + 1) % p",
         lambda: [list(map(tuple, s)) for s in log[p - 1:]] != expected[p - 1:]),
    ])


@given(seed=hidden_seeds(), p=st.integers(1, 8), shape=shapes(min_dims=0, max_dims=3, max_side=6),
       dtype=st.sampled_from([torch.float64, torch.float32, torch.int64]))
def test_ring_allreduce_equals_the_sum_exactly(student, seed, p, shape, dtype):
    tensors = integer_tensors(seed, p, shape, dtype)
    with diagnose(lambda: explain_ring(None, tensors)):
        results, log = student.ring_allreduce(tensors)
    total = torch.stack(tensors).sum(0)
    require(isinstance(results, (list, tuple)) and len(results) == p,
            "ring_allreduce: expected a list of one result tensor per rank")
    with diagnose(lambda: explain_ring(results, tensors)):
        for r, result in enumerate(results):
            assert_close(result, total, f"ring_allreduce on a {dtype} tensor: rank {r}'s result against the sum", tol=EXACT)


@given(p=st.integers(1, 9), numel=st.integers(1, 12))
def test_ring_allreduce_log_exactly(student, p, numel):
    tensors = [torch.full((numel,), float(r + 1)) for r in range(p)]
    _, log = student.ring_allreduce(tensors)
    require(isinstance(log, (list, tuple)), "ring_allreduce: the log must be a list of steps")
    with diagnose(lambda: explain_log(log, p)):
        assert_equal([[tuple(move) for move in step] for step in log], ring_log(p),
                     "ring_allreduce: the transfer log (src, dst, chunk) of every step")


@given(seed=hidden_seeds(), p=st.integers(3, 8), numel=st.integers(0, 7))
def test_ring_allreduce_with_empty_chunks(student, seed, p, numel):
    """numel < p: torch.tensor_split leaves some chunks empty; the ring still sums every element."""
    numel = min(numel, p - 1)
    tensors = integer_tensors(seed, p, (numel,))
    results = None
    with diagnose(lambda: explain_ring(results, tensors)):
        results, log = student.ring_allreduce(tensors)
        for r, result in enumerate(results):
            assert_close(result, torch.stack(tensors).sum(0), f"ring_allreduce with numel < p: rank {r}", tol=EXACT)
        assert_equal([[tuple(m) for m in step] for step in log], ring_log(p), "ring_allreduce with numel < p: the log")


@given(seed=hidden_seeds(), p=st.integers(2, 6))
def test_ring_allreduce_keeps_the_shape(student, seed, p):
    tensors = integer_tensors(seed, p, (2, 3, 2))
    results, _ = student.ring_allreduce(tensors)
    for r, result in enumerate(results):
        require(tuple(result.shape) == (2, 3, 2), f"ring_allreduce: rank {r}'s result must keep the input's shape")
