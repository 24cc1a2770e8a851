"""Hidden: the tiling rule, what the autograd Function saves, and no forbidden kernels.

The op trace records every aten op your code dispatches, with its output shapes. Rule: no
output larger than max(B*H*max(Nq, Nk)*d, B*H*block_q*block_k) elements. The inputs are
drawn with d < min(block_q, block_k) and Nq, Nk >= 4*max(block_q, block_k), so a full
score matrix, or a query tile against all keys, breaks the rule while tiled code never
does. The Function's forward may save O(N d) tensors (q, k, v, o, lse), never P or S.
"""
import math

from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import assert_close, require
from autograder.harness.strategies import hidden_seeds
from oracle import attention_inputs, describe_oversized, naive_attention, naive_gradients, oversized_ops, tiling_bound


@st.composite
def tiled_problems(draw):
    """(seed, B, H, Nq, Nk, d, block_q, block_k) with d <= min(block) / 2 and N >= 4 * max(block)."""
    block_q, block_k = draw(st.integers(6, 11)), draw(st.integers(6, 11))
    largest = max(block_q, block_k)
    n_q = draw(st.integers(4 * largest, 4 * largest + 9))
    n_k = draw(st.integers(4 * largest, 4 * largest + 9).filter(lambda n: n != n_q))
    d = draw(st.integers(1, min(block_q, block_k) // 2))
    return draw(hidden_seeds()), draw(st.integers(1, 2)), draw(st.integers(1, 2)), n_q, n_k, d, block_q, block_k


def check_tiled(probe, ops, name, problem):
    _, batch, heads, n_q, n_k, d, block_q, block_k = problem
    found = oversized_ops(ops, tiling_bound(batch, heads, n_q, n_k, d, block_q, block_k))
    require(found is None, f"{name} is not tiled: " + (describe_oversized(*found, n_q, n_k, block_q, block_k) if found else "")
            + "; at most one block_q x block_k tile of scores per (batch, head) may exist at a time")
    forbidden = probe.forbidden_ops(ops)
    require(forbidden == [], f"{name} ran forbidden attention kernels: {', '.join(forbidden)}; "
            "compute the attention yourself, tile by tile")


@given(problem=tiled_problems(), causal=st.booleans())
def test_forward_is_tiled_and_uses_no_attention_kernel(student, probe, problem, causal):
    seed, batch, heads, n_q, n_k, d, block_q, block_k = problem
    q, k, v, _ = attention_inputs(seed, batch, heads, n_q, n_k, d)
    (o, lse), ops = probe.op_trace(student.flash_attention_forward, q, k, v, causal=causal, block_q=block_q,
                                   block_k=block_k)
    check_tiled(probe, ops, f"flash_attention_forward(causal={causal})", problem)
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal)
    assert_close((o, lse), (expected_o, expected_lse), f"flash_attention_forward(causal={causal}), traced: (o, lse)")


@given(problem=tiled_problems(), causal=st.booleans())
def test_backward_is_tiled_and_uses_no_attention_kernel(student, probe, problem, causal):
    seed, batch, heads, n_q, n_k, d, block_q, block_k = problem
    q, k, v, do = attention_inputs(seed, batch, heads, n_q, n_k, d)
    o, lse = naive_attention(q, k, v, causal=causal)
    grads, ops = probe.op_trace(student.flash_attention_backward, q, k, v, o, lse, do, causal=causal,
                                block_q=block_q, block_k=block_k)
    check_tiled(probe, ops, f"flash_attention_backward(causal={causal})", problem)
    assert_close(tuple(grads), naive_gradients(q, k, v, do, causal=causal),
                 f"flash_attention_backward(causal={causal}), traced: (dq, dk, dv)")


@given(problem=tiled_problems(), causal=st.booleans())
def test_function_is_tiled_and_saves_no_score_matrix(student, probe, problem, causal):
    """Forward and backward of the autograd Function under the op trace, plus what it saves for backward."""
    seed, batch, heads, n_q, n_k, d, block_q, block_k = problem
    q, k, v, do = attention_inputs(seed, batch, heads, n_q, n_k, d)
    options = dict(causal=causal, block_q=block_q, block_k=block_k)
    o, grads, ops, saved = probe.autograd_trace(student.flash_attention, (q, k, v), options, wrt=[0, 1, 2],
                                                cotangents=do)
    name = f"flash_attention(causal={causal}) forward and backward through autograd"
    check_tiled(probe, ops, name, problem)
    largest = batch * heads * max(n_q, n_k) * d
    for shape in saved:
        require(math.prod(shape) <= largest, (
            f"flash_attention's forward saved a tensor of shape {tuple(shape)} for backward: "
            + ("a full score (or probability) matrix; " if tuple(shape[-2:]) in ((n_q, n_k), (n_k, n_q)) else "")
            + "save q, k, v, o and lse only, and recompute each tile of P from lse in the backward"))
    total = sum(math.prod(shape) for shape in saved)
    require(total <= 5 * largest + 2 * batch * heads * max(n_q, n_k), (
        f"flash_attention's forward saved {len(saved)} tensors for backward holding as many numbers as the whole "
        "probability matrix P; save q, k, v, o and lse only, and recompute P tile by tile from lse"))
    assert_close(o, naive_attention(q, k, v, causal=causal)[0], f"{name}: o")
    require(all(g is not None for g in grads), f"{name}: q, k and v must all receive gradients")
    assert_close(tuple(grads), naive_gradients(q, k, v, do, causal=causal), f"{name}: gradients of q, k, v")


def test_function_holds_no_score_matrix_in_memory(student, probe):
    """The rule is about memory: holding every tile of P (a Python list, ctx attributes) is as bad as
    one N x N tensor. The worker's peak memory may not grow by half the scores of one head."""
    n, d, block = 4096, 8, 128
    q, k, v, _ = attention_inputs(2**27 + 1, 1, 1, n, n, d)
    o, stats = probe.peak_memory(student.flash_attention, q, k, v, False, None, block, block)
    scores_bytes = n * n * q.element_size()
    growth = stats.get("rss_growth_bytes") if isinstance(stats, dict) else None
    require(isinstance(growth, int), "flash_attention: the peak-memory probe returned no measurement")
    require(growth < scores_bytes // 2, (
        f"flash_attention(Nq = Nk = {n}) raised the peak memory by {growth / 2**20:.0f} MiB, while the scores of one "
        f"head take {scores_bytes / 2**20:.0f} MiB: it holds the whole score (or probability) matrix by some route "
        "(a list of tiles, saved tiles); keep one tile at a time and recompute P in the backward"))
    rows = 64
    expected = naive_attention(q[:, :, :rows], k, v)[0]
    assert_close(o[:, :, :rows], expected, f"flash_attention(Nq = Nk = {n}): o (first {rows} rows)")
