"""Public tests of a06_attention: your functions and modules against torch's own attention.

The oracles (oracle.py, shipped with these tests) are torch's F.scaled_dot_product_attention
and nn.MultiheadAttention with your weights copied in: the grader may use them, your code may
not. Modules are built in float64 and loaded with a state_dict under the spec's submodule
names; outputs and every gradient (inputs and parameters) are compared. The hidden tests
check the same things on more shapes, masks, scales, dtypes and edge cases (fully masked
rows, scores near 1e4, Lq != Lk), and properties (causality, permutation equivariance).
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import oracle as O
from autograder.harness import Tolerance, assert_close, assert_equal, require
from autograder.harness.strategies import public_seeds, random_tensor


# ------------------------------------------------------------------ Task 1.1: causal mask

@pytest.mark.parametrize("Lq, Lk", [(3, 3), (2, 5), (5, 2)])
def test_causal_mask_is_top_left_aligned(student, Lq, Lk):
    """Query i may attend key j exactly when j <= i, also when Lq != Lk."""
    assert_equal(student.causal_mask(Lq, Lk), O.top_left_causal(Lq, Lk), f"causal_mask({Lq}, {Lk})")


# ------------------------------------------------------------------ Task 1.2: attention

@given(seed=public_seeds(), Lq=st.integers(1, 5), Lk=st.integers(1, 5), d=st.integers(1, 4),
       mask_kind=st.sampled_from(["none", "(Lq, Lk)", "(B, H, Lq, Lk)"]), is_causal=st.booleans(),
       scale=st.sampled_from([None, 0.5]))
def test_attention_matches_torch(student, seed, Lq, Lk, d, mask_kind, is_causal, scale):
    q, k, v = (random_tensor(seed + i, (2, 3, L, d)) for i, L in enumerate((Lq, Lk, Lk)))
    mask = {"none": None, "(Lq, Lk)": O.random_mask(seed + 3, (Lq, Lk)),
            "(B, H, Lq, Lk)": O.random_mask(seed + 3, (2, 3, Lq, Lk))}[mask_kind]
    expected = O.attention_oracle(q, k, v, mask, is_causal, scale)
    actual = student.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, scale=scale)
    assert_close(actual, expected, f"scaled_dot_product_attention(mask {mask_kind}, is_causal={is_causal}, "
                                   f"scale={scale}) (rows with no allowed key: zeros)")


def test_attention_scale_zero_averages_the_values(student):
    q, k, v = random_tensor(1, (4, 3)), random_tensor(2, (6, 3)), random_tensor(3, (6, 2))
    actual = student.scaled_dot_product_attention(q, k, v, scale=0.0)
    assert_close(actual, v.mean(dim=0).expand(4, 2), "scaled_dot_product_attention(scale=0.0): every row is the mean of v")


def test_attention_is_stable_at_large_scores(student):
    """Scores near 1e4: exp overflows unless the row maximum is subtracted first."""
    q, k, v = 100 * random_tensor(4, (2, 5, 4)), 50 * random_tensor(5, (2, 6, 4)), random_tensor(6, (2, 6, 3))
    actual = student.scaled_dot_product_attention(q, k, v, scale=1.0)
    require(bool(torch.isfinite(actual).all()), "scaled_dot_product_attention with scores near 1e4 returned "
                                                "inf or NaN: subtract the row maximum before exp")
    assert_close(actual, O.attention_oracle(q, k, v, scale=1.0), "scaled_dot_product_attention with scores near 1e4",
                 tol=Tolerance(rtol=1e-8, atol=1e-8))


# ------------------------------------------------------------------ Task 1.3: positions

@pytest.mark.parametrize("seq_len, d_model", [(1, 2), (7, 6), (50, 16)])
def test_sinusoidal_positions_interleave_sin_and_cos(student, seq_len, d_model):
    actual = student.sinusoidal_positions(seq_len, d_model)
    assert_close(actual, O.positions_oracle(seq_len, d_model), f"sinusoidal_positions({seq_len}, {d_model})",
                 tol=Tolerance(rtol=0.0, atol=1e-3))


# ------------------------------------------------------------------ Task 2.1: multi-head attention

@given(seed=public_seeds(), H=st.sampled_from([1, 2, 4]), L=st.integers(1, 5), is_causal=st.booleans())
def test_multi_head_self_attention_matches_torch(student, probe, seed, H, L, is_causal):
    D = 8
    state = O.mha_state(seed, D)
    module = O.load_student_module(student.MultiHeadAttention, state, D, H)
    x = random_tensor(seed + 1, (2, L, D))
    O.check_module(probe, module, lambda p, x: O.torch_attention(p, "", x, None, None, is_causal, H), state, [x],
                 {"is_causal": is_causal}, f"MultiHeadAttention(8, {H}) self-attention, is_causal={is_causal}", seed)


@given(seed=public_seeds(), Lq=st.integers(1, 4), Lk=st.integers(1, 6))
def test_multi_head_cross_attention_matches_torch(student, probe, seed, Lq, Lk):
    D, H = 6, 3
    state = O.mha_state(seed, D)
    module = O.load_student_module(student.MultiHeadAttention, state, D, H)
    x, memory = random_tensor(seed + 1, (2, Lq, D)), random_tensor(seed + 2, (2, Lk, D))
    mask = O.random_mask(seed + 3, (2, Lq, Lk))
    O.check_module(probe, module, lambda p, x, m: O.torch_attention(p, "", x, m, mask, False, H), state, [x, memory],
                 {"mask": mask}, "MultiHeadAttention(6, 3) cross-attention with a (B, Lq, Lk) mask", seed)


# ------------------------------------------------------------------ Task 3: blocks

@pytest.mark.parametrize("is_causal", [True, False])
def test_transformer_block_matches_pre_ln(student, probe, is_causal):
    seed, D, H, d_ff = 11, 8, 2, 16
    state = O.block_state(seed, D, d_ff)
    module = O.load_student_module(student.TransformerBlock, state, D, H, d_ff)
    x = random_tensor(seed + 1, (2, 5, D))
    O.check_module(probe, module, lambda p, x: O.block_oracle(p, x, H, is_causal), state, [x], {"is_causal": is_causal},
                 f"TransformerBlock(8, 2, 16), is_causal={is_causal}", seed)


@pytest.mark.parametrize("with_mask", [False, True])
def test_decoder_block_matches_pre_ln(student, probe, with_mask):
    seed, D, H, d_ff = 21, 8, 2, 12
    state = O.block_state(seed, D, d_ff, decoder=True)
    module = O.load_student_module(student.DecoderBlock, state, D, H, d_ff)
    x, memory = random_tensor(seed + 1, (2, 4, D)), random_tensor(seed + 2, (2, 6, D))
    mask = O.random_mask(seed + 3, (2, 4, 6)) if with_mask else None
    O.check_module(probe, module, lambda p, x, m: O.decoder_oracle(p, x, m, mask, H), state, [x, memory],
                 {"memory_mask": mask}, f"DecoderBlock(8, 2, 12){' with a memory_mask' if with_mask else ''}", seed)
