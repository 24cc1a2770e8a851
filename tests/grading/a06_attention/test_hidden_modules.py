"""Hidden: MultiHeadAttention, TransformerBlock and DecoderBlock, float32, and the op trace.

Each student module is built inside the worker, loaded with the reference's state_dict
(the spec's submodule names, strict) holding random values (LayerNorm weights and biases
too, so a missing or misplaced LayerNorm shows), and compared with a trusted oracle on the
same weights: nn.MultiheadAttention (through torch.func.functional_call, masks converted to
its opposite convention) for attention, torch functionals for the blocks. Outputs and the
gradients of the inputs and of every parameter are compared (worker-side autograd).
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import oracle as O
from autograder.harness import FLOAT32, Tolerance, assert_close, diagnose, first_true, require
from autograder.harness.strategies import hidden_seeds, random_tensor, sides

MASK_SHAPES = {"none": None, "(Lq, Lk)": lambda B, H, Lq, Lk: (Lq, Lk), "(B, Lq, Lk)": lambda B, H, Lq, Lk: (B, Lq, Lk),
               "(B, H, Lq, Lk)": lambda B, H, Lq, Lk: (B, H, Lq, Lk)}
F32 = Tolerance(rtol=1e-4, atol=1e-5)        # float32 through projections, LayerNorm and GELU vs a float64 oracle


def reference_state(reference, seed: int, kind: str, *args) -> dict:
    """The reference module's state_dict (the spec's names and shapes) filled with random values."""
    module = getattr(reference, kind)(*args)
    return O.randomised({name: t.detach().double() for name, t in module.state_dict().items()}, seed)


def make_mask(seed: int, kind: str, B: int, H: int, Lq: int, Lk: int, keep: float = 0.75):
    return None if kind == "none" else O.random_mask(seed, MASK_SHAPES[kind](B, H, Lq, Lk), keep)


@st.composite
def mha_shapes(draw, cross: bool):
    B, H, dh = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3])), draw(st.integers(1, 3))
    Lq = draw(sides(1, 5))
    Lk = draw(sides(1, 5)) if cross else Lq
    return dict(B=B, H=H, D=H * dh, Lq=Lq, Lk=Lk, seed=draw(hidden_seeds()),
                mask_kind=draw(st.sampled_from(list(MASK_SHAPES))), bias=draw(st.booleans()))


def explain_mha(actual, state, x, memory, mask, is_causal, H) -> str | None:
    def matches(**bug) -> bool:
        return O.close(actual, O.mha_variant(state, "", x, memory, mask, is_causal, H, **bug))

    return first_true([
        ("the heads are strided slices of the projection (view(B, L, dh, H)); head h is the contiguous slice "
         "h*dh:(h+1)*dh (view(B, L, H, dh))", lambda: H > 1 and matches(head_split="strided")),
        ("the heads are joined without moving the head axis back: transpose (B, H, Lq, dh) -> (B, Lq, H, dh) "
         "before reshaping to (B, Lq, D)", lambda: H > 1 and matches(concat_transposed=False)),
        ("a (B, Lq, Lk) mask is broadcast against the heads axis: it is per batch element, the same for every "
         "head (insert the head axis: mask[:, None])", lambda: mask is not None and mask.dim() == 3 and
         matches(mask3d_per_head=True)),
        ("the causal mask is aligned bottom-right (j <= i + Lk - Lq); the spec aligns it top-left: query i sees "
         "keys j <= i, whatever Lk is", lambda: is_causal and O.close(actual, O.mha_variant(
             state, "", x, memory, mask, is_causal, H, causal=O.bottom_right_causal))),
        ("is_causal is ignored", lambda: is_causal and O.close(actual, O.mha_variant(state, "", x, memory, mask, False, H))),
    ])


def check_mha(student, probe, reference, shape, is_causal, cross: bool) -> None:
    B, H, D, Lq, Lk, seed = shape["B"], shape["H"], shape["D"], shape["Lq"], shape["Lk"], shape["seed"]
    state = reference_state(reference, seed, "MultiHeadAttention", D, H, shape["bias"])
    module = O.load_student_module(student.MultiHeadAttention, state, D, H, shape["bias"])
    x = random_tensor(seed + 1, (B, Lq, D))
    memory = random_tensor(seed + 2, (B, Lk, D)) if cross else None
    mask = make_mask(seed + 3, shape["mask_kind"], B, H, Lq, Lk)
    what = (f"MultiHeadAttention({'cross' if cross else 'self'}-attention, "
            f"{'no mask' if mask is None else 'a ' + shape['mask_kind'] + ' mask'}, is_causal={is_causal}, "
            f"bias={shape['bias']}, {'one head' if H == 1 else 'several heads'})")
    inputs = [x, memory] if cross else [x]
    kwargs = {"mask": mask, "is_causal": is_causal}
    oracle = ((lambda p, x, m: O.torch_attention(p, "", x, m, mask, is_causal, H)) if cross
              else (lambda p, x: O.torch_attention(p, "", x, None, mask, is_causal, H)))
    O.check_module(probe, module, oracle, state, inputs, kwargs, what, seed,
                   explain=lambda actual: explain_mha(actual, state, x, memory, mask, is_causal, H))


# ------------------------------------------------------------------ Task 2.1: multi-head attention

@given(shape=mha_shapes(cross=False), is_causal=st.booleans())
def test_mha_self_attention_matches_nn_multihead_attention(student, probe, reference, shape, is_causal):
    check_mha(student, probe, reference, shape, is_causal, cross=False)


@given(shape=mha_shapes(cross=False).map(lambda s: {**s, "B": s["H"], "mask_kind": "(B, Lq, Lk)"}))
def test_mha_self_attention_mask_per_batch_element_when_B_equals_H(student, probe, reference, shape):
    """B == H: a (B, Lq, Lk) mask broadcast against the wrong axis runs, and gives the wrong numbers."""
    check_mha(student, probe, reference, shape, False, cross=False)


@given(shape=mha_shapes(cross=True), is_causal=st.booleans())
def test_mha_cross_attention_matches_nn_multihead_attention(student, probe, reference, shape, is_causal):
    check_mha(student, probe, reference, shape, is_causal, cross=True)


@given(shape=mha_shapes(cross=False))
def test_mha_property_self_attention_is_permutation_equivariant(student, reference, shape):
    """Without a mask, permuting the tokens permutes the outputs (attention has no notion of position)."""
    B, H, D, L, seed = shape["B"], shape["H"], shape["D"], shape["Lq"], shape["seed"]
    module = O.load_student_module(student.MultiHeadAttention, reference_state(reference, seed, "MultiHeadAttention", D, H),
                                   D, H)
    x = random_tensor(seed + 1, (B, L, D))
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(L))
    with diagnose(O.unless_forbidden(
            "the output depends on the token order although no mask was given: each output position must depend "
            "on its own query only (check how the heads are split and joined back, and that no causal mask is "
            "applied by default: is_causal defaults to False)")):
        assert_close(module(x[:, perm]), module(x)[:, perm],
                     "MultiHeadAttention self-attention without mask: output of permuted tokens vs permuted output")


@given(shape=mha_shapes(cross=True))
def test_mha_property_cross_attention_ignores_the_order_of_memory(student, reference, shape):
    """Permuting the memory (and its mask's columns) leaves cross-attention's output unchanged."""
    B, H, D, Lq, Lk, seed = shape["B"], shape["H"], shape["D"], shape["Lq"], shape["Lk"], shape["seed"]
    module = O.load_student_module(student.MultiHeadAttention, reference_state(reference, seed, "MultiHeadAttention", D, H),
                                   D, H)
    x, memory = random_tensor(seed + 1, (B, Lq, D)), random_tensor(seed + 2, (B, Lk, D))
    mask = make_mask(seed + 3, "(B, Lq, Lk)", B, H, Lq, Lk)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(Lk))
    with diagnose(O.unless_forbidden(
            "cross-attention depends on the order of the memory: keys and values come from memory, queries from x, "
            "and only the mask may single out memory positions")):
        assert_close(module(x, memory[:, perm], mask=mask[..., perm]), module(x, memory, mask=mask),
                     "MultiHeadAttention cross-attention: output with permuted memory (and mask columns) vs original")


@given(shape=mha_shapes(cross=True), rows=st.integers(1, 2))
def test_mha_property_fully_masked_query_gives_the_output_bias(student, reference, shape, rows):
    """A query that may attend no key gets zero attention, so out_proj's bias (zeros without bias)."""
    B, H, D, Lq, Lk, seed = shape["B"], shape["H"], shape["D"], shape["Lq"], shape["Lk"], shape["seed"]
    state = reference_state(reference, seed, "MultiHeadAttention", D, H, shape["bias"])
    module = O.load_student_module(student.MultiHeadAttention, state, D, H, shape["bias"])
    x, memory = random_tensor(seed + 1, (B, Lq, D)), random_tensor(seed + 2, (B, Lk, D))
    mask = make_mask(seed + 3, "(B, Lq, Lk)", B, H, Lq, Lk)
    mask[:, :rows] = False
    actual = module(x, memory, mask=mask)
    expected = O.torch_attention(state, "", x, memory, mask, False, H)
    with diagnose(lambda: first_true([
            ("a query with no allowed key gives NaN: attention over no key must give zeros",
             lambda: bool(torch.isnan(actual).any())),
            ("a query with no allowed key should get zero attention (so out_proj's bias alone); yours attends "
             "to something (masking with a finite number such as -1e9 makes the row uniform)",
             lambda: O.close(actual[:, rows:], expected[:, rows:]))])):
        assert_close(actual, expected, "MultiHeadAttention cross-attention with fully masked queries")


# ------------------------------------------------------------------ Task 3: blocks

@st.composite
def block_shapes(draw):
    H, dh = draw(st.sampled_from([1, 2, 4])), draw(st.integers(1, 3))
    return dict(B=draw(st.integers(1, 3)), H=H, D=H * dh, d_ff=draw(st.integers(1, 12)), L=draw(sides(1, 6)),
                Lk=draw(sides(1, 6)), seed=draw(hidden_seeds()))


def explain_block(actual, state, x, H, is_causal) -> str | None:
    return first_true([
        ("the block is post-LN (x = ln(x + sublayer(x))); the spec's block is pre-LN: x + sublayer(ln(x)), "
         "the residual stream itself is never normalised",
         lambda: O.close(actual, O.block_oracle(state, x, H, is_causal, pre_ln=False))),
        ("GELU is the tanh approximation; the spec uses the exact (erf) GELU, F.gelu's default",
         lambda: O.close(actual, O.block_oracle(state, x, H, is_causal, gelu="tanh"))),
        ("is_causal is not passed on to the attention", lambda: O.close(actual, O.block_oracle(state, x, H, not is_causal))),
    ])


@given(shape=block_shapes(), is_causal=st.booleans())
def test_transformer_block_matches_trusted_block(student, probe, reference, shape, is_causal):
    B, H, D, d_ff, L, seed = (shape[k] for k in ("B", "H", "D", "d_ff", "L", "seed"))
    state = reference_state(reference, seed, "TransformerBlock", D, H, d_ff)
    module = O.load_student_module(student.TransformerBlock, state, D, H, d_ff)
    x = random_tensor(seed + 1, (B, L, D))
    O.check_module(probe, module, lambda p, x: O.block_oracle(p, x, H, is_causal), state, [x], {"is_causal": is_causal},
                   f"TransformerBlock, is_causal={is_causal}", seed,
                   explain=lambda actual: explain_block(actual, state, x, H, is_causal))


@given(shape=block_shapes(), cut=st.integers(0, 5))
def test_transformer_block_is_causal(student, reference, shape, cut):
    """Changing tokens after position t leaves the outputs at positions <= t unchanged."""
    B, H, D, d_ff, L, seed = (shape[k] for k in ("B", "H", "D", "d_ff", "L", "seed"))
    module = O.load_student_module(student.TransformerBlock, reference_state(reference, seed, "TransformerBlock", D, H, d_ff),
                                   D, H, d_ff)
    t = min(cut, L - 1)
    x = random_tensor(seed + 1, (B, L, D))
    changed = x.clone()
    changed[:, t + 1:] = random_tensor(seed + 2, changed[:, t + 1:].shape)
    with diagnose(O.unless_forbidden(
            "an earlier position sees a later token: the block's attention must be causal by default "
            "(is_causal=True) with the mask j <= i, and the heads must be joined back position by position")):
        assert_close(module(changed)[:, :t + 1], module(x)[:, :t + 1],
                     "TransformerBlock: outputs at earlier positions after changing only later tokens")


def explain_decoder(actual, state, x, memory, mask, H) -> str | None:
    def matches(**bug) -> bool:
        return O.close(actual, O.decoder_oracle(state, x, memory, mask, H, **bug))

    return first_true([
        ("the decoder's self-attention is not causal: self_attn(ln1(x), is_causal=True)",
         lambda: matches(self_causal=False)),
        ("memory_mask is not passed to the cross-attention", lambda: mask is not None and matches(use_memory_mask=False)),
        ("the block is post-LN; the spec's decoder block is pre-LN: x + sublayer(ln(x))", lambda: matches(pre_ln=False)),
        ("GELU is the tanh approximation; the spec uses the exact (erf) GELU", lambda: matches(gelu="tanh")),
    ])


@given(shape=block_shapes(), mask_kind=st.sampled_from(["none", "(Lq, Lk)", "(B, Lq, Lk)", "(B, H, Lq, Lk)"]))
def test_decoder_block_matches_trusted_block(student, probe, reference, shape, mask_kind):
    B, H, D, d_ff, L, Lk, seed = (shape[k] for k in ("B", "H", "D", "d_ff", "L", "Lk", "seed"))
    state = reference_state(reference, seed, "DecoderBlock", D, H, d_ff)
    module = O.load_student_module(student.DecoderBlock, state, D, H, d_ff)
    x, memory = random_tensor(seed + 1, (B, L, D)), random_tensor(seed + 2, (B, Lk, D))
    mask = make_mask(seed + 3, mask_kind, B, H, L, Lk)
    O.check_module(probe, module, lambda p, x, m: O.decoder_oracle(p, x, m, mask, H), state, [x, memory],
                   {"memory_mask": mask}, f"DecoderBlock with {'no memory_mask' if mask is None else 'a ' + mask_kind + ' memory_mask'}",
                   seed, explain=lambda actual: explain_decoder(actual, state, x, memory, mask, H))


# ------------------------------------------------------------------ float32

@given(seed=hidden_seeds(), is_causal=st.booleans())
def test_float32_attention_stays_float32(student, seed, is_causal):
    q, k, v = (random_tensor(seed + i, (2, 2, 5, 4)).float() for i in range(3))
    actual = student.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    expected = O.attention_oracle(q.double(), k.double(), v.double(), is_causal=is_causal).float()
    assert_close(actual, expected, f"scaled_dot_product_attention on float32, is_causal={is_causal}", tol=F32)


@given(shape=block_shapes(), kind=st.sampled_from(["MultiHeadAttention", "TransformerBlock", "DecoderBlock"]))
def test_float32_modules_stay_float32(student, reference, shape, kind):
    B, H, D, d_ff, L, Lk, seed = (shape[k] for k in ("B", "H", "D", "d_ff", "L", "Lk", "seed"))
    args = (D, H) if kind == "MultiHeadAttention" else (D, H, d_ff)
    state = reference_state(reference, seed, kind, *args)
    module = getattr(student, kind)(*args)                      # float32 parameters, as built
    module.load_state_dict({name: t.float() for name, t in state.items()})
    x, memory = random_tensor(seed + 1, (B, L, D)), random_tensor(seed + 2, (B, Lk, D))
    if kind == "MultiHeadAttention":
        actual, expected = module(x.float(), memory.float()), O.torch_attention(state, "", x, memory, None, False, H)
    elif kind == "TransformerBlock":
        actual, expected = module(x.float()), O.block_oracle(state, x, H)
    else:
        actual, expected = module(x.float(), memory.float()), O.decoder_oracle(state, x, memory, None, H)
    assert_close(actual, expected.float(), f"{kind} with float32 parameters and inputs", tol=F32)


# ------------------------------------------------------------------ no library attention

def require_no_forbidden_ops(probe, ops, what: str) -> None:
    forbidden = probe.forbidden_ops(ops)
    with diagnose("torch's fused attention kernels ran (seen by the operator trace, however they were reached): "
                  "library attention is forbidden in this assignment"):
        require(forbidden == [], f"{what} ran torch's own attention kernels ({', '.join(forbidden)}): "
                                 "write attention with matmul, masking and softmax yourself")


def test_no_library_attention_in_scaled_dot_product_attention(student, probe):
    q, k, v = (random_tensor(2**26 + i, (2, 3, 4, 5)) for i in range(3))
    mask = O.random_mask(2**26 + 3, (4, 4))
    for kwargs, what in [({}, "without mask"), ({"mask": mask, "is_causal": True}, "with a mask, causal")]:
        with O.guarded():
            actual, ops = probe.op_trace(student.scaled_dot_product_attention, q, k, v, **kwargs)
        require_no_forbidden_ops(probe, ops, f"scaled_dot_product_attention {what}")
        assert_close(actual, O.attention_oracle(q, k, v, kwargs.get("mask"), bool(kwargs)),
                     f"scaled_dot_product_attention {what}")


def test_no_library_attention_in_the_modules(student, probe, reference):
    D, H, d_ff, seed = 8, 2, 12, 2**26 + 10
    x, memory = random_tensor(seed + 1, (2, 5, D)), random_tensor(seed + 2, (2, 3, D))
    for kind, args, inputs, oracle in [
            ("MultiHeadAttention", (D, H), (x, memory), lambda s: O.torch_attention(s, "", x, memory, None, False, H)),
            ("TransformerBlock", (D, H, d_ff), (x,), lambda s: O.block_oracle(s, x, H)),
            ("DecoderBlock", (D, H, d_ff), (x, memory), lambda s: O.decoder_oracle(s, x, memory, None, H))]:
        state = reference_state(reference, seed, kind, *args)
        module = O.load_student_module(getattr(student, kind), state, *args)
        with O.guarded():
            actual, ops = probe.op_trace(module, *inputs)
        require_no_forbidden_ops(probe, ops, f"{kind}.forward")
        assert_close(actual, oracle(state), f"{kind}.forward")
