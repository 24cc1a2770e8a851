"""A correct submission in another style: FlashAttention-1 loop order.

The forward loops over key blocks outside and query blocks inside, keeping the running
statistics of every query row in (B, H, Nq) tensors (as Algorithm 1 of Dao et al. keeps
them in HBM) and merging each tile's partial state with merge_attention_states. The
backward loops over query blocks outside. Rectangular tiles are used as given.
"""
import functools
import math

import torch


def online_softmax_stats(x, block_size):
    if block_size < 1:
        raise ValueError("block_size must be positive")
    *lead, n = x.shape
    running_max = x.new_full(lead, -math.inf)
    running_sum = x.new_zeros(lead)
    start = 0
    while start < n:
        chunk = x[..., start:start + block_size]
        block_max = chunk.max(dim=-1).values
        new_max = torch.maximum(running_max, block_max)
        safe = new_max.masked_fill(torch.isneginf(new_max), 0.0)
        running_sum = running_sum * (running_max - safe).exp() + (chunk - safe[..., None]).exp().sum(-1)
        running_max = new_max
        start += block_size
    return running_max, running_sum


def merge_attention_states(m1, l1, acc1, m2, l2, acc2):
    m = torch.maximum(m1, m2)
    safe = m.masked_fill(torch.isneginf(m), 0.0)
    w1, w2 = (m1 - safe).exp(), (m2 - safe).exp()
    return m, w1 * l1 + w2 * l2, w1[..., None] * acc1 + w2[..., None] * acc2


def _work_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _scores(q_blk, k_blk, scale, causal, i0, j0):
    s = torch.matmul(q_blk, k_blk.transpose(2, 3)) * scale
    if causal:
        qi = torch.arange(i0, i0 + q_blk.shape[2], device=s.device)
        kj = torch.arange(j0, j0 + k_blk.shape[2], device=s.device)
        s = s.masked_fill(kj[None, :] > qi[:, None], -math.inf)
    return s


def flash_attention_forward(q, k, v, *, causal=False, scale=None, block_q=64, block_k=64):
    B, H, Nq, d = q.shape
    Nk = k.shape[2]
    if scale is None:
        scale = d ** -0.5
    wd = _work_dtype(q.dtype)
    m = torch.full((B, H, Nq), -math.inf, dtype=wd)
    l = torch.zeros((B, H, Nq), dtype=wd)
    acc = torch.zeros((B, H, Nq, v.shape[3]), dtype=wd)
    for j0 in range(0, Nk, block_k):                     # keys outside (FlashAttention-1 order)
        kb = k[:, :, j0:j0 + block_k].to(wd)
        vb = v[:, :, j0:j0 + block_k].to(wd)
        for i0 in range(0, Nq, block_q):
            if causal and i0 + block_q - 1 < j0:
                continue                                 # every key of this block is in the future
            i1 = min(i0 + block_q, Nq)
            s = _scores(q[:, :, i0:i1].to(wd), kb, scale, causal, i0, j0)
            tile_m = s.max(dim=-1).values
            safe = tile_m.masked_fill(torch.isneginf(tile_m), 0.0)
            p = (s - safe[..., None]).exp()
            merged = merge_attention_states(m[:, :, i0:i1], l[:, :, i0:i1], acc[:, :, i0:i1],
                                            tile_m, p.sum(-1), torch.matmul(p, vb))
            m[:, :, i0:i1], l[:, :, i0:i1], acc[:, :, i0:i1] = merged
    empty = l == 0
    denominator = l.masked_fill(empty, 1.0)
    o = (acc / denominator[..., None]).masked_fill(empty[..., None], 0.0)
    lse = (m + denominator.log()).masked_fill(empty, -math.inf)
    return o.to(q.dtype), lse


def flash_attention_backward(q, k, v, o, lse, do, *, causal=False, scale=None, block_q=64, block_k=64):
    B, H, Nq, d = q.shape
    Nk = k.shape[2]
    if scale is None:
        scale = d ** -0.5
    wd = _work_dtype(q.dtype)
    D = (do.to(wd) * o.to(wd)).sum(dim=3)
    L = lse.to(wd).masked_fill(torch.isneginf(lse), 0.0)
    dq = torch.zeros(q.shape, dtype=wd)
    dk = torch.zeros(k.shape, dtype=wd)
    dv = torch.zeros(v.shape, dtype=wd)
    for i0 in range(0, Nq, block_q):                     # queries outside
        i1 = min(i0 + block_q, Nq)
        qb, dob = q[:, :, i0:i1].to(wd), do[:, :, i0:i1].to(wd)
        for j0 in range(0, Nk, block_k):
            if causal and j0 > i1 - 1:
                break
            j1 = min(j0 + block_k, Nk)
            kb, vb = k[:, :, j0:j1].to(wd), v[:, :, j0:j1].to(wd)
            p = (_scores(qb, kb, scale, causal, i0, j0) - L[:, :, i0:i1, None]).exp()
            dv[:, :, j0:j1] += torch.matmul(p.transpose(2, 3), dob)
            ds = p * (torch.matmul(dob, vb.transpose(2, 3)) - D[:, :, i0:i1, None])
            dq[:, :, i0:i1] += scale * torch.matmul(ds, kb)
            dk[:, :, j0:j1] += scale * torch.matmul(ds.transpose(2, 3), qb)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class FlashAttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_q, block_k):
        o, lse = flash_attention_forward(q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.settings = (causal, scale, block_q, block_k)
        return o

    @staticmethod
    def backward(ctx, do):
        causal, scale, block_q, block_k = ctx.settings
        grads = flash_attention_backward(*ctx.saved_tensors, do, causal=causal, scale=scale,
                                         block_q=block_q, block_k=block_k)
        return (*grads, None, None, None, None)


def flash_attention(q, k, v, causal=False, scale=None, block_q=64, block_k=64):
    return FlashAttentionFunction.apply(q, k, v, causal, scale, block_q, block_k)


def attention_hbm_accesses(N, d, M, algorithm):
    """Simulates the loops of Algorithms 0 and 1 and counts every element moved."""
    if N < 1 or d < 1 or M < 4 * d:
        raise ValueError("need N >= 1, d >= 1 and M >= 4d")
    if algorithm == "standard":
        reads = 2 * N * d + N * N + N * N + N * d        # Q, K; S; P, V
        writes = N * N + N * N + N * d                   # S; P; O
        return reads + writes
    if algorithm != "flash":
        raise ValueError("unknown algorithm")
    bc = math.ceil(M / (4 * d))
    br = min(bc, d)
    total = N * d + 2 * N                                # O, l, m initialised in HBM
    for j in range(0, N, bc):
        cols = min(bc, N - j)
        total += 2 * cols * d                            # K_j, V_j
        for i in range(0, N, br):
            rows = min(br, N - i)
            total += rows * (2 * d + 2) + rows * (d + 2)  # read Q_i, O_i, l_i, m_i; write O_i, l_i, m_i
    return total


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(Q, K, V, O, L, n_q, n_k, d, scale, CAUSAL: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
               BD: tl.constexpr):
        pid = tl.program_id(0)
        bh = tl.program_id(1)
        offs_m = pid * BM + tl.arange(0, BM)
        offs_d = tl.arange(0, BD)
        qmask = (offs_m[:, None] < n_q) & (offs_d[None, :] < d)
        q = tl.load(Q + bh * n_q * d + offs_m[:, None] * d + offs_d[None, :], mask=qmask, other=0.0).to(tl.float32)
        m = tl.zeros([BM], dtype=tl.float32) - float("inf")
        l = tl.zeros([BM], dtype=tl.float32)
        acc = tl.zeros([BM, BD], dtype=tl.float32)
        for n0 in range(0, n_k, BN):
            offs_n = n0 + tl.arange(0, BN)
            kmask = (offs_n[:, None] < n_k) & (offs_d[None, :] < d)
            kb = tl.load(K + bh * n_k * d + offs_n[:, None] * d + offs_d[None, :], mask=kmask, other=0.0).to(tl.float32)
            vb = tl.load(V + bh * n_k * d + offs_n[:, None] * d + offs_d[None, :], mask=kmask, other=0.0).to(tl.float32)
            s = tl.sum(q[:, None, :] * kb[None, :, :], axis=2) * scale
            ok = offs_n[None, :] < n_k
            if CAUSAL:
                ok = ok & (offs_n[None, :] <= offs_m[:, None])
            s = tl.where(ok, s, float("-inf"))
            m_new = tl.maximum(m, tl.max(s, axis=1))
            base = tl.where(m_new > float("-inf"), m_new, 0.0)
            p = tl.exp(s - base[:, None])
            w = tl.exp(m - base)
            l = l * w + tl.sum(p, axis=1)
            acc = acc * w[:, None] + tl.sum(p[:, :, None] * vb[None, :, :], axis=1)
            m = m_new
        has = l > 0
        den = tl.where(has, l, 1.0)
        tl.store(O + bh * n_q * d + offs_m[:, None] * d + offs_d[None, :], (acc / den[:, None]).to(O.dtype.element_ty),
                 mask=qmask)
        tl.store(L + bh * n_q + offs_m, tl.where(has, m + tl.log(den), float("-inf")), mask=offs_m < n_q)

    return kernel


def flash_attention_triton_forward(q, k, v, causal=False, scale=None):
    B, H, Nq, d = q.shape
    Nk = k.shape[2]
    scale = d ** -0.5 if scale is None else scale
    o = torch.zeros_like(q)
    lse = torch.full((B, H, Nq), -math.inf, dtype=torch.float32, device=q.device)
    if Nq and Nk and B * H:
        bd = triton_block(d)
        _kernel()[(math.ceil(Nq / 16), B * H)](q.contiguous(), k.contiguous(), v.contiguous(), o, lse, Nq, Nk, d,
                                               scale, CAUSAL=causal, BM=16, BN=16, BD=bd)
    return o, lse


def triton_block(d):
    size = 1
    while size < d:
        size *= 2
    return size
