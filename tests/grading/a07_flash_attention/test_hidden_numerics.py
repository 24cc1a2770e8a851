"""Hidden: values of every task against the float64 naive oracle.

Shapes, block sizes (that rarely divide N), causal masks with Nq != Nk, explicit scales,
block-size independence (1e-10 in float64), empty key sets, half precision (lse in
float32), scores near 1e4. Messages name the call and the feature, never the drawn inputs.
"""
import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import BFLOAT16, FLOAT16, FLOAT32, Tolerance, assert_close, diagnose, first_true, require
from autograder.harness.strategies import hidden_seeds
from oracle import (attention_inputs, backward_diagnosis, close, forward_diagnosis, naive_attention, naive_gradients)

sides = st.integers(1, 2)
lengths = st.integers(1, 40)
blocks = st.integers(1, 9)
scales = st.sampled_from([None, None, 0.3, 1.7])
TIGHT = Tolerance(rtol=1e-10, atol=1e-10)


def describe(name, causal, scale, relation=""):
    scaled = "the default scale" if scale is None else "an explicit scale"
    return f"{name}(causal={causal}) with {scaled}{relation}"


def relation(n_q, n_k, block_q, block_k):
    parts = ["Nq > Nk" if n_q > n_k else "Nq < Nk" if n_q < n_k else "Nq = Nk"]
    if n_k % block_k:
        parts.append("Nk not a multiple of block_k")
    if n_q % block_q:
        parts.append("Nq not a multiple of block_q")
    return " (" + ", ".join(parts) + ")"


# ------------------------------------------------------------------ Task 1

@given(seed=hidden_seeds(), lead=st.lists(st.integers(1, 3), max_size=2), n=st.integers(1, 50), block=blocks,
       magnitude=st.sampled_from([1.0, 30.0, 1e4]), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_online_stats_equal_logsumexp_even_near_1e4(student, seed, lead, n, block, magnitude, dtype):
    x = (torch.randn(*lead, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * magnitude
         + (magnitude if magnitude > 1e3 else 0.0)).to(dtype)
    m, l = student.online_softmax_stats(x, block)
    what = f"online_softmax_stats on {dtype} scores of magnitude {magnitude:g}"
    require(isinstance(m, torch.Tensor) and isinstance(l, torch.Tensor), f"{what}: (m, l) must be tensors")
    require(not bool(torch.isnan(m).any() or torch.isnan(l).any()), f"{what}: m or l contains NaN (overflow in exp?)")
    with diagnose(lambda: first_true([
            ("l is not rescaled by exp(m_old - m_new) when a later block raises the running max",
             lambda: close(l, _stats_without_rescale(x.double(), block).to(l.dtype), rtol=1e-5))])):
        assert_close(m, x.amax(-1), f"{what}: m (the max)")
        assert_close(m.double() + torch.log(l.double()), torch.logsumexp(x.double(), -1), f"{what}: m + log(l)",
                     tol=FLOAT32 if dtype == torch.float32 else None, check_dtype=False)


def _stats_without_rescale(x, block):
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for start in range(0, x.shape[-1], block):
        m = torch.maximum(m, x[..., start:start + block].amax(-1))
        l = l + torch.exp(x[..., start:start + block] - m.unsqueeze(-1)).sum(-1)
    return l


def _state(scores, values):
    if scores.shape[-1] == 0:
        return (torch.full(scores.shape[:-1], float("-inf"), dtype=scores.dtype), torch.zeros(scores.shape[:-1], dtype=scores.dtype),
                torch.zeros(*scores.shape[:-1], values.shape[-1], dtype=scores.dtype))
    m = scores.amax(-1)
    p = torch.exp(scores - m.unsqueeze(-1))
    return m, p.sum(-1), (p.unsqueeze(-1) * values).sum(-2)


@given(seed=hidden_seeds(), sizes=st.tuples(st.integers(1, 9), st.integers(0, 9), st.integers(1, 9)),
       dv=st.integers(1, 5), magnitude=st.sampled_from([1.0, 50.0, 1e4]))
def test_merge_is_associative_and_equals_the_full_softmax(student, seed, sizes, dv, magnitude):
    generator = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    scores = torch.randn(2, 3, n, generator=generator, dtype=torch.float64) * magnitude
    values = torch.randn(2, 3, n, dv, generator=generator, dtype=torch.float64)
    cuts = [0, sizes[0], sizes[0] + sizes[1], n]
    a, b, c = (_state(scores[..., cuts[i]:cuts[i + 1]], values[..., cuts[i]:cuts[i + 1], :]) for i in range(3))
    left = student.merge_attention_states(*student.merge_attention_states(*a, *b), *c)
    right = student.merge_attention_states(*a, *student.merge_attention_states(*b, *c))
    what = "merge_attention_states" + (" with an empty key set" if sizes[1] == 0 else "")
    require(not any(bool(torch.isnan(t).any()) for t in (*left, *right)), f"{what}: NaN in the merged state")
    with diagnose("merging must rescale each side by exp(m_side - max(m1, m2)) before adding l and acc"):
        assert_close(left[0], scores.amax(-1), f"{what}: m of three merged sets")
        expected = (torch.softmax(scores, -1).unsqueeze(-1) * values).sum(-2)
        assert_close(left[2] / left[1].unsqueeze(-1), expected, f"{what}: acc / l of ((A, B), C) against the full softmax")
        assert_close(right[2] / right[1].unsqueeze(-1), expected, f"{what}: acc / l of (A, (B, C)) against the full softmax")
        assert_close(tuple(left), tuple(right), f"{what}: ((A, B), C) against (A, (B, C)) (associativity)", tol=TIGHT)


# ------------------------------------------------------------------ Task 2

@given(seed=hidden_seeds(), batch=sides, heads=sides, n_q=lengths, n_k=lengths, d=st.integers(1, 8),
       block_q=blocks, block_k=blocks, causal=st.booleans(), scale=scales)
def test_forward_matches_the_oracle(student, seed, batch, heads, n_q, n_k, d, block_q, block_k, causal, scale):
    q, k, v, _ = attention_inputs(seed, batch, heads, n_q, n_k, d)
    o, lse = student.flash_attention_forward(q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal, scale=scale)
    what = describe("flash_attention_forward", causal, scale, relation(n_q, n_k, block_q, block_k))

    def single_block():
        return student.flash_attention_forward(q, k, v, causal=causal, scale=scale, block_q=block_q,
                                               block_k=max(n_k, 1))[0]

    with diagnose(lambda: forward_diagnosis(q, k, v, o, lse, causal=causal, scale=scale, block_k=block_k,
                                            single_block=single_block)):
        assert_close(o, expected_o, f"{what}: o")
        assert_close(lse, expected_lse, f"{what}: lse (natural-log logsumexp of the scaled, masked scores)")


@given(seed=hidden_seeds(), n_q=st.integers(5, 40), n_k=st.integers(5, 40), d=st.integers(1, 6),
       first=st.tuples(blocks, blocks), second=st.tuples(blocks, blocks), causal=st.booleans())
def test_forward_does_not_depend_on_the_block_sizes(student, seed, n_q, n_k, d, first, second, causal):
    q, k, v, _ = attention_inputs(seed, 2, 1, n_q, n_k, d)
    one = student.flash_attention_forward(q, k, v, causal=causal, block_q=first[0], block_k=first[1])
    two = student.flash_attention_forward(q, k, v, causal=causal, block_q=second[0], block_k=second[1])
    assert_close(tuple(one), tuple(two), f"flash_attention_forward(causal={causal}) with two different block sizes: "
                 "(o, lse) must agree to 1e-10 in float64", tol=TIGHT)


@given(seed=hidden_seeds(), n_k=st.integers(1, 12), extra=st.integers(1, 20), block=st.integers(2, 6))
def test_forward_causal_top_left_with_more_queries_than_keys(student, seed, n_k, extra, block):
    """Top-left: query i sees keys 0..min(i, Nk-1); queries past Nk see every key."""
    q, k, v, _ = attention_inputs(seed, 1, 2, n_k + extra, n_k, 3)
    o, lse = student.flash_attention_forward(q, k, v, causal=True, block_q=block, block_k=block)
    expected_o, expected_lse = naive_attention(q, k, v, causal=True)
    with diagnose(lambda: forward_diagnosis(q, k, v, o, lse, causal=True, scale=None, block_k=block)):
        assert_close(o, expected_o, "flash_attention_forward(causal=True) with Nq > Nk: o (top-left aligned mask)")
        assert_close(lse, expected_lse, "flash_attention_forward(causal=True) with Nq > Nk: lse")


# ------------------------------------------------------------------ Task 3

@given(seed=hidden_seeds(), batch=sides, heads=sides, n_q=st.integers(1, 32), n_k=st.integers(1, 32),
       d=st.integers(1, 6), block_q=blocks, block_k=blocks, causal=st.booleans(), scale=scales)
def test_backward_matches_the_oracle(student, seed, batch, heads, n_q, n_k, d, block_q, block_k, causal, scale):
    q, k, v, do = attention_inputs(seed, batch, heads, n_q, n_k, d)
    o, lse = naive_attention(q, k, v, causal=causal, scale=scale)
    grads = student.flash_attention_backward(q, k, v, o, lse, do, causal=causal, scale=scale, block_q=block_q,
                                             block_k=block_k)
    what = describe("flash_attention_backward", causal, scale, relation(n_q, n_k, block_q, block_k))
    require(isinstance(grads, (tuple, list)) and len(grads) == 3, f"{what} must return (dq, dk, dv)")
    def with_lse(other):
        return student.flash_attention_backward(q, k, v, o, other, do, causal=causal, scale=scale, block_q=block_q,
                                                block_k=block_k)

    with diagnose(lambda: backward_diagnosis(q, k, v, do, grads, causal=causal, scale=scale, with_lse=with_lse)):
        assert_close(tuple(grads), naive_gradients(q, k, v, do, causal=causal, scale=scale), f"{what}: (dq, dk, dv)")


@given(seed=hidden_seeds(), n_q=st.integers(5, 30), n_k=st.integers(5, 30), d=st.integers(1, 5),
       first=st.tuples(blocks, blocks), second=st.tuples(blocks, blocks), causal=st.booleans())
def test_backward_does_not_depend_on_the_block_sizes(student, seed, n_q, n_k, d, first, second, causal):
    q, k, v, do = attention_inputs(seed, 1, 2, n_q, n_k, d)
    o, lse = naive_attention(q, k, v, causal=causal)
    one = student.flash_attention_backward(q, k, v, o, lse, do, causal=causal, block_q=first[0], block_k=first[1])
    two = student.flash_attention_backward(q, k, v, o, lse, do, causal=causal, block_q=second[0], block_k=second[1])
    assert_close(tuple(one), tuple(two), f"flash_attention_backward(causal={causal}) with two different block sizes: "
                 "(dq, dk, dv) must agree to 1e-10 in float64", tol=TIGHT)


# ------------------------------------------------------------------ Task 4

@given(seed=hidden_seeds(), batch=sides, n_q=st.integers(1, 24), n_k=st.integers(1, 24), d=st.integers(1, 5),
       block_q=blocks, block_k=blocks, causal=st.booleans(), scale=scales)
def test_function_gradients_through_autograd(student, probe, seed, batch, n_q, n_k, d, block_q, block_k, causal, scale):
    q, k, v, do = attention_inputs(seed, batch, 2, n_q, n_k, d)
    options = dict(causal=causal, scale=scale, block_q=block_q, block_k=block_k)
    o, grads = probe.autograd(student.flash_attention, (q, k, v), options, wrt=[0, 1, 2], cotangents=do)
    what = describe("flash_attention", causal, scale, relation(n_q, n_k, block_q, block_k))
    assert_close(o, naive_attention(q, k, v, causal=causal, scale=scale)[0], f"{what}: o")
    require(all(g is not None for g in grads), f"{what}: q, k and v must all receive gradients through autograd")
    def explain():
        forward = student.flash_attention_forward(q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
        return (forward_diagnosis(q, k, v, *forward, causal=causal, scale=scale, block_k=block_k)
                or backward_diagnosis(q, k, v, do, grads, causal=causal, scale=scale))

    with diagnose(explain):
        assert_close(tuple(grads), naive_gradients(q, k, v, do, causal=causal, scale=scale),
                     f"{what}: gradients of q, k, v through torch.autograd")


# ------------------------------------------------------------------ edge cases and dtypes

@given(seed=hidden_seeds(), n_q=st.integers(1, 9), d=st.integers(1, 4), causal=st.booleans())
def test_edge_no_keys_gives_zero_output_and_minus_infinity(student, seed, n_q, d, causal):
    """Nk = 0: every query row is fully masked; o = 0, lse = -inf, no NaN; the gradients are zero."""
    q, k, v, do = attention_inputs(seed, 2, 1, n_q, 0, d)
    o, lse = student.flash_attention_forward(q, k, v, causal=causal, block_q=4, block_k=4)
    what = f"flash_attention_forward(causal={causal}) with Nk = 0"
    assert_close(o, torch.zeros_like(q), f"{what}: o must be 0")
    assert_close(lse, torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype), f"{what}: lse must be -inf")
    grads = student.flash_attention_backward(q, k, v, o, lse, do, causal=causal, block_q=4, block_k=4)
    assert_close(tuple(grads), (torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)),
                 f"flash_attention_backward(causal={causal}) with Nk = 0: (dq, dk, dv)")


@given(seed=hidden_seeds(), n_q=st.integers(1, 30), n_k=st.integers(1, 30), d=st.sampled_from([4, 8, 16]),
       block=st.integers(3, 9), causal=st.booleans(), dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32]))
def test_edge_half_and_single_precision(student, seed, n_q, n_k, d, block, causal, dtype):
    """o in the input dtype; lse float32 (for float16/bfloat16 too); accumulation in float32."""
    q, k, v, do = attention_inputs(seed, 1, 2, n_q, n_k, d, dtype=dtype)
    o, lse = student.flash_attention_forward(q, k, v, causal=causal, block_q=block, block_k=block)
    what = f"flash_attention_forward(causal={causal}) on {str(dtype).replace('torch.', '')} inputs"
    require(o.dtype == dtype, f"{what}: o should be {dtype}, got {o.dtype}")
    require(lse.dtype == torch.float32, f"{what}: lse should be float32 (the accumulation dtype), got {lse.dtype}")
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal)
    tol = {torch.float16: FLOAT16, torch.bfloat16: BFLOAT16, torch.float32: FLOAT32}[dtype]
    assert_close(o, expected_o.to(dtype), f"{what}: o", tol=tol)
    assert_close(lse, expected_lse.float(), f"{what}: lse", tol=Tolerance(rtol=1e-5, atol=1e-5))
    grads = student.flash_attention_backward(q, k, v, o, lse, do, causal=causal, block_q=block, block_k=block)
    expected = naive_gradients(q, k, v, do, causal=causal)
    loose = Tolerance(rtol=5e-2, atol=5e-2) if dtype != torch.float32 else Tolerance(rtol=1e-4, atol=1e-5)
    assert_close(tuple(grads), tuple(g.to(dtype) for g in expected), f"flash_attention_backward on {dtype}: (dq, dk, dv)",
                 tol=loose)


@given(seed=hidden_seeds(), n_q=st.integers(1, 20), n_k=st.integers(2, 30), block=st.integers(2, 7),
       causal=st.booleans())
def test_edge_scores_near_1e4_give_no_nan(student, seed, n_q, n_k, block, causal):
    """Scores of size ~1e4 overflow exp unless every exponent is shifted by the running max."""
    q, k, v, do = attention_inputs(seed, 1, 1, n_q, n_k, 4, magnitude=50.0)
    o, lse = student.flash_attention_forward(q, k, v, causal=causal, scale=1.0, block_q=block, block_k=block)
    what = f"flash_attention_forward(causal={causal}) with scores near 1e4"
    require(not bool(torch.isnan(o).any() or torch.isnan(lse).any()), f"{what}: NaN in o or lse (exp overflowed?)")
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal, scale=1.0)
    with diagnose(lambda: forward_diagnosis(q, k, v, o, lse, causal=causal, scale=1.0, block_k=block)):
        assert_close(o, expected_o, f"{what}: o", tol=Tolerance(rtol=1e-8, atol=1e-8))
        assert_close(lse, expected_lse, f"{what}: lse", tol=Tolerance(rtol=1e-10, atol=1e-8))


def test_edge_lse_is_the_natural_log(student):
    q, k, v, _ = attention_inputs(2**25 + 5, 1, 1, 6, 9, 3)
    _, lse = student.flash_attention_forward(q, k, v, block_q=4, block_k=4)
    expected = naive_attention(q, k, v)[1]
    require(not close(lse, expected / math.log(2)), "flash_attention_forward: lse is in base 2 (log2); the spec's "
            "lse is the natural-log logsumexp, so that P = exp(S - lse)")
    assert_close(lse, expected, "flash_attention_forward: lse (natural log)")
