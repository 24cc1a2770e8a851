"""A correct submission in another style: einsum instead of matmul, softmax through
logsumexp, heads as an explicit axis of the projection weights, the exp-log form of the
frequencies in float32."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(Lq, Lk):
    rows = torch.arange(Lq)[:, None]
    cols = torch.arange(Lk)[None, :]
    return cols <= rows


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False, scale=None):
    d = q.shape[-1]
    s = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = torch.einsum("...id,...jd->...ij", q, k) * s
    keep = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device)
    if is_causal:
        keep = causal_mask(q.shape[-2], k.shape[-2]).to(q.device)
    if mask is not None:
        keep = torch.logical_and(keep, mask.to(q.device))
    keep = keep.expand(scores.shape)
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    scores = torch.where(keep, scores, neg_inf)
    any_key = keep.any(dim=-1, keepdim=True)
    scores = torch.where(any_key, scores, torch.zeros_like(scores))      # empty rows: harmless finite scores
    log_norm = torch.logsumexp(scores, dim=-1, keepdim=True)             # stable by construction
    weights = torch.exp(scores - log_norm) * any_key                     # empty rows: zero weights
    return torch.einsum("...ij,...jd->...id", weights, v)


def sinusoidal_positions(seq_len, d_model):
    position = torch.arange(seq_len, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    angles = position * inv_freq
    return torch.stack((torch.sin(angles), torch.cos(angles)), dim=2).flatten(1)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, t):
        B, L, D = t.shape
        return t.reshape(B, L, self.n_heads, D // self.n_heads).permute(0, 2, 1, 3)

    def forward(self, x, memory=None, mask=None, is_causal=False):
        kv = memory if memory is not None else x
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(kv)), self._heads(self.v_proj(kv))
        if mask is not None and mask.ndim == 3:
            mask = mask.unsqueeze(1)
        out = scaled_dot_product_attention(q, k, v, mask, is_causal)
        B, H, L, dh = out.shape
        return self.out_proj(out.permute(0, 2, 1, 3).reshape(B, L, H * dh))


class TransformerBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ff_in, self.ff_out = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x, is_causal=True):
        h = x + self.attn(self.ln1(x), is_causal=is_causal)
        return h + self.ff_out(F.gelu(self.ff_in(self.ln2(h))))


class DecoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff_in, self.ff_out = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x, memory, memory_mask=None):
        x = x + self.self_attn(self.ln1(x), is_causal=True)
        x = x + self.cross_attn(self.ln2(x), memory=memory, mask=memory_mask)
        return x + self.ff_out(0.5 * self.ff_in(self.ln3(x)) * (1.0 + torch.erf(self.ff_in(self.ln3(x)) / math.sqrt(2.0))))
