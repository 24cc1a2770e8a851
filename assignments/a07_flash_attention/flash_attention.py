"""Assignment 7 (Lecture 8): FlashAttention-2, forward and backward, tiled in PyTorch.

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
    raise NotImplementedError("Task 1.1: online softmax statistics")


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
    raise NotImplementedError("Task 1.2: merging two partial states")


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
    raise NotImplementedError("Task 2.1: tiled forward with the online softmax")


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
    raise NotImplementedError("Task 3.1: tiled backward recomputing P from lse")


# ---------------------------------------------------------------------- Task 4: the autograd Function

class FlashAttentionFunction(torch.autograd.Function):
    """O = attention(q, k, v) with the tiled forward and backward above.

    The forward saves q, k, v, o and lse (O(N d) numbers), never P: the backward recomputes it.
    """

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_q, block_k):
        raise NotImplementedError("Task 4.1: the Function's forward")

    @staticmethod
    def backward(ctx, do):
        raise NotImplementedError("Task 4.2: the Function's backward")


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
    raise NotImplementedError("Task 5.1: counting HBM accesses")


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
        # One program per (query block, batch * head): program_id(0) is the query block, program_id(1)
        # the head. Q, O point to contiguous (B*H, Nq, d) memory, K, V to (B*H, Nk, d), L to (B*H, Nq)
        # float32. BLOCK_D is d rounded up to a power of two: mask the columns >= d, and the rows past
        # Nq or Nk. Accumulate in float32; tl.dot(a, b, input_precision="ieee") keeps float32 exact.
        raise NotImplementedError("Task 6.1: the Triton forward kernel")

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
