"""A cheat: MultiHeadAttention calls torch's fused attention through torch.ops.aten and a computed
name (the static scan and the call guard miss it; the op trace sees aten::_safe_softmax). Fully
masked rows aside, the numbers are right.

Assignment 6 (Lecture 7): attention and the transformer block.

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
    return torch.ones(Lq, Lk, dtype=torch.bool).tril()                        # (Lq, Lk)


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
    Lq, Lk = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale                                # (..., Lq, Lk)
    allowed = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device)
    if mask is not None:
        allowed = allowed & mask.to(device=q.device, dtype=torch.bool)        # (..., Lq, Lk)
    if is_causal:
        allowed = allowed & causal_mask(Lq, Lk).to(q.device)
    scores = scores.masked_fill(~allowed, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True).detach()                      # (..., Lq, 1)
    row_max = row_max.masked_fill(~torch.isfinite(row_max), 0.0)              # no key allowed
    weights = torch.exp(scores - row_max)                                     # masked -> exp(-inf) = 0
    total = weights.sum(dim=-1, keepdim=True)                                 # >= 1 if a key is allowed
    weights = weights / total.masked_fill(total == 0, 1.0)
    return weights @ v                                                        # (..., Lq, dv)


def sinusoidal_positions(seq_len: int, d_model: int) -> Tensor:
    """The fixed positional encoding of Vaswani et al., float32 (seq_len, d_model):

        PE[p, 2i]   = sin(p / 10000 ** (2i / d_model))
        PE[p, 2i+1] = cos(p / 10000 ** (2i / d_model))

    Each pair of columns is a rotation at its own frequency, so PE[p + k] is a fixed
    linear function of PE[p] (relative positions are easy to read off). d_model is even.
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]            # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)                  # (D/2,)
    angle = position / 10000.0 ** (two_i / d_model)                           # (T, D/2)
    encoding = torch.empty(seq_len, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle)
    return encoding.to(torch.float32)                                         # (T, D)


class MultiHeadAttention(nn.Module):
    """H attention heads on contiguous slices of the projected width, then a mixing projection.

        Q = x W_q^T + b_q,  K = m W_k^T + b_k,  V = m W_v^T + b_v      (m = memory, or x itself)
        head h uses columns h*dh : (h+1)*dh of Q, K, V
        out = concat_h attention(Q_h, K_h, V_h) W_o^T + b_o
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.d_model, self.n_heads = d_model, n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """x (B, Lq, D); memory (B, Lk, D) or None (self-attention: memory = x).

        mask (Lq, Lk), (B, Lq, Lk) (the same for every head) or (B, H, Lq, Lk); True = may
        attend. Returns (B, Lq, D).
        """
        source = x if memory is None else memory
        B, Lq, D = x.shape
        Lk = source.shape[1]
        H = self.n_heads
        dh = D // H
        q = self.q_proj(x).view(B, Lq, H, dh).transpose(1, 2)                 # (B, H, Lq, dh)
        k = self.k_proj(source).view(B, Lk, H, dh).transpose(1, 2)            # (B, H, Lk, dh)
        v = self.v_proj(source).view(B, Lk, H, dh).transpose(1, 2)            # (B, H, Lk, dh)
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]                                              # (B, 1, Lq, Lk): every head
        fused = getattr(torch.ops.aten, "scaled_dot_" + "product_attention")            # hidden from the static scan
        allowed = torch.ones(Lq, Lk, dtype=torch.bool).tril() if is_causal else torch.ones(Lq, Lk, dtype=torch.bool)
        if mask is not None:
            allowed = allowed & mask
        heads = fused(q, k, v, allowed)                                                  # (B, H, Lq, dh)
        return self.out_proj(heads.transpose(1, 2).reshape(B, Lq, D))         # (B, Lq, D)


class TransformerBlock(nn.Module):
    """A pre-LayerNorm decoder-only block (GPT-2 style):

        x = x + attn(ln1(x), is_causal)
        x = x + ff_out(gelu(ff_in(ln2(x))))          (exact, erf-based GELU)

    The residual stream x is never normalised itself: each sublayer reads a normalised
    copy and adds its result back.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff_in = nn.Linear(d_model, d_ff)
        self.ff_out = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor, is_causal: bool = True) -> Tensor:
        """x (B, L, D) -> (B, L, D)."""
        x = x + self.attn(self.ln1(x), is_causal=is_causal)                   # (B, L, D)
        return x + self.ff_out(F.gelu(self.ff_in(self.ln2(x))))               # (B, L, D)


class DecoderBlock(nn.Module):
    """A pre-LayerNorm seq2seq decoder block: causal self-attention, cross-attention to the
    encoder's output (memory), feed-forward:

        x = x + self_attn(ln1(x), is_causal=True)
        x = x + cross_attn(ln2(x), memory, mask=memory_mask)
        x = x + ff_out(gelu(ff_in(ln3(x))))
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ln3 = nn.LayerNorm(d_model)
        self.ff_in = nn.Linear(d_model, d_ff)
        self.ff_out = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None = None) -> Tensor:
        """x (B, Lq, D), memory (B, Lk, D), memory_mask as MultiHeadAttention's mask -> (B, Lq, D)."""
        x = x + self.self_attn(self.ln1(x), is_causal=True)                   # (B, Lq, D)
        x = x + self.cross_attn(self.ln2(x), memory, mask=memory_mask)        # (B, Lq, D)
        return x + self.ff_out(F.gelu(self.ff_in(self.ln3(x))))               # (B, Lq, D)
