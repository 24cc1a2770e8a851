"""Assignment 6 (Lecture 7): attention and the transformer block.

Notation: B batch, H heads, Lq queries, Lk keys (= values), d the query/key width,
dv the value width, D = d_model, dh = D // H the width of one head. Masks are boolean
with True = "this query may attend this key". Every function keeps the input's dtype
and device; nothing here may call torch's fused attention (sdpa, nn.MultiheadAttention,
nn.Transformer*): you build them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(Lq: int, Lk: int) -> Tensor:
    """Boolean (Lq, Lk): True where query i may attend key j, i.e. j <= i.

    Top-left aligned: query 0 sees key 0 only, whatever Lq and Lk are. With Lq > Lk the
    last queries see every key; with Lq < Lk the last keys are seen by nobody.
    """
    raise NotImplementedError("Task 1.1: causal mask")


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale, over keys, only where allowed) @ v.

        scores[..., i, j] = scale * <q[..., i, :], k[..., j, :]>      scale = 1/sqrt(d) by default
        allowed           = mask & causal_mask(Lq, Lk)   (each only when given)
        weights[..., i,:] = softmax over the allowed j of scores[..., i, :]  (0 elsewhere)
        out               = weights @ v

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) -> (..., Lq, dv). mask: bool,
    broadcastable to (..., Lq, Lk). Stable: the row maximum is subtracted before exp, so
    scores of 1e4 neither overflow nor lose the small terms. A query with no allowed key
    outputs zeros (the softmax over an empty set is taken as all-zero weights).
    """
    raise NotImplementedError("Task 1.2: scaled dot-product attention")


def sinusoidal_positions(seq_len: int, d_model: int) -> Tensor:
    """The fixed positional encoding of Vaswani et al., float32 (seq_len, d_model):

        PE[p, 2i]   = sin(p / 10000 ** (2i / d_model))
        PE[p, 2i+1] = cos(p / 10000 ** (2i / d_model))

    Each pair of columns is a rotation at its own frequency, so PE[p + k] is a fixed
    linear function of PE[p] (relative positions are easy to read off). d_model is even.
    """
    raise NotImplementedError("Task 1.3: sinusoidal positions")


class MultiHeadAttention(nn.Module):
    """H attention heads on contiguous slices of the projected width, then a mixing projection.

        Q = x W_q^T + b_q,  K = m W_k^T + b_k,  V = m W_v^T + b_v      (m = memory, or x itself)
        head h uses columns h*dh : (h+1)*dh of Q, K, V
        out = concat_h attention(Q_h, K_h, V_h) W_o^T + b_o
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        raise NotImplementedError("Task 2.1: multi-head attention")

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """x (B, Lq, D); memory (B, Lk, D) or None (self-attention: memory = x).

        mask (Lq, Lk), (B, Lq, Lk) (the same for every head) or (B, H, Lq, Lk); True = may
        attend. Returns (B, Lq, D).
        """
        raise NotImplementedError("Task 2.1: multi-head attention")


class TransformerBlock(nn.Module):
    """A pre-LayerNorm decoder-only block (GPT-2 style):

        x = x + attn(ln1(x), is_causal)
        x = x + ff_out(gelu(ff_in(ln2(x))))          (exact, erf-based GELU)

    The residual stream x is never normalised itself: each sublayer reads a normalised
    copy and adds its result back.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        raise NotImplementedError("Task 3.1: transformer block")

    def forward(self, x: Tensor, is_causal: bool = True) -> Tensor:
        """x (B, L, D) -> (B, L, D)."""
        raise NotImplementedError("Task 3.1: transformer block")


class DecoderBlock(nn.Module):
    """A pre-LayerNorm seq2seq decoder block: causal self-attention, cross-attention to the
    encoder's output (memory), feed-forward:

        x = x + self_attn(ln1(x), is_causal=True)
        x = x + cross_attn(ln2(x), memory, mask=memory_mask)
        x = x + ff_out(gelu(ff_in(ln3(x))))
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        raise NotImplementedError("Task 3.2: decoder block with cross-attention")

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None = None) -> Tensor:
        """x (B, Lq, D), memory (B, Lk, D), memory_mask as MultiHeadAttention's mask -> (B, Lq, D)."""
        raise NotImplementedError("Task 3.2: decoder block with cross-attention")
