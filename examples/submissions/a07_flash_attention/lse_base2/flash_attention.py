"""Subtle bug: lse kept in base 2 (exp2 trick), consistently in forward and backward.

Assignment 7 (Lecture 8): FlashAttention-2, forward and backward, tiled in PyTorch.

Attention of one (batch, head) with queries q (Nq, d), keys k and values v (Nk, d):

    S = scale * q k^T            (Nq, Nk)     scale = 1/sqrt(d) unless given
    P = softmax(S) row-wise      (Nq, Nk)     masked entries (causal) count as -inf
    O = P v                      (Nq, d)
    lse_i = log sum_j exp(S_ij)  (Nq,)        natural log: P_ij = exp(S_ij - lse_i)

The standard implementation writes S and P to memory: Nq x Nk numbers per head. Flash
attention never holds more than one tile of scores (block_q x block_k per head): it
streams over key blocks keeping, per query row, a running max m, a running sum
l = sum_j exp(S_ij - m) and an unnormalised accumulator acc = sum_j exp(S_ij - m) v_j,
rescaled whenever m grows (the online softmax). The backward recomputes each tile of
P from q, k and the saved lse instead of storing P.

Shapes: q (B, H, Nq, d), k and v (B, H, Nk, d). Causal masking is top-left aligned: key j
is visible to query i iff j <= i. float16/bfloat16 inputs are computed in float32 (o comes
back in the input dtype, lse in float32); float64 inputs are computed in float64.
The rule of the assignment: no tensor larger than max(B*H*max(Nq, Nk)*d, B*H*block_q*block_k)
elements, ever (the grader traces every op).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

NEG_INF = float("-inf")
LOG2_E = 1.0 / math.log(2.0)   # exp(x) = exp2(x * log2(e)), as the CUDA kernels compute it


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs (their exp and sums lose too much), else the input dtype. (given)"""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def causal_tile_mask(q_start: int, q_stop: int, k_start: int, k_stop: int, device) -> Tensor:
    """(block_q, block_k) bool mask of the tile, True where key j is hidden from query i (j > i). (given)"""
    rows = torch.arange(q_start, q_stop, device=device).unsqueeze(1)   # (Br, 1) query positions i
    cols = torch.arange(k_start, k_stop, device=device).unsqueeze(0)   # (1, Bc) key positions j
    return cols > rows                                                 # (Br, Bc)


def safe_shift(m: Tensor) -> Tensor:
    """m with -inf replaced by 0: the shift of a row that has seen no visible key yet. (given)

    exp(s - m) with s = m = -inf would be exp(nan); with the shift 0 it is exp(-inf) = 0.
    """
    return torch.where(m == NEG_INF, torch.zeros_like(m), m)


# ---------------------------------------------------------------------- Task 1: the online softmax

def online_softmax_stats(x: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    """One streaming pass over blocks of the last dim of x (..., N): returns (m, l), shapes (...).

        m^(0) = -inf, l^(0) = 0
        m^(t) = max(m^(t-1), max_j x_j over block t)
        l^(t) = l^(t-1) * exp(m^(t-1) - m^(t)) + sum_j exp(x_j - m^(t)) over block t

    At the end m = max_j x_j and l = sum_j exp(x_j - m), so logsumexp(x) = m + log(l).
    Each exp has an argument <= 0: no overflow even for x near 1e4. ValueError for block_size < 1.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    m = torch.full(x.shape[:-1], NEG_INF, dtype=x.dtype, device=x.device)   # (...)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)           # (...)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start:start + block_size]                            # (..., Bc)
        m_new = torch.maximum(m, block.amax(dim=-1))                        # (...)
        shift = safe_shift(m_new)
        l = l * torch.exp(m - shift) + torch.exp(block - shift.unsqueeze(-1)).sum(dim=-1)
        m = m_new
    return m, l


def merge_attention_states(m1: Tensor, l1: Tensor, acc1: Tensor, m2: Tensor, l2: Tensor,
                           acc2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The attention state over the union of two disjoint key sets.

    A state over a key set J is m = max_{j in J} s_j, l = sum_{j in J} exp(s_j - m) and
    acc = sum_{j in J} exp(s_j - m) v_j (unnormalised). With m = max(m1, m2):

        l   = exp(m1 - m) l1   + exp(m2 - m) l2
        acc = exp(m1 - m) acc1 + exp(m2 - m) acc2

    Shapes: m, l (...,), acc (..., dv). An empty set is (-inf, 0, 0); merging is associative
    and commutative, so the final o = acc / l does not depend on how the keys were split.
    """
    m = torch.maximum(m1, m2)                                               # (...)
    shift = safe_shift(m)
    alpha1 = torch.exp(m1 - shift)                                          # (...) rescale of state 1
    alpha2 = torch.exp(m2 - shift)
    l = alpha1 * l1 + alpha2 * l2
    acc = alpha1.unsqueeze(-1) * acc1 + alpha2.unsqueeze(-1) * acc2         # (..., dv)
    return m, l, acc


# ---------------------------------------------------------------------- Task 2: the tiled forward

def flash_attention_forward(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, scale: float | None = None,
                            block_q: int = 64, block_k: int = 64) -> tuple[Tensor, Tensor]:
    """FlashAttention-2 forward: returns (o (B, H, Nq, d), lse (B, H, Nq)).

    Outer loop over query blocks Q_i (block_q rows), inner loop over key blocks K_j, V_j
    (block_k rows). Per query block the state (m, l, acc) lives "on chip"; per key block:

        S_ij  = scale * Q_i K_j^T                     (B, H, Br, Bc), masked entries -inf
        m_new = max(m, rowmax(S_ij))
        P~_ij = exp(S_ij - m_new)                     (unnormalised tile of P)
        l     = exp(m - m_new) * l   + rowsum(P~_ij)
        acc   = exp(m - m_new) * acc + P~_ij V_j      (the accumulator rescale)
        m     = m_new

    and at the end of the inner loop O_i = acc / l, lse_i = m + log(l) (one division per
    row, FA-2's deferred normalisation). Causal: the key blocks past the query block's last
    row are skipped entirely. With Nk = 0 (or a row that sees no key): o = 0, lse = -inf.
    """
    if block_q < 1 or block_k < 1:
        raise ValueError(f"block sizes must be >= 1, got block_q={block_q}, block_k={block_k}")
    batch, heads, n_q, d = q.shape
    n_k, d_v = k.shape[2], v.shape[3]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    work = accumulation_dtype(q.dtype)
    o = torch.zeros(batch, heads, n_q, d_v, dtype=q.dtype, device=q.device)       # (B, H, Nq, dv)
    lse = torch.full((batch, heads, n_q), NEG_INF, dtype=work, device=q.device)   # (B, H, Nq)
    for q_start in range(0, n_q, block_q):
        q_stop = min(q_start + block_q, n_q)
        q_tile = q[:, :, q_start:q_stop].to(work)                                 # (B, H, Br, d)
        m = torch.full(q_tile.shape[:-1], NEG_INF, dtype=work, device=q.device)   # (B, H, Br)
        l = torch.zeros(q_tile.shape[:-1], dtype=work, device=q.device)           # (B, H, Br)
        acc = torch.zeros(batch, heads, q_stop - q_start, d_v, dtype=work, device=q.device)  # (B, H, Br, dv)
        k_end = min(n_k, q_stop) if causal else n_k          # causal: keys j <= i < q_stop only
        for k_start in range(0, k_end, block_k):
            k_stop = min(k_start + block_k, n_k)
            k_tile = k[:, :, k_start:k_stop].to(work)                             # (B, H, Bc, d)
            v_tile = v[:, :, k_start:k_stop].to(work)                             # (B, H, Bc, dv)
            s = (q_tile @ k_tile.transpose(-2, -1)) * scale                       # (B, H, Br, Bc) one tile of S
            if causal and k_stop - 1 > q_start:                                   # tile crosses the diagonal
                s = s.masked_fill(causal_tile_mask(q_start, q_stop, k_start, k_stop, q.device), NEG_INF)
            m_new = torch.maximum(m, s.amax(dim=-1))                              # (B, H, Br)
            shift = safe_shift(m_new)
            p = torch.exp(s - shift.unsqueeze(-1))                                # (B, H, Br, Bc)
            alpha = torch.exp(m - shift)                                          # (B, H, Br) rescale
            l = alpha * l + p.sum(dim=-1)
            acc = alpha.unsqueeze(-1) * acc + p @ v_tile                          # (B, H, Br, dv)
            m = m_new
        seen = l > 0                                                              # rows with a visible key
        o[:, :, q_start:q_stop] = torch.where(seen.unsqueeze(-1), acc / torch.where(seen, l, 1.0).unsqueeze(-1),
                                              0.0).to(q.dtype)
        lse[:, :, q_start:q_stop] = torch.where(seen, (m + torch.log(torch.where(seen, l, 1.0))) * LOG2_E, NEG_INF)
    return o, lse


# ---------------------------------------------------------------------- Task 3: the tiled backward

def flash_attention_backward(q: Tensor, k: Tensor, v: Tensor, o: Tensor, lse: Tensor, do: Tensor, *,
                             causal: bool = False, scale: float | None = None, block_q: int = 64,
                             block_k: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """FlashAttention-2 backward: returns (dq, dk, dv), shaped like q, k, v.

    With P = softmax(S) and dO the cotangent of O:

        dV = P^T dO          dP = dO V^T          dS = P * (dP - D)     D_i = rowsum(dO_i * O_i)
        dQ = scale * dS K    dK = scale * dS^T Q

    (D_i = sum_j P_ij dP_ij because O = P V: the softmax Jacobian's correction term, computed
    once from O instead of from P.) Outer loop over key blocks, whose dK_j, dV_j accumulate
    on chip; inner loop over query blocks; each tile of P is recomputed from the saved lse,
    P_ij = exp(S_ij - lse_i): nothing of size Nq x Nk is stored or rebuilt.
    """
    if block_q < 1 or block_k < 1:
        raise ValueError(f"block sizes must be >= 1, got block_q={block_q}, block_k={block_k}")
    n_q, d = q.shape[2], q.shape[3]
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    work = accumulation_dtype(q.dtype)
    delta = (do.to(work) * o.to(work)).sum(dim=-1)                                # (B, H, Nq)  D
    lse = safe_shift(lse.to(work))                                                # rows without keys: P = 0
    dq = torch.zeros(q.shape, dtype=work, device=q.device)                        # (B, H, Nq, d)
    dk = torch.zeros(k.shape, dtype=k.dtype, device=k.device)                     # (B, H, Nk, d)
    dv = torch.zeros(v.shape, dtype=v.dtype, device=v.device)                     # (B, H, Nk, dv)
    for k_start in range(0, n_k, block_k):
        k_stop = min(k_start + block_k, n_k)
        k_tile = k[:, :, k_start:k_stop].to(work)                                 # (B, H, Bc, d)
        v_tile = v[:, :, k_start:k_stop].to(work)                                 # (B, H, Bc, dv)
        dk_tile = torch.zeros_like(k_tile)
        dv_tile = torch.zeros_like(v_tile)
        first = (k_start // block_q) * block_q if causal else 0   # causal: queries i < k_start see none
        for q_start in range(first, n_q, block_q):
            q_stop = min(q_start + block_q, n_q)
            q_tile = q[:, :, q_start:q_stop].to(work)                             # (B, H, Br, d)
            do_tile = do[:, :, q_start:q_stop].to(work)                           # (B, H, Br, dv)
            s = (q_tile @ k_tile.transpose(-2, -1)) * scale                       # (B, H, Br, Bc) recomputed
            if causal and k_stop - 1 > q_start:                                   # the diagonal crosses it
                s = s.masked_fill(causal_tile_mask(q_start, q_stop, k_start, k_stop, k.device), NEG_INF)
            p = torch.exp2(s * LOG2_E - lse[:, :, q_start:q_stop].unsqueeze(-1))  # (B, H, Br, Bc) P from lse
            dv_tile += p.transpose(-2, -1) @ do_tile                              # (B, H, Bc, dv)
            dp = do_tile @ v_tile.transpose(-2, -1)                               # (B, H, Br, Bc)
            ds = p * (dp - delta[:, :, q_start:q_stop].unsqueeze(-1))             # (B, H, Br, Bc)
            dq[:, :, q_start:q_stop] += (ds @ k_tile) * scale                     # (B, H, Br, d)
            dk_tile += (ds.transpose(-2, -1) @ q_tile) * scale                    # (B, H, Bc, d)
        dk[:, :, k_start:k_stop] = dk_tile.to(k.dtype)
        dv[:, :, k_start:k_stop] = dv_tile.to(v.dtype)
    return dq.to(q.dtype), dk, dv


# ---------------------------------------------------------------------- Task 4: the autograd Function

class FlashAttentionFunction(torch.autograd.Function):
    """O = attention(q, k, v) with the tiled forward and backward above.

    The forward saves q, k, v, o and lse (O(N d) numbers), never P: the backward recomputes it.
    """

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_q, block_k):
        o, lse = flash_attention_forward(q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.options = dict(causal=causal, scale=scale, block_q=block_q, block_k=block_k)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = flash_attention_backward(q, k, v, o, lse, do, **ctx.options)
        return dq, dk, dv, None, None, None, None


def flash_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False, scale: float | None = None,
                    block_q: int = 64, block_k: int = 64) -> Tensor:
    """Differentiable flash attention: o (B, H, Nq, d), gradients through the tiled backward. (given)"""
    return FlashAttentionFunction.apply(q, k, v, causal, scale, block_q, block_k)


# ---------------------------------------------------------------------- Task 5: the IO model

def attention_hbm_accesses(N: int, d: int, M: int, algorithm: str) -> int:
    """HBM element reads + writes of one attention head (Nq = Nk = N), as counted by Dao et al. 2022.

    "standard" (Algorithm 0): read Q, K (2Nd), write S (N^2); read S, write P (2N^2);
    read P, V (N^2 + Nd), write O (Nd).
    "flash" (Algorithm 1, M = on-chip memory in elements): Bc = ceil(M / 4d), Br = min(Bc, d),
    Tc = ceil(N / Bc). Initialise O, l, m in HBM; the outer loop loads each K_j, V_j once;
    each inner step loads Q_i, O_i, l_i, m_i and writes O_i, l_i, m_i back.
    ValueError for N < 1, d < 1, M < 4d, or an unknown algorithm.
    """
    if N < 1 or d < 1:
        raise ValueError(f"N and d must be >= 1, got N={N}, d={d}")
    if algorithm == "standard":
        if M < 4 * d:
            raise ValueError(f"on-chip memory M={M} must hold at least 4d = {4 * d} elements")
        return 2 * N * d + N * N + 2 * N * N + N * N + N * d + N * d
    if algorithm == "flash":
        if M < 4 * d:
            raise ValueError(f"on-chip memory M={M} must hold at least 4d = {4 * d} elements")
        block_c = -(-M // (4 * d))                       # Bc = ceil(M / 4d): K_j, V_j, and room for the rest
        outer_steps = -(-N // block_c)                   # Tc
        initialise = N * d + 2 * N                       # write O = 0, l = 0, m = -inf
        load_keys_values = 2 * N * d                     # every K_j, V_j once over the outer loop
        inner_per_outer = N * (3 * d + 4)                # all Q_i, O_i, l_i, m_i read; O_i, l_i, m_i written
        return initialise + load_keys_values + outer_steps * inner_per_outer
    raise ValueError(f"algorithm must be 'standard' or 'flash', got {algorithm!r}")


# ---------------------------------------------------------------------- Task 6: a Triton kernel

@functools.lru_cache(maxsize=None)
def _forward_kernel():
    """Build the Triton kernel once (triton is imported only here: the rest runs without it). (given)"""
    import triton
    import triton.language as tl

    @triton.jit
    def flash_forward_kernel(Q, K, V, O, L, n_q, n_k, d, scale,
                             CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_D: tl.constexpr):
        # One program per (query block, batch*head); q, k, v, o contiguous (BH, N, d), lse (BH, Nq).
        start_m = tl.program_id(0)
        head = tl.program_id(1)
        rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)                      # (BLOCK_M,) query positions
        dims = tl.arange(0, BLOCK_D)                                          # (BLOCK_D,) padded head dim
        q_mask = (rows[:, None] < n_q) & (dims[None, :] < d)
        q = tl.load(Q + head * n_q * d + rows[:, None] * d + dims[None, :], mask=q_mask, other=0.0)
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
        end = n_k
        if CAUSAL:
            end = tl.minimum(n_k, (start_m + 1) * BLOCK_M)
        for start_n in range(0, end, BLOCK_N):
            cols = start_n + tl.arange(0, BLOCK_N)                            # (BLOCK_N,) key positions
            kv_mask = (cols[:, None] < n_k) & (dims[None, :] < d)
            k = tl.load(K + head * n_k * d + cols[:, None] * d + dims[None, :], mask=kv_mask, other=0.0)
            v = tl.load(V + head * n_k * d + cols[:, None] * d + dims[None, :], mask=kv_mask, other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale        # (BLOCK_M, BLOCK_N) fp32
            visible = cols[None, :] < n_k
            if CAUSAL:
                visible = visible & (cols[None, :] <= rows[:, None])
            s = tl.where(visible, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            shift = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp(s - shift[:, None])
            alpha = tl.exp(m_i - shift)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
            m_i = m_new
        seen = l_i > 0
        o = acc / tl.where(seen, l_i, 1.0)[:, None]
        lse = tl.where(seen, m_i + tl.log(tl.where(seen, l_i, 1.0)), float("-inf"))
        tl.store(O + head * n_q * d + rows[:, None] * d + dims[None, :], o.to(O.dtype.element_ty), mask=q_mask)
        tl.store(L + head * n_q + rows, lse, mask=rows < n_q)

    return flash_forward_kernel


def flash_attention_triton_forward(q: Tensor, k: Tensor, v: Tensor, causal: bool = False,
                                   scale: float | None = None) -> tuple[Tensor, Tensor]:
    """The forward of Task 2 as one Triton kernel: (o (B, H, Nq, d), lse (B, H, Nq) float32). (given)

    float16, bfloat16 and float32 inputs (float32 accumulation; o in the input dtype). On a
    machine without CUDA, Triton's interpreter (TRITON_INTERPRET=1) runs the same kernel on CPU.
    """
    batch, heads, n_q, d = q.shape
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    o = torch.zeros(batch, heads, n_q, d, dtype=q.dtype, device=q.device)
    lse = torch.full((batch, heads, n_q), NEG_INF, dtype=torch.float32, device=q.device)
    if n_q == 0 or n_k == 0 or batch * heads == 0:
        return o, lse
    block_d = max(16, 1 << (d - 1).bit_length())                   # a power of two >= d (tl.dot needs >= 16)
    block_m, block_n = 64 if d <= 64 else 32, 32
    grid = (-(-n_q // block_m), batch * heads)
    _forward_kernel()[grid](q.contiguous(), k.contiguous(), v.contiguous(), o, lse, n_q, n_k, d, scale,
                            CAUSAL=bool(causal), BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d)
    return o, lse
