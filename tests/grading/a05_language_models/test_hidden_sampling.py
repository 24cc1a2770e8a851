"""Hidden: the stable cross-entropy (any leading shape, |logits| up to 1e4, its autograd
gradient inside the worker) and the next-token distribution (temperature, top-k, nucleus,
ties and edge parameters)."""
import numpy as np
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from autograder.harness import FLOAT32, assert_close, diagnose, require
from autograder.harness.strategies import hidden_seeds
from oracle import (cross_entropy_gradient, cross_entropy_oracle, cross_entropy_variants, matching_variant,
                    next_token_oracle, next_token_variants, non_finite, nucleus_margin, ranking_margin, tensors)

leading_shapes = st.sampled_from([(), (1,), (5,), (2, 3), (3, 1, 2), (2, 2, 2, 2)])
dtypes = st.sampled_from([torch.float64, torch.float64, torch.float32])


def tolerance(dtype):
    return FLOAT32 if dtype == torch.float32 else None


def targets_for(seed, shape, V):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, V, shape).astype(np.int64))


def explain_cross_entropy(actual, logits, targets):
    if non_finite(actual):
        return "softmax without the max-shift overflows: compute m + log sum_j exp(z_j - m) - z_y with m = max_j z_j"
    return matching_variant(actual, cross_entropy_variants(logits, targets))


# ------------------------------------------------------------------ Task 4.1

@given(seed=hidden_seeds(), leading=leading_shapes, V=st.integers(1, 12), dtype=dtypes, scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_cross_entropy_matches_log_softmax(student, seed, leading, V, dtype, scale):
    logits = tensors(seed, (*leading, V), dtype, scale)
    targets = targets_for(seed + 1, leading, V)
    actual = student.lm_cross_entropy(logits, targets)
    require(isinstance(actual, torch.Tensor) and actual.dim() == 0,
            "lm_cross_entropy should return a 0-d tensor (a scalar that autograd can differentiate)")
    with diagnose(lambda: explain_cross_entropy(actual, logits, targets)):
        assert_close(actual, cross_entropy_oracle(logits, targets),
                     f"lm_cross_entropy of {dtype} logits with any leading shape", tol=tolerance(dtype))


@given(seed=hidden_seeds(), leading=leading_shapes, V=st.integers(2, 12), dtype=dtypes,
       scale=st.sampled_from([1e2, 1e3, 1e4]))
def test_cross_entropy_huge_logits(student, seed, leading, V, dtype, scale):
    """|logits| up to 1e4: exp overflows (float32 at 89, float64 at 710) without the max-shift."""
    logits = (tensors(seed, (*leading, V)).clamp(-1, 1) * scale).to(dtype)
    targets = targets_for(seed + 1, leading, V)
    actual = student.lm_cross_entropy(logits, targets)
    with diagnose(lambda: explain_cross_entropy(actual, logits, targets)):
        require(not non_finite(actual), f"lm_cross_entropy of {dtype} logits at |z| ~ {scale:g} is not finite")
        assert_close(actual, cross_entropy_oracle(logits, targets), f"lm_cross_entropy of {dtype} logits at |z| ~ {scale:g}",
                     tol=tolerance(dtype))


@given(seed=hidden_seeds(), leading=leading_shapes, V=st.integers(2, 10), scale=st.sampled_from([1.0, 1e2, 1e4]))
def test_cross_entropy_gradient_matches_softmax_minus_onehot(student, probe, seed, leading, V, scale):
    """The gradient by autograd through the student's own code, run inside the worker."""
    logits = tensors(seed, (*leading, V)).clamp(-1, 1) * scale
    targets = targets_for(seed + 1, leading, V)
    loss, grads = probe.autograd(student.lm_cross_entropy, (logits, targets), wrt=[0])
    expected = cross_entropy_gradient(logits, targets)

    def explain():
        if grads[0] is None:
            return "the loss is not connected to the logits in autograd's graph (no .item(), no detach of z, no numpy)"
        if non_finite(grads[0]):
            return "the gradient is not finite at large logits: the max-shift keeps exp(z - m) in (0, 1]"
        return None

    with diagnose(explain):
        require(grads[0] is not None, "lm_cross_entropy's result does not depend on the logits through autograd")
        assert_close(grads[0], expected, f"the autograd gradient of lm_cross_entropy w.r.t. logits at |z| ~ {scale:g}")
        assert_close(loss, cross_entropy_oracle(logits, targets), f"lm_cross_entropy at |z| ~ {scale:g}")


# ------------------------------------------------------------------ Task 5.1

def check_next_token(student, logits, what, temperature=1.0, top_k=None, top_p=None):
    expected = next_token_oracle(logits, temperature, top_k, top_p)
    options = {}
    if temperature != 1.0:
        options["temperature"] = temperature
    if top_k is not None:
        options["top_k"] = top_k
    if top_p is not None:
        options["top_p"] = top_p
    actual = student.next_token_probs(logits, **options)
    features = ", ".join(sorted(options)) or "defaults"
    with diagnose(lambda: matching_variant(actual, next_token_variants(logits, temperature, top_k, top_p))):
        assert_close(actual, expected, f"next_token_probs({what}; {features})", tol=tolerance(logits.dtype))


temperatures = st.sampled_from([1.0, 1.0, 0.3, 0.7, 1.5, 3.0])


@st.composite
def sampler_options(draw, V):
    top_k = draw(st.one_of(st.none(), st.integers(1, V + 2)))
    top_p = draw(st.one_of(st.none(), st.floats(0.05, 0.99)))
    return draw(temperatures), top_k, top_p


@given(data=st.data(), seed=hidden_seeds(), B=st.sampled_from([None, 1, 3]), V=st.integers(2, 12), dtype=dtypes)
def test_next_token_matches_the_rules(student, data, seed, B, V, dtype):
    shape = (V,) if B is None else (B, V)
    logits = tensors(seed, shape, dtype, 2.0)
    temperature, top_k, top_p = data.draw(sampler_options(V))
    assume(nucleus_margin(logits, temperature, top_k, top_p) > 1e-6)
    assume(dtype == torch.float64 or top_k is None or ranking_margin(logits, temperature) > 1e-5)
    check_next_token(student, logits, f"{dtype} logits of shape {'(V,)' if B is None else '(B, V)'}",
                     temperature, top_k, top_p)


@given(seed=hidden_seeds(), V=st.integers(3, 10), top_k=st.integers(1, 4), top_p=st.floats(0.2, 0.95))
def test_next_token_matches_top_k_then_nucleus(student, seed, V, top_k, top_p):
    """The nucleus sees the probabilities renormalised after top-k."""
    logits = tensors(seed, (2, V), scale=1.5)
    assume(nucleus_margin(logits, 1.0, top_k, top_p) > 1e-6)
    check_next_token(student, logits, "(B, V) logits, top-k then nucleus", 1.0, top_k, top_p)


def tied_logits(seed, B, V):
    """Small integers: many exact ties, equal logits give exactly equal probabilities."""
    return torch.from_numpy(np.random.default_rng(seed).integers(-2, 3, (B, V)).astype(np.float64))


@given(seed=hidden_seeds(), B=st.integers(1, 4), V=st.integers(2, 9), top_k=st.integers(1, 8),
       temperature=st.sampled_from([1.0, 0.5, 2.0]))
def test_next_token_edge_ties_in_top_k(student, seed, B, V, top_k, temperature):
    logits = tied_logits(seed, B, V)
    check_next_token(student, logits, "rows with tied logits (ties in top-k go to the lower index)", temperature, top_k)


@given(seed=hidden_seeds(), B=st.sampled_from([None, 1, 4]), V=st.integers(2, 9), top_k=st.one_of(st.none(), st.integers(1, 4)),
       top_p=st.sampled_from([None, 0.5, 1.0]))
def test_next_token_edge_temperature_zero(student, seed, B, V, top_k, top_p):
    logits = tied_logits(seed, B or 1, V)
    logits = logits[0] if B is None else logits
    check_next_token(student, logits, "temperature 0 on tied logits (the first maximum wins)", 0.0, top_k, top_p)


@given(seed=hidden_seeds(), V=st.integers(2, 10), extra=st.integers(0, 5), temperature=temperatures)
def test_next_token_edge_top_k_at_least_vocabulary(student, seed, V, extra, temperature):
    check_next_token(student, tensors(seed, (3, V), scale=2.0), "top_k >= V keeps every token", temperature, V + extra)


@given(seed=hidden_seeds(), V=st.integers(2, 10), top_k=st.one_of(st.none(), st.integers(1, 10)), temperature=temperatures)
def test_next_token_edge_top_p_one_and_tiny(student, seed, V, top_k, temperature):
    logits = tensors(seed, (3, V), scale=2.0)
    check_next_token(student, logits, "top_p = 1 keeps every token", temperature, top_k, 1.0)
    check_next_token(student, logits, "a tiny top_p keeps only the most probable token", temperature, top_k, 1e-9)
    check_next_token(student, tied_logits(seed, 3, V), "a tiny top_p on tied rows keeps the lowest index", temperature, top_k, 1e-9)
