"""Public tests of a05_language_models: every task against a public oracle.

Oracles: counting pairs by hand (bigram), torch autograd in float64 (skip-gram gradients,
backpropagation through time), torch.nn.RNN with your weights copied in (RNN forward),
torch.log_softmax (cross-entropy) and the spec's sampling rules written as a Python loop.
The hidden tests check the same things on more shapes, float32, huge magnitudes, edge
parameters, ties and the rules (no autograd in the "manual" functions).
"""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT32, assert_close, require
from autograder.harness.strategies import public_seeds, random_tensor


# ------------------------------------------------------------------ Task 1.1 and 1.2

@given(seed=public_seeds(), V=st.integers(1, 6), T=st.integers(0, 30), alpha=st.sampled_from([0.1, 0.5, 1.0]))
def test_bigram_matches_brute_force_counts(student, seed, V, T, alpha):
    tokens = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(seed))
    counts = [[0] * V for _ in range(V)]
    for current, following in zip(tokens[:-1].tolist(), tokens[1:].tolist()):
        counts[current][following] += 1
    expected = torch.tensor([[math.log((counts[i][j] + alpha) / (sum(counts[i]) + alpha * V)) for j in range(V)]
                             for i in range(V)], dtype=torch.float64).to(torch.get_default_dtype())
    actual = student.bigram_log_probs(tokens, V, alpha)
    assert_close(actual, expected, f"bigram_log_probs(tokens of length {T}, vocab_size={V}, alpha={alpha})", tol=FLOAT32)


@given(seed=public_seeds(), n=st.integers(1, 20))
def test_perplexity_of_log_probs(student, seed, n):
    log_probs = -random_tensor(seed, (n,)).abs() * 3
    expected = math.exp(-float(log_probs.mean()))
    assert_close(float(student.perplexity(log_probs)), expected, f"perplexity of {n} log-probabilities")


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(student):
    log_probs = torch.full((7,), -math.log(50.0), dtype=torch.float64)
    assert_close(float(student.perplexity(log_probs)), 50.0, "perplexity of a uniform model over 50 tokens")


# ------------------------------------------------------------------ Task 2.1

def sgns_autograd(v, u, n):
    v, u, n = (t.detach().clone().requires_grad_(True) for t in (v, u, n))
    loss = -(torch.nn.functional.logsigmoid((u * v).sum(-1))
             + torch.nn.functional.logsigmoid(-(n * v[:, None, :]).sum(-1)).sum(-1)).mean()
    return (loss.detach(), *torch.autograd.grad(loss, (v, u, n)))


@given(seed=public_seeds(), B=st.integers(1, 4), K=st.integers(1, 4), d=st.integers(1, 5))
def test_sgns_matches_autograd(student, seed, B, K, d):
    v, u, n = random_tensor(seed, (B, d)), random_tensor(seed + 1, (B, d)), random_tensor(seed + 2, (B, K, d))
    expected = sgns_autograd(v, u, n)
    actual = student.sgns_loss_and_grads(v, u, n)
    what = f"sgns_loss_and_grads(B={B}, K={K}, d={d})"
    require(isinstance(actual, (tuple, list)) and len(actual) == 4,
            f"{what} should return (loss, grad v_center, grad u_context, grad u_negatives)")
    for name, a, e in zip(("loss", "grad v_center", "grad u_context", "grad u_negatives"), actual, expected):
        assert_close(a, e, f"{what}: {name} (float64 autograd as the oracle)")


# ------------------------------------------------------------------ Task 3.1 and 3.2

def rnn_inputs(seed, T, B, D, H):
    return (random_tensor(seed, (T, B, D)), random_tensor(seed + 1, (B, H)), random_tensor(seed + 2, (D, H), scale=0.5),
            random_tensor(seed + 3, (H, H), scale=0.5), random_tensor(seed + 4, (H,)))


@given(seed=public_seeds(), T=st.integers(1, 5), B=st.integers(1, 3), D=st.integers(1, 4), H=st.integers(1, 4))
def test_rnn_forward_matches_torch_rnn(student, seed, T, B, D, H):
    x, h0, W_xh, W_hh, b_h = rnn_inputs(seed, T, B, D, H)
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", dtype=torch.float64)   # stores the transposed weights
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W_xh.T)
        rnn.weight_hh_l0.copy_(W_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
        expected, _ = rnn(x, h0[None])
    assert_close(student.rnn_forward(x, h0, W_xh, W_hh, b_h), expected, f"rnn_forward(T={T}, B={B}, D={D}, H={H})")


@given(seed=public_seeds(), T=st.integers(2, 5), B=st.integers(1, 3), D=st.integers(1, 4), H=st.integers(1, 4))
def test_rnn_backward_matches_autograd(student, seed, T, B, D, H):
    inputs = rnn_inputs(seed, T, B, D, H)
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    h_t, hidden = leaves[1], []
    for x_t in leaves[0]:
        h_t = torch.tanh(x_t @ leaves[2] + h_t @ leaves[3] + leaves[4])
        hidden.append(h_t)
    h = torch.stack(hidden)
    dh = random_tensor(seed + 5, (T, B, H))                     # dLoss/dh_t at every step
    grads = torch.autograd.grad(h, leaves, dh)
    expected = dict(zip(("x", "h0", "W_xh", "W_hh", "b_h"), grads))
    actual = student.rnn_backward(*inputs, h.detach(), dh)
    assert_close(actual, expected, f"rnn_backward(T={T}, B={B}, D={D}, H={H}) with dh at every step")


# ------------------------------------------------------------------ Task 4.1

def cross_entropy(logits, targets):
    V = logits.shape[-1]
    return -torch.log_softmax(logits.reshape(-1, V), -1).gather(-1, targets.reshape(-1, 1)).mean()


@given(seed=public_seeds(), N=st.integers(1, 6), V=st.integers(2, 8))
def test_cross_entropy_matches_log_softmax(student, seed, N, V):
    logits = random_tensor(seed, (N, V), scale=3.0)
    targets = torch.randint(0, V, (N,), generator=torch.Generator().manual_seed(seed))
    assert_close(student.lm_cross_entropy(logits, targets), cross_entropy(logits, targets),
                 f"lm_cross_entropy(logits ({N}, {V}))")


@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_cross_entropy_large_logits_stay_finite(student, scale):
    logits = random_tensor(5, (4, 6)) * scale
    targets = torch.tensor([0, 3, 5, 1])
    actual = student.lm_cross_entropy(logits, targets)
    require(bool(torch.isfinite(torch.as_tensor(actual)).all()),
            f"lm_cross_entropy at |logits| ~ {scale:g} is not finite: subtract the row maximum before exp (the max-shift)")
    assert_close(actual, cross_entropy(logits, targets), f"lm_cross_entropy at |logits| ~ {scale:g}")


# ------------------------------------------------------------------ Task 5.1

def spec_next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """The spec's rules, one row at a time, with Python's stable sort."""
    out = []
    for row in logits.reshape(-1, logits.shape[-1]).tolist():
        V = len(row)
        if temperature == 0:
            best = max(range(V), key=lambda j: (row[j], -j))
            probs = [float(j == best) for j in range(V)]
        else:
            probs = torch.softmax(torch.tensor(row, dtype=torch.float64) / temperature, -1).tolist()
        if top_k is not None and top_k < V:
            kept = sorted(range(V), key=lambda j: (-probs[j], j))[:top_k]
            probs = [p if j in kept else 0.0 for j, p in enumerate(probs)]
            probs = [p / sum(probs) for p in probs]
        if top_p is not None and top_p < 1:
            mass, kept = 0.0, []
            for j in sorted(range(V), key=lambda j: (-probs[j], j)):
                if not kept or mass < top_p:
                    kept.append(j)
                mass += probs[j]
            probs = [p if j in kept else 0.0 for j, p in enumerate(probs)]
            probs = [p / sum(probs) for p in probs]
        out.append(probs)
    return torch.tensor(out, dtype=torch.float64).reshape(logits.shape)


LOGITS = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0], [0.0, 3.0, 3.0, 1.0, 1.0]], dtype=torch.float64)
CASES = [dict(), dict(temperature=0.5), dict(temperature=2.0), dict(top_k=2), dict(top_k=3),
         dict(top_p=0.6), dict(top_p=0.9), dict(temperature=0.0), dict(top_k=3, top_p=0.7), dict(top_k=10)]


@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_next_token_probs_follow_the_rules(student, options):
    for logits, shape in ((LOGITS, "(B, V)"), (LOGITS[1], "(V,)")):
        assert_close(student.next_token_probs(logits, **options), spec_next_token_probs(logits, **options),
                     f"next_token_probs(logits {shape}, {options})")
