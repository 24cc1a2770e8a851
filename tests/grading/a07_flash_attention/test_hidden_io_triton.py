"""Hidden: the IO model of Dao et al. 2022 (exact counts) and the Triton kernel.

The Triton kernel is graded on CUDA where there is a GPU; on a machine without CUDA the
worker runs it through Triton's interpreter (TRITON_INTERPRET=1) at small sizes; where
neither CUDA nor triton is available its tests are deferred, never failed.
"""
import importlib.util

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT16, FLOAT32, BFLOAT16, Tolerance, assert_close, diagnose, expect_raises, first_true, require
from autograder.harness.strategies import hidden_seeds
from oracle import attention_inputs, naive_attention


def ceil_div(a, b):
    return -(-a // b)


def hbm_accesses(N, d, M, algorithm, *, outer=ceil_div, block=ceil_div):
    """The spec's closed forms; `outer` and `block` let a diagnosis try floor division instead."""
    if algorithm == "standard":
        return 4 * N * N + 4 * N * d
    block_c = block(M, 4 * d)
    return 3 * N * d + 2 * N + outer(N, block_c) * N * (3 * d + 4)


def floor_div(a, b):
    return a // b


def hbm_diagnosis(N, d, M, algorithm, got):
    if algorithm == "standard":
        return first_true([
            ("the standard count misses the reads of Q and K or the write of O: read Q, K (2Nd), write S, read S, "
             "write P, read P and V, write O", lambda: got in (4 * N * N + 2 * N * d, 4 * N * N + 3 * N * d)),
            ("the standard count reads and writes S and P, 4 N^2 in all", lambda: got - 4 * N * d in (2 * N * N, 3 * N * N)),
        ])
    return first_true([
        ("Tc = ceil(N / Bc) rounds up: the last key block may be shorter but is still loaded",
         lambda: N % ceil_div(M, 4 * d) != 0 and got == hbm_accesses(N, d, M, "flash", outer=floor_div)),
        ("Bc = ceil(M / (4d)) rounds up", lambda: got == hbm_accesses(N, d, M, "flash", block=floor_div)),
        ("each inner step moves Q_i, O_i, l_i, m_i in and O_i, l_i, m_i out: N(3d + 4) per outer step",
         lambda: (got - 3 * N * d - 2 * N) % N == 0 and got != hbm_accesses(N, d, M, "flash")),
        ("the initialisation of O, l, m in HBM (Nd + 2N writes) or the loads of K_j, V_j (2Nd) are not counted",
         lambda: got + N * d + 2 * N == hbm_accesses(N, d, M, "flash") or got + 2 * N * d == hbm_accesses(N, d, M, "flash")),
    ])


# ------------------------------------------------------------------ Task 5: IO counts

@given(N=st.integers(1, 2000), d=st.integers(1, 256), block_c=st.integers(1, 80), spare=st.integers(1, 10**6),
       algorithm=st.sampled_from(["standard", "flash"]))
def test_hbm_accesses_match_the_counting_rules(student, N, d, block_c, spare, algorithm):
    M = max(4 * d, 4 * d * (block_c - 1) + 1 + spare % (4 * d))   # ceil(M / 4d) = block_c; rarely a multiple of 4d
    got = student.attention_hbm_accesses(N, d, M, algorithm)
    expected = hbm_accesses(N, d, M, algorithm)
    what = f"attention_hbm_accesses(..., algorithm={algorithm!r})"
    require(isinstance(got, int) and not isinstance(got, bool), f"{what} should return an int (a count of elements)")
    with diagnose(lambda: hbm_diagnosis(N, d, M, algorithm, got)):
        require(got == expected, f"{what} is not the count of Dao et al. 2022's rules (off by {got - expected:+d})")


@given(N=st.integers(64, 8192), d=st.sampled_from([16, 32, 64, 128]))
def test_hbm_flash_beats_standard_when_on_chip_memory_is_large(student, N, d):
    M = 4 * d * N                                       # K_j, V_j blocks as long as the sequence: one outer step
    flash = student.attention_hbm_accesses(N, d, M, "flash")
    standard = student.attention_hbm_accesses(N, d, M, "standard")
    require(flash < standard, "with on-chip memory M large, flash attention must move fewer HBM elements than the "
            "standard algorithm (it never writes S or P)")


@given(N=st.integers(1, 4096), d=st.integers(1, 128), factors=st.lists(st.integers(4, 10_000), min_size=2, max_size=6))
def test_hbm_flash_is_non_increasing_in_on_chip_memory(student, N, d, factors):
    sizes = sorted(f * d + f % 3 for f in factors)
    counts = [student.attention_hbm_accesses(N, d, M, "flash") for M in sizes]
    require(all(a >= b for a, b in zip(counts, counts[1:])),
            "attention_hbm_accesses(..., 'flash') grew when the on-chip memory M grew: a larger M allows larger "
            "blocks, so fewer outer steps, never more accesses")


@given(N=st.integers(1, 100), d=st.integers(1, 64), short=st.integers(1, 3))
def test_hbm_invalid_arguments_raise_value_error(student, N, d, short):
    expect_raises(ValueError, lambda: student.attention_hbm_accesses(N, d, 4 * d - short, "flash"),
                  "attention_hbm_accesses with M < 4d")
    for algorithm in ("standard", "flash"):
        expect_raises(ValueError, lambda: student.attention_hbm_accesses(1 - N, d, 4 * d, algorithm),
                      f"attention_hbm_accesses({algorithm!r}) with N < 1")
        expect_raises(ValueError, lambda: student.attention_hbm_accesses(N, 1 - d, 64, algorithm),
                      f"attention_hbm_accesses({algorithm!r}) with d < 1")


# ------------------------------------------------------------------ Task 6: Triton

def triton_available(device):
    """Defer (never fail) where the kernel cannot run: no triton without CUDA, or a GPU to use instead."""
    if device == "cpu":
        if importlib.util.find_spec("triton") is None:
            pytest.skip("deferred: triton is not installed here; the kernel is graded where triton (or CUDA) is")
        if torch.cuda.is_available():
            pytest.skip("deferred: on a CUDA machine the kernel is graded on the GPU (the cuda variant of this test)")


def check_triton(student, seed, n_q, n_k, d, causal, dtype, device):
    q, k, v, _ = attention_inputs(seed, 1, 2, n_q, n_k, d, dtype=dtype)
    o, lse = student.flash_attention_triton_forward(q.to(device), k.to(device), v.to(device), causal=causal)
    name = str(dtype).replace("torch.", "")
    what = f"flash_attention_triton_forward(causal={causal}) in {name} on {device}"
    require(o.dtype == dtype and lse.dtype == torch.float32, f"{what}: o should be {name} and lse float32")
    expected_o, expected_lse = naive_attention(q, k, v, causal=causal)
    tol = {torch.float32: FLOAT32, torch.float16: FLOAT16, torch.bfloat16: BFLOAT16}[dtype]
    with diagnose(lambda: first_true([
            ("the causal mask is not applied in the kernel",
             lambda: causal and bool(torch.allclose(o.cpu().double(), naive_attention(q, k, v)[0], rtol=1e-2, atol=1e-2))),
            ("the kernel's accumulator is not rescaled by exp(m_old - m_new) when the running max grows",
             lambda: bool(torch.allclose(lse.cpu().double(), expected_lse, rtol=1e-4, atol=1e-4)))])):
        assert_close(o.cpu(), expected_o.to(dtype), f"{what}: o", tol=tol)
        assert_close(lse.cpu(), expected_lse.float(), f"{what}: lse", tol=Tolerance(rtol=1e-5, atol=1e-5))


@given(seed=hidden_seeds(), n_q=st.integers(1, 48), n_k=st.integers(1, 48), d=st.sampled_from([8, 16, 24]),
       causal=st.booleans())
def test_triton_forward_matches_the_oracle_in_every_dtype(student, device, seed, n_q, n_k, d, causal):
    triton_available(device)
    if device == "cuda":
        n_q, n_k, d = n_q * 8, n_k * 8, max(d, 16) * 4      # the GPU takes real sizes
    # Triton's CPU interpreter computes through numpy, which has no bfloat16: that dtype is graded on CUDA only.
    for dtype in (torch.float32, torch.float16) + ((torch.bfloat16,) if device == "cuda" else ()):
        check_triton(student, seed, n_q, n_k, d, causal, dtype, device)
    q, k, v, _ = attention_inputs(seed + 1, 1, 2, n_q, 0, d, dtype=torch.float32)
    o, lse = student.flash_attention_triton_forward(q.to(device), k.to(device), v.to(device), causal=causal)
    assert_close(o.cpu(), torch.zeros_like(q), "flash_attention_triton_forward with Nk = 0: o must be 0")
    assert_close(lse.cpu(), torch.full(q.shape[:-1], float("-inf")), "flash_attention_triton_forward with Nk = 0: lse")
