"""Trusted oracles for a07_flash_attention: naive float64 attention and the IO closed form.

The naive oracle materialises the whole score matrix (that is the point of an oracle: it is
obviously right) and differentiates it with torch autograd in float64.
"""
from __future__ import annotations

import math

import torch

NEG_INF = float("-inf")


def visible_keys(n_q: int, n_k: int, causal: bool, *, bottom_right: bool = False) -> torch.Tensor:
    """(Nq, Nk) bool: key j visible to query i (top-left causal: j <= i; bottom-right: j <= i + Nk - Nq)."""
    rows = torch.arange(n_q).unsqueeze(1)
    cols = torch.arange(n_k).unsqueeze(0)
    if not causal:
        return torch.ones(n_q, n_k, dtype=torch.bool)
    return cols <= rows + (n_k - n_q if bottom_right else 0)


def naive_attention(q, k, v, *, causal=False, scale=None, bottom_right=False, log_base=math.e,
                    dtype=torch.float64):
    """(o, lse) of softmax(scale q k^T) v in `dtype`; rows that see no key give o = 0, lse = -inf."""
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale                                   # (B, H, Nq, Nk)
    s = s.masked_fill(~visible_keys(q.shape[2], k.shape[2], causal, bottom_right=bottom_right), NEG_INF)
    lse = torch.logsumexp(s, dim=-1) if k.shape[2] > 0 else torch.full(s.shape[:-1], NEG_INF, dtype=dtype)
    p = torch.exp(s - torch.where(lse == NEG_INF, 0.0, lse).unsqueeze(-1))   # (B, H, Nq, Nk)
    o = p @ v
    return o, lse / math.log(log_base)


def naive_gradients(q, k, v, do, *, causal=False, scale=None, bottom_right=False):
    """(dq, dk, dv) of <naive o, do> by float64 autograd."""
    inputs = [t.detach().to(torch.float64).requires_grad_(True) for t in (q, k, v)]
    o, _ = naive_attention(*inputs, causal=causal, scale=scale, bottom_right=bottom_right)
    if o.numel() == 0:
        return tuple(torch.zeros_like(t) for t in inputs)
    grads = torch.autograd.grad(o, inputs, do.to(torch.float64), allow_unused=True)
    return tuple(torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, inputs))


def hbm_accesses(N: int, d: int, M: int, algorithm: str) -> int:
    """The spec's closed forms (Dao et al. 2022, Theorem 2's counting made exact)."""
    if algorithm == "standard":
        return 4 * N * N + 4 * N * d
    block_c = -(-M // (4 * d))
    return 3 * N * d + 2 * N + (-(-N // block_c)) * N * (3 * d + 4)


def tiling_bound(batch: int, heads: int, n_q: int, n_k: int, d: int, block_q: int, block_k: int) -> int:
    """The most elements any op output may have: inputs/outputs, or one score tile per (batch, head)."""
    return max(batch * heads * max(n_q, n_k) * d, batch * heads * block_q * block_k)


def oversized_ops(ops, bound: int):
    """The first op record whose largest output exceeds `bound` elements, or None."""
    for op in ops:
        for shape in op.shapes:
            if math.prod(shape) > bound:
                return op, shape
    return None


def describe_oversized(op, shape, n_q: int, n_k: int) -> str:
    """'aten::mm produced (2, 4, 256, 256): a full score matrix' (what the shape means, not the inputs)."""
    dims = tuple(shape)
    if len(dims) >= 2 and dims[-2:] in ((n_q, n_k), (n_k, n_q)):
        meaning = "a full score matrix"
    elif len(dims) >= 2 and (dims[-1] in (n_k,) or dims[-2] in (n_k,)) and n_k not in dims[:-2]:
        meaning = "a query tile against all keys (or a key tile against all queries)"
    elif len(dims) >= 2 and (dims[-1] == n_q or dims[-2] == n_q):
        meaning = "a key tile against all queries"
    else:
        meaning = "larger than the inputs or one tile of scores per (batch, head)"
    return f"{op.name} produced {dims}: {meaning}"
