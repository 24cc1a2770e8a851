"""Hidden: skip-gram negative sampling, the RNN forward pass and backpropagation through time,
and the rules (no autograd in the "manual" functions, no library RNN or loss kernels)."""
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT32, StudentError, assert_close, diagnose, require
from autograder.harness.strategies import hidden_seeds
from oracle import (bptt_autograd, bptt_name_variant, bptt_variants, matching_variant, non_finite, rnn_forward_variants,
                    rnn_torch, sgns_autograd, sgns_variants, tensors)

NAMES = ("loss", "grad v_center", "grad u_context", "grad u_negatives")
dtypes = st.sampled_from([torch.float64, torch.float64, torch.float32])


def tolerance(dtype):
    return FLOAT32 if dtype == torch.float32 else None


# ------------------------------------------------------------------ Task 2.1

def check_sgns(student, v, u, n, what):
    expected = sgns_autograd(v, u, n)
    actual = student.sgns_loss_and_grads(v, u, n)
    require(isinstance(actual, (tuple, list)) and len(actual) == 4,
            f"{what} should return (loss, grad v_center, grad u_context, grad u_negatives)")

    def explain():
        if non_finite(actual) and not non_finite(expected):
            return ("-log sigma(s) must be computed stably (logsigmoid, or softplus(-s) = max(-s, 0) + log1p(exp(-|s|))); "
                    "log(sigmoid(s)) is log(0) once sigmoid underflows")
        return matching_variant(actual, sgns_variants(v, u, n))

    with diagnose(explain):
        for name, a, e in zip(NAMES, actual, expected):
            assert_close(a, e, f"{what}: {name} (float64 autograd as the oracle)", tol=tolerance(v.dtype))


@given(seed=hidden_seeds(), B=st.integers(1, 6), K=st.integers(1, 6), d=st.integers(1, 8), dtype=dtypes,
       scale=st.sampled_from([0.1, 0.5, 1.0]))
def test_sgns_matches_autograd(student, seed, B, K, d, dtype, scale):
    v, u, n = (tensors(seed, (B, d), dtype, scale), tensors(seed + 1, (B, d), dtype, scale),
               tensors(seed + 2, (B, K, d), dtype, scale))
    check_sgns(student, v, u, n, f"sgns_loss_and_grads on {dtype} vectors (B, K, d drawn)")


@given(seed=hidden_seeds(), B=st.integers(1, 4), K=st.integers(1, 4), d=st.integers(2, 6),
       scale=st.sampled_from([10.0, 30.0, 100.0]))
def test_sgns_large_scores_stay_finite(student, seed, B, K, d, scale):
    """Scores u.v of several hundred: sigma underflows to 0 in float64 at s < -745."""
    v, u, n = tensors(seed, (B, d), scale=scale), tensors(seed + 1, (B, d), scale=scale), tensors(seed + 2, (B, K, d), scale=scale)
    check_sgns(student, v, u, n, "sgns_loss_and_grads at scores |u.v| in the hundreds")


# ------------------------------------------------------------------ Task 3.1

def rnn_inputs(seed, T, B, D, H, dtype=torch.float64):
    return (tensors(seed, (T, B, D), dtype), tensors(seed + 1, (B, H), dtype), tensors(seed + 2, (D, H), dtype, 0.6),
            tensors(seed + 3, (H, H), dtype, 0.6), tensors(seed + 4, (H,), dtype))


sizes = dict(T=st.integers(1, 8), B=st.integers(1, 4), D=st.integers(1, 5), H=st.integers(1, 5))


@given(seed=hidden_seeds(), dtype=dtypes, **sizes)
def test_rnn_forward_matches_torch_rnn(student, seed, T, B, D, H, dtype):
    inputs = rnn_inputs(seed, T, B, D, H, dtype)
    expected = rnn_torch(*inputs)
    actual = student.rnn_forward(*inputs)
    with diagnose(lambda: matching_variant(actual, rnn_forward_variants(*inputs))):
        assert_close(actual, expected, f"rnn_forward on {dtype} inputs against torch.nn.RNN (tanh) with the same weights",
                     tol=tolerance(dtype))


@given(seed=hidden_seeds(), B=st.integers(1, 3), D=st.integers(1, 4), H=st.integers(1, 4))
def test_rnn_forward_single_step_and_long_sequence(student, seed, B, D, H):
    for T in (1, 40):
        inputs = rnn_inputs(seed + T, T, B, D, H)
        actual = student.rnn_forward(*inputs)
        with diagnose(lambda: matching_variant(actual, rnn_forward_variants(*inputs))):
            assert_close(actual, rnn_torch(*inputs), f"rnn_forward over T={T} steps against torch.nn.RNN")


# ------------------------------------------------------------------ Task 3.2

def check_bptt(student, inputs, dh, what, tol=None):
    h = rnn_torch(*inputs)
    expected = bptt_autograd(*inputs, dh)
    actual = student.rnn_backward(*inputs, h, dh)

    def explain():
        return matching_variant(actual, bptt_variants(*inputs, h, dh)) or bptt_name_variant(actual, expected)

    with diagnose(explain):
        assert_close(actual, expected, f"{what} (float64 autograd as the oracle)", tol=tol)


@given(seed=hidden_seeds(), dtype=dtypes, **sizes)
def test_rnn_backward_matches_autograd(student, seed, T, B, D, H, dtype):
    inputs = rnn_inputs(seed, T, B, D, H, dtype)
    dh = tensors(seed + 5, (T, B, H), dtype)
    check_bptt(student, inputs, dh, f"rnn_backward on {dtype} inputs with dh at every step", tolerance(dtype))


@given(seed=hidden_seeds(), T=st.integers(2, 10), B=st.integers(1, 3), D=st.integers(1, 4), H=st.integers(1, 4))
def test_rnn_backward_loss_on_the_last_step_only(student, seed, T, B, D, H):
    """dh is zero except at t = T: every other gradient arrives through the recurrence."""
    inputs = rnn_inputs(seed, T, B, D, H)
    dh = torch.zeros(T, B, H, dtype=torch.float64)
    dh[-1] = tensors(seed + 5, (B, H))
    check_bptt(student, inputs, dh, "rnn_backward with dLoss/dh_t only at the last step")


# ------------------------------------------------------------------ rules

def backward_kernels(ops):
    return sorted({op.name for op in ops if "backward" in op.name})


AUTOGRAD_RAISED = ("{} raised inside the worker: a ForbiddenCallError there means it reached autograd "
                   "(Tensor.backward, torch.autograd.backward, autograd.Function, torch.func), which a manual "
                   "function may not use")


def test_rules_manual_functions_run_no_autograd(student, probe):
    """Autograd through the forward computation leaves backward kernels in the operator trace
    (aten::tanh_backward, aten::log_sigmoid_backward, ...); the chain rule by hand never does.
    Tensor.backward, autograd.Function, torch.func and functorch raise inside the worker."""
    v, u, n = tensors(2**28, (3, 4)), tensors(2**28 + 1, (3, 4)), tensors(2**28 + 2, (3, 2, 4))
    with diagnose(AUTOGRAD_RAISED.format("sgns_loss_and_grads")):
        results, ops = probe.op_trace(student.sgns_loss_and_grads, v, u, n)
    found = backward_kernels(ops)
    require(not found, "sgns_loss_and_grads is a manual function, but autograd ran inside it (backward kernels "
            f"{', '.join(found)}): write its gradients by hand")
    with diagnose(lambda: matching_variant(results, sgns_variants(v, u, n))):
        for name, a, e in zip(NAMES, results, sgns_autograd(v, u, n)):
            assert_close(a, e, f"sgns_loss_and_grads: {name}")
    inputs = rnn_inputs(2**28 + 3, 4, 2, 3, 3)
    h, dh = rnn_torch(*inputs), tensors(2**28 + 9, (4, 2, 3))
    with diagnose(AUTOGRAD_RAISED.format("rnn_backward")):
        grads, ops = probe.op_trace(student.rnn_backward, *inputs, h, dh)
    found = backward_kernels(ops)
    require(not found, "rnn_backward is a manual function, but autograd ran inside it (backward kernels "
            f"{', '.join(found)}): write backpropagation through time by hand")
    with diagnose(lambda: matching_variant(grads, bptt_variants(*inputs, h, dh))):
        assert_close(grads, bptt_autograd(*inputs, dh), "rnn_backward")


def test_rules_no_library_rnn_or_loss_kernels(student, probe):
    """torch.nn.RNN, torch.rnn_tanh, F.cross_entropy and nll_loss raise inside the worker; the
    operator trace sees the kernels however they are reached."""
    inputs = rnn_inputs(2**28 + 20, 3, 2, 3, 4)
    with diagnose("rnn_forward raised inside the worker: torch.nn.RNN and torch.rnn_tanh are forbidden; "
                  "write the recurrence yourself"):
        out, ops = probe.op_trace(student.rnn_forward, *inputs)
    forbidden = probe.forbidden_ops(ops)
    require(not forbidden, f"rnn_forward ran forbidden kernels: {', '.join(forbidden)}")
    assert_close(out, rnn_torch(*inputs), "rnn_forward")
    logits, targets = tensors(2**28 + 30, (5, 7)), torch.tensor([0, 6, 3, 3, 1])
    try:
        loss, ops = probe.op_trace(student.lm_cross_entropy, logits, targets)
    except StudentError as error:
        raise AssertionError("lm_cross_entropy raised inside the worker; torch.nn.functional.cross_entropy and "
                             f"nll_loss are forbidden ({error.type_name})") from None
    forbidden = probe.forbidden_ops(ops)
    require(not forbidden, f"lm_cross_entropy ran forbidden kernels: {', '.join(forbidden)}; "
            "write logsumexp(z) - z_y with the max-shift yourself")
