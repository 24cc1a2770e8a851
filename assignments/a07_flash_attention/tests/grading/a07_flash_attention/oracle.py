"""Trusted oracles for a07_flash_attention: naive float64 attention, buggy variants for diagnoses,
and the tiling rule.

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


def describe_oversized(op, shape, n_q: int, n_k: int, block_q: int, block_k: int) -> str:
    """'aten::mm produced (2, 4, 256, 256): a full score matrix' (what the shape means, not the inputs)."""
    dims = tuple(shape)
    last = dims[-2:] if len(dims) >= 2 else dims
    if last in ((n_q, n_k), (n_k, n_q)):
        meaning = "a full score matrix (or a full mask or probability matrix)"
    elif len(last) == 2 and last[0] <= block_q and last[1] > block_k:
        meaning = f"a query tile against more than block_k = {block_k} keys at once"
    elif len(last) == 2 and last[1] <= block_q and last[0] > block_k:
        meaning = f"more than block_k = {block_k} keys against a query tile at once"
    elif len(last) == 2 and last[0] > block_q:
        meaning = f"more than block_q = {block_q} queries at once"
    else:
        meaning = "larger than the inputs or one tile of scores per (batch, head)"
    return f"{op.name} produced {dims}: {meaning}"


def attention_inputs(seed: int, batch: int, heads: int, n_q: int, n_k: int, d: int, dtype=torch.float64,
                     magnitude: float = 1.0):
    """q, k, v, do from one seed: (B, H, Nq, d), (B, H, Nk, d) twice, (B, H, Nq, d)."""
    generator = torch.Generator().manual_seed(seed)

    def draw(rows):
        return (torch.randn(batch, heads, rows, d, generator=generator, dtype=torch.float64) * magnitude).to(dtype)

    return draw(n_q), draw(n_k), draw(n_k), draw(n_q)


def close(actual, expected, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """Same shape and values (infinities equal), for diagnoses only."""
    import torch as _torch

    if isinstance(expected, (tuple, list)):
        return isinstance(actual, (tuple, list)) and len(actual) == len(expected) and all(
            close(a, e, rtol, atol) for a, e in zip(actual, expected))
    if not isinstance(actual, _torch.Tensor) or tuple(actual.shape) != tuple(expected.shape):
        return False
    return bool(_torch.allclose(actual.double(), expected.double(), rtol=rtol, atol=atol))


def tiled_without_rescale(q, k, v, *, causal, scale, block_k, rescale_l=True):
    """The forward's o when acc (and l unless rescale_l) is never multiplied by exp(m_old - m_new)."""
    q, k, v = q.double(), k.double(), v.double()
    n_q, n_k, d = q.shape[2], k.shape[2], q.shape[3]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    visible = visible_keys(n_q, n_k, causal)
    m = torch.full(q.shape[:-1], NEG_INF, dtype=torch.float64)
    l = torch.zeros(q.shape[:-1], dtype=torch.float64)
    acc = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=torch.float64)
    for start in range(0, n_k, block_k):
        s = (q @ k[:, :, start:start + block_k].transpose(-2, -1)) * scale
        s = s.masked_fill(~visible[:, start:start + block_k], NEG_INF)
        m_new = torch.maximum(m, s.amax(-1))
        shift = torch.where(m_new == NEG_INF, 0.0, m_new)
        p = torch.exp(s - shift.unsqueeze(-1))
        alpha = torch.exp(m - shift)
        l = (alpha * l if rescale_l else l) + p.sum(-1)
        acc = acc + p @ v[:, :, start:start + block_k]
        m = m_new
    return torch.where(l.unsqueeze(-1) > 0, acc / torch.where(l > 0, l, 1.0).unsqueeze(-1), 0.0)


def forward_diagnosis(q, k, v, o, lse, *, causal, scale, block_k, single_block=None):
    """The known forward bug that (o, lse) matches, as a sentence, or None. `single_block` is a
    callable giving the student's o with one key block (block_k >= Nk), or None."""
    from autograder.harness import first_true

    n_q, n_k = q.shape[2], k.shape[2]
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal, scale=scale)
    if close(o, expected_o) and close(lse, expected_lse):
        return None   # the forward is right: the fault is elsewhere
    tail = n_k - n_k % block_k
    return first_true([
        ("o is right but lse is not the natural-log logsumexp: it matches log2 (base 2); return m + ln(l)",
         lambda: close(o, expected_o) and close(lse, expected_lse / math.log(2))),
        ("the causal mask is aligned bottom-right (key j visible to query i iff j <= i + Nk - Nq); the spec "
         "aligns it top-left: key j is visible to query i iff j <= i",
         lambda: causal and n_q != n_k and close(o, naive_attention(q, k, v, causal=True, scale=scale,
                                                                     bottom_right=True)[0])),
        ("the causal mask is not applied", lambda: causal and close(o, naive_attention(q, k, v, scale=scale)[0])),
        ("the last key block is dropped when Nk is not a multiple of block_k: the key loop must cover "
         "range(0, Nk, block_k), the last block being shorter",
         lambda: n_k % block_k != 0 and tail > 0 and close(o, naive_attention(
             q[:, :, :, :], k[:, :, :tail], v[:, :, :tail], causal=causal, scale=scale)[0])),
        ("the accumulator acc is not rescaled by exp(m_old - m_new) when the running max grows (online softmax)",
         lambda: close(o, tiled_without_rescale(q, k, v, causal=causal, scale=scale, block_k=block_k))),
        ("neither acc nor l is rescaled by exp(m_old - m_new) when the running max grows (online softmax)",
         lambda: close(o, tiled_without_rescale(q, k, v, causal=causal, scale=scale, block_k=block_k,
                                                rescale_l=False))),
        ("o is right but lse is wrong: lse_i = m_i + log(l_i) with the final running max m_i and sum l_i",
         lambda: close(o, expected_o) and not close(lse, expected_lse)),
        ("right with a single key block but wrong with several: the combination across key blocks "
         "(the rescale by exp(m_old - m_new) of acc and l) is at fault",
         lambda: single_block is not None and n_k > block_k and close(single_block(), expected_o)),
        ("the default scale is not 1/sqrt(d)",
         lambda: scale is None and close(o, naive_attention(q, k, v, causal=causal, scale=1.0)[0])),
    ])


def backward_diagnosis(q, k, v, do, grads, *, causal, scale, with_lse=None):
    """The known backward bug that (dq, dk, dv) matches, as a sentence, or None. `with_lse` is a
    callable giving the student's gradients for a given lse, or None."""
    from autograder.harness import first_true

    dq, dk, dv = grads
    expected = naive_gradients(q, k, v, do, causal=causal, scale=scale)
    d = q.shape[-1]
    scale_value = 1.0 / math.sqrt(d) if scale is None else scale
    lse = naive_attention(q, k, v, causal=causal, scale=scale)[1]
    if with_lse is not None and not close(tuple(grads), expected):
        try:
            if close(tuple(with_lse(lse / math.log(2))), expected):
                return "the backward recomputes P as if lse were in base 2; lse is the natural-log logsumexp, P = exp(S - lse)"
        except Exception:  # noqa: BLE001 - an experiment that fails proves nothing
            pass
    if not all(bool(g.abs().max() > 1e-9) for g in expected if g.numel()) or any(g.numel() == 0 for g in expected):
        return None   # some gradient is zero (one key per row): "x is right" would prove nothing
    return first_true([
        ("dv is right but dq and dk are not: dS = P * (dP - D) with D_i = rowsum(dO_i * O_i)",
         lambda: close(dv, expected[2]) and not close(dq, expected[0]) and not close(dk, expected[1])
         and _matches_without_delta(q, k, v, do, dq, causal=causal, scale=scale)),
        ("dq and dk are missing the factor scale (S = scale * Q K^T, so dQ = scale * dS K, dK = scale * dS^T Q)",
         lambda: not close(dq, expected[0]) and close(dq * scale_value, expected[0]) and close(dk * scale_value, expected[1])),
        ("dq is right but dk misses the factor scale (S = scale * Q K^T, so dK = scale * dS^T Q)",
         lambda: close(dq, expected[0]) and close(dk * scale_value, expected[1])),
        ("dv is right but dq and dk are not: check dP = dO V^T, dS = P * (dP - D), dQ = scale dS K, "
         "dK = scale dS^T Q", lambda: close(dv, expected[2])),
        ("dq and dk are right but dv is not: dV = P^T dO with P recomputed as exp(S - lse)",
         lambda: close(dq, expected[0]) and close(dk, expected[1])),
    ])


def _matches_without_delta(q, k, v, do, dq, *, causal, scale):
    """True when dq equals the gradient computed with D = 0 (dS = P * dP)."""
    q64, k64, v64, do64 = (t.double() for t in (q, k, v, do))
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    o, lse = naive_attention(q64, k64, v64, causal=causal, scale=scale)
    s = (q64 @ k64.transpose(-2, -1)) * scale
    s = s.masked_fill(~visible_keys(q.shape[2], k.shape[2], causal), NEG_INF)
    p = torch.exp(s - torch.where(lse == NEG_INF, 0.0, lse).unsqueeze(-1))
    ds = p * (do64 @ v64.transpose(-2, -1))
    return close(dq, ds @ k64 * scale)
