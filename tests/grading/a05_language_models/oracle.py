"""Trusted oracles for a05's hidden tests, the known-bug variants their diagnoses compare
against, and the strategies they draw from.

Oracles are independent of the reference: brute-force counting for the bigram model,
torch autograd in float64 for the skip-gram loss and backpropagation through time,
torch.nn.RNN with copied weights for the forward pass, torch's log_softmax for the
cross-entropy and a per-row Python loop for the sampling distribution.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from autograder.harness import StudentError, require
from autograder.harness.strategies import hidden_seeds, random_tensor


# --------------------------------------------------------------------------- Task 1: counts

def bigram_counts(tokens: list[int], V: int) -> np.ndarray:
    """c[i, j] = number of t with tokens[t] = i and tokens[t + 1] = j, by brute force."""
    counts = np.zeros((V, V), dtype=np.int64)
    for current, following in zip(tokens[:-1], tokens[1:]):
        counts[current, following] += 1
    return counts


def bigram_table(tokens: list[int], V: int, alpha: float, *, denominator_alpha: float | None = None,
                 row_counts: str = "pairs", transpose: bool = False, wrap: bool = False,
                 dtype=torch.float64) -> torch.Tensor:
    """log (c_ij + alpha) / (c_i + alpha V); the keyword arguments build the known bugs."""
    stream = list(tokens) + ([tokens[0]] if wrap and tokens else [])
    counts = bigram_counts(stream, V).astype(np.float64)
    if transpose:
        counts = counts.T
    if row_counts == "pairs":
        totals = counts.sum(axis=1, keepdims=True)
    else:  # occurrences of each token anywhere in the stream
        totals = np.bincount(np.asarray(stream, dtype=np.int64), minlength=V).astype(np.float64)[:, None]
    extra = alpha * V if denominator_alpha is None else denominator_alpha
    return torch.from_numpy(np.log((counts + alpha) / (totals + extra))).to(dtype)


@contextlib.contextmanager
def default_dtype(student, dtype: torch.dtype) -> Iterator[None]:
    """Run student calls with torch's default dtype set to `dtype` inside the worker.

    Reached through the `torch` name of the student's module (the stub imports it); the
    worker's previous default is restored afterwards.
    """
    try:
        worker_torch = student.value_of("torch")
    except StudentError:
        worker_torch = None
    require(worker_torch is not None and not isinstance(worker_torch, (int, float, str, bytes)),
            "could not set torch's default dtype for this test: keep `import torch` at the top of "
            "language_models.py, as the stub has it")
    before = worker_torch.get_default_dtype()
    worker_torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        worker_torch.set_default_dtype(before)


# --------------------------------------------------------------------------- Task 2: skip-gram

def sgns_autograd(v_center, u_context, u_negatives, *, naive: bool = False):
    """(loss, dv, du_o, du_neg) by torch autograd in float64, cast back to the input dtype."""
    dtype = v_center.dtype
    v, u, n = (t.detach().double().requires_grad_(True) for t in (v_center, u_context, u_negatives))
    s_pos = (u * v).sum(-1)
    s_neg = (n * v[:, None, :]).sum(-1)
    if naive:
        loss = -(torch.log(torch.sigmoid(s_pos)) + torch.log(torch.sigmoid(-s_neg)).sum(-1)).mean()
    else:
        loss = -(F.logsigmoid(s_pos) + F.logsigmoid(-s_neg).sum(-1)).mean()
    grads = torch.autograd.grad(loss, (v, u, n))
    return tuple(t.detach().to(dtype) for t in (loss, *grads))


def sgns_variants(v_center, u_context, u_negatives) -> dict[str, tuple]:
    """Known bugs of the skip-gram task, each as the four returned values."""
    loss, dv, du, dn = sgns_autograd(v_center, u_context, u_negatives)
    B = v_center.shape[0]
    variants = {
        "the gradients are not divided by the batch size B (the loss is a mean over the batch)": (loss, dv * B, du * B, dn * B),
        "the gradients are divided by the batch size twice": (loss, dv / B, du / B, dn / B),
        "the loss sums over the batch instead of taking the mean": (loss * B, dv, du, dn),
        "the gradient w.r.t. u_context has the wrong sign (d/ds[-log sigma(s)] = -sigma(-s))": (loss, dv, -du, dn),
        "the gradients w.r.t. the negatives have the wrong sign (d/ds[-log sigma(-s)] = +sigma(s))": (loss, dv, du, -dn),
        "the gradient w.r.t. v_center leaves out the negative samples' sum_k sigma(s_k) u_k":
            (loss, dv - sgns_negative_part(v_center, u_negatives), du, dn),
    }
    return variants


def sgns_negative_part(v_center, u_negatives):
    s_neg = (u_negatives.double() * v_center.double()[:, None, :]).sum(-1)
    part = (torch.sigmoid(s_neg)[:, :, None] * u_negatives.double()).sum(1) / v_center.shape[0]
    return part.to(v_center.dtype)


# --------------------------------------------------------------------------- Task 3: RNN

def rnn_torch(x, h0, W_xh, W_hh, b_h) -> torch.Tensor:
    """torch.nn.RNN (tanh) with the spec's weights copied in: nn.RNN computes
    x_t W_ih^T + b_ih + h W_hh^T + b_hh, so W_ih = W_xh^T, W_hh(torch) = W_hh^T, b_hh = 0."""
    T, B, D = x.shape
    H = h0.shape[-1]
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", bias=True, dtype=x.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W_xh.T)
        rnn.weight_hh_l0.copy_(W_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
        out, _ = rnn(x, h0[None])
    return out.detach()


def rnn_loop(x, h0, W_xh, W_hh, b_h, *, use_bias=True, use_h0=True, include_h0=False,
             transpose_hh=False) -> torch.Tensor:
    """The recurrence written out; the keyword arguments build the known bugs."""
    h = h0 if use_h0 else torch.zeros_like(h0)
    out = [h] if include_h0 else []
    W = W_hh.T if transpose_hh else W_hh
    for x_t in x:
        h = torch.tanh(x_t @ W_xh + h @ W + (b_h if use_bias else 0))
        out.append(h)
    out = out[:x.shape[0]]
    return torch.stack(out)


def rnn_forward_variants(x, h0, W_xh, W_hh, b_h) -> dict[str, torch.Tensor]:
    return {
        "the bias b_h is left out of the recurrence": rnn_loop(x, h0, W_xh, W_hh, b_h, use_bias=False),
        "the initial state h0 is ignored (the recurrence starts from zeros)": rnn_loop(x, h0, W_xh, W_hh, b_h, use_h0=False),
        "the output holds h_0..h_{T-1} instead of h_1..h_T": rnn_loop(x, h0, W_xh, W_hh, b_h, include_h0=True),
        "W_hh is applied transposed (the spec multiplies h_{t-1} @ W_hh)": rnn_loop(x, h0, W_xh, W_hh, b_h, transpose_hh=True),
    }


def bptt_autograd(x, h0, W_xh, W_hh, b_h, dh) -> dict[str, torch.Tensor]:
    """Gradients of sum_t <h_t, dh_t> through the recurrence, by autograd in float64."""
    dtype = x.dtype
    leaves = [t.detach().double().requires_grad_(True) for t in (x, h0, W_xh, W_hh, b_h)]
    h = rnn_loop(*leaves)
    grads = torch.autograd.grad(h, leaves, dh.double())
    return {name: g.to(dtype) for name, g in zip(("x", "h0", "W_xh", "W_hh", "b_h"), grads)}


def bptt_manual(x, h0, W_xh, W_hh, b_h, h, dh, *, carry=True, derivative_at="h_t", prev="h_prev",
                h0_times_w=True) -> dict[str, torch.Tensor]:
    """BPTT written out (float64); the keyword arguments build the known bugs."""
    x, h0, W_xh, W_hh, b_h, h, dh = (t.double() for t in (x, h0, W_xh, W_hh, b_h, h, dh))
    gx, gWx, gWh, gb = torch.zeros_like(x), torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b_h)
    later = torch.zeros_like(h0)
    a = torch.zeros_like(h0)
    for t in reversed(range(x.shape[0])):
        h_prev = h[t - 1] if t > 0 else h0
        at = h[t] if derivative_at == "h_t" else h_prev
        a = (dh[t] + (later if carry else 0)) * (1 - at ** 2)
        gWx = gWx + x[t].T @ a
        gWh = gWh + (h_prev if prev == "h_prev" else h[t]).T @ a
        gb = gb + a.sum(0)
        gx[t] = a @ W_xh.T
        later = a @ W_hh.T
    return {"x": gx, "h0": later if h0_times_w else a, "W_xh": gWx, "W_hh": gWh, "b_h": gb}


def bptt_variants(x, h0, W_xh, W_hh, b_h, h, dh) -> dict[str, dict]:
    dtype = x.dtype
    cast = lambda grads: {k: v.to(dtype) for k, v in grads.items()}  # noqa: E731
    return {
        "no gradient flows back through time: g_t must add a_{t+1} @ W_hh^T to dh_t":
            cast(bptt_manual(x, h0, W_xh, W_hh, b_h, h, dh, carry=False)),
        "the tanh derivative is taken at h_{t-1} instead of h_t (tanh'(a_t) = 1 - h_t^2)":
            cast(bptt_manual(x, h0, W_xh, W_hh, b_h, h, dh, derivative_at="h_prev")),
        "dW_hh pairs a_t with h_t instead of h_{t-1}":
            cast(bptt_manual(x, h0, W_xh, W_hh, b_h, h, dh, prev="h_t")),
        "the gradient w.r.t. h0 misses the last multiplication by W_hh^T (dh0 = a_1 @ W_hh^T)":
            cast(bptt_manual(x, h0, W_xh, W_hh, b_h, h, dh, h0_times_w=False)),
    }


def bptt_name_variant(grads: dict, expected: dict) -> str | None:
    """Which returned gradient is off, when only some are."""
    if not isinstance(grads, dict) or set(grads) != set(expected):
        return None
    wrong = [k for k in expected if not (isinstance(grads[k], torch.Tensor) and grads[k].shape == expected[k].shape
                                         and torch.allclose(grads[k].double(), expected[k].double(), rtol=1e-6, atol=1e-8))]
    if wrong and len(wrong) < len(expected):
        return f"only the gradients {', '.join(repr(k) for k in wrong)} differ from autograd's"
    return None


# --------------------------------------------------------------------------- Task 4: cross-entropy

def cross_entropy_oracle(logits, targets) -> torch.Tensor:
    """mean of -log_softmax(logits)[target], in float64 then cast back."""
    V = logits.shape[-1]
    log_probs = torch.log_softmax(logits.double().reshape(-1, V), dim=-1)
    return (-log_probs.gather(-1, targets.reshape(-1, 1)).mean()).to(logits.dtype)


def cross_entropy_gradient(logits, targets) -> torch.Tensor:
    """(softmax(z) - onehot(y)) / N, by autograd in float64."""
    z = logits.detach().double().requires_grad_(True)
    (grad,) = torch.autograd.grad(cross_entropy_oracle(z, targets), z)
    return grad.to(logits.dtype)


def cross_entropy_variants(logits, targets) -> dict[str, torch.Tensor]:
    V = logits.shape[-1]
    flat, t = logits.double().reshape(-1, V), targets.reshape(-1, 1)
    nll = -torch.log_softmax(flat, -1).gather(-1, t)
    naive = (flat.exp().sum(-1, keepdim=True).log() - flat.gather(-1, t)).mean()
    return {
        "the loss sums over positions instead of taking the mean": nll.sum().to(logits.dtype),
        "softmax without the max-shift: exp overflows (subtract max_j z_j before exponentiating)": naive.to(logits.dtype),
    }


# --------------------------------------------------------------------------- Task 5: sampling

def next_token_oracle(logits, temperature=1.0, top_k=None, top_p=None, *, keep_ties=False, inclusive=False,
                      renormalise_before_nucleus=True, zero_temperature="argmax") -> torch.Tensor:
    """The spec's rules, one row at a time in float64 with Python sorting; the keyword
    arguments build the known bugs. Returns the input's shape and dtype."""
    rows = logits.double().reshape(-1, logits.shape[-1])
    out = []
    for row in rows:
        values = row.tolist()
        V = len(values)
        if temperature == 0:
            if zero_temperature == "argmax":
                best = max(range(V), key=lambda j: (values[j], -j))
                probs = [1.0 if j == best else 0.0 for j in range(V)]
            elif zero_temperature == "last":
                best = max(range(V), key=lambda j: (values[j], j))
                probs = [1.0 if j == best else 0.0 for j in range(V)]
            else:  # spread over every tied maximum (a tiny temperature)
                top = max(values)
                count = sum(v == top for v in values)
                probs = [1.0 / count if v == top else 0.0 for v in values]
        else:
            probs = torch.softmax(torch.tensor(values, dtype=torch.float64) / temperature, -1).tolist()
        if top_k is not None and top_k < V:
            order = sorted(range(V), key=lambda j: (-probs[j], j))
            kept = set(order[:top_k])
            if keep_ties:
                kth = probs[order[top_k - 1]]
                kept |= {j for j in range(V) if probs[j] >= kth}
            probs = [p if j in kept else 0.0 for j, p in enumerate(probs)]
            if renormalise_before_nucleus:
                total = sum(probs)
                probs = [p / total for p in probs]
        if top_p is not None and top_p < 1:
            order = sorted(range(V), key=lambda j: (-probs[j], j))
            mass, kept = 0.0, set()
            for rank, j in enumerate(order):
                if rank == 0 or (mass + probs[j] < top_p if inclusive else mass < top_p):
                    kept.add(j)
                mass += probs[j]
            probs = [p if j in kept else 0.0 for j, p in enumerate(probs)]
        total = sum(probs)
        out.append([p / total for p in probs])
    return torch.tensor(out, dtype=torch.float64).reshape(logits.shape).to(logits.dtype)


def nucleus_margin(logits, temperature, top_k, top_p) -> float:
    """The distance of the nearest cumulative sum to top_p (the spec lets graders avoid < 1e-9)."""
    if top_p is None or top_p >= 1:
        return math.inf
    probs = next_token_oracle(logits.double(), temperature, top_k, None)
    rows = probs.reshape(-1, probs.shape[-1])
    sorted_rows = rows.sort(dim=-1, descending=True).values
    return float((sorted_rows.cumsum(-1) - top_p).abs().min())


def ranking_margin(logits, temperature) -> float:
    """The smallest gap between two distinct probabilities of a row: below float32's rounding,
    top-k's choice would depend on the arithmetic rather than on the rule."""
    if temperature == 0:
        return math.inf
    probs = torch.softmax(logits.double().reshape(-1, logits.shape[-1]) / temperature, -1)
    gaps = probs.sort(dim=-1).values.diff(dim=-1)
    gaps = gaps[gaps > 0]
    return float(gaps.min() / probs.max()) if gaps.numel() else math.inf


def next_token_variants(logits, temperature, top_k, top_p) -> dict[str, torch.Tensor]:
    call = lambda **bug: next_token_oracle(logits, temperature, top_k, top_p, **bug)  # noqa: E731
    return {
        "top-p must see the probabilities renormalised after top-k": call(renormalise_before_nucleus=False),
        "nucleus: a token is kept while the mass *before* it is < top_p; yours also drops the token that crosses top_p":
            call(inclusive=True),
        "top-k keeps every token tied with the k-th; ties must be broken by lower index (exactly k kept)":
            call(keep_ties=True),
        "temperature 0 must give the one-hot of the first maximum (lowest index on ties)": call(zero_temperature="last"),
        "temperature 0 must give a one-hot, not spread probability over tied maxima": call(zero_temperature="spread"),
    }


# --------------------------------------------------------------------------- comparing variants

def close(actual, expected, rtol=1e-6, atol=1e-9) -> bool:
    """Loose agreement, for diagnoses: True when every entry matches (dicts and tuples too)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(actual) == set(expected) and all(close(actual[k], expected[k], rtol, atol) for k in expected)
    if isinstance(expected, (tuple, list)):
        return isinstance(actual, (tuple, list)) and len(actual) == len(expected) and all(
            close(a, e, rtol, atol) for a, e in zip(actual, expected))
    actual = torch.as_tensor(actual).double()
    expected = torch.as_tensor(expected).double()
    return actual.shape == expected.shape and bool(torch.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True))


def matching_variant(actual, variants: dict) -> str | None:
    """The sentence of the first known bug the student's result matches."""
    for sentence, value in variants.items():
        try:
            if close(actual, value):
                return sentence
        except Exception:  # noqa: BLE001 - a malformed result matches no variant
            continue
    return None


def non_finite(value) -> bool:
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, torch.Tensor) and not bool(torch.isfinite(v).all()) for v in values)


# --------------------------------------------------------------------------- strategies

@st.composite
def token_streams(draw, max_vocab: int = 8, max_length: int = 60) -> tuple[torch.Tensor, int]:
    """(tokens (T,) int64, V): T from 0 up, some tokens never appear, some only last."""
    V = draw(st.integers(1, max_vocab))
    T = draw(st.integers(0, max_length))
    seed = draw(hidden_seeds())
    used = draw(st.integers(1, V))
    tokens = np.random.default_rng(seed).integers(0, used, T)
    return torch.from_numpy(tokens.astype(np.int64)), V


def tensors(seed: int, shape, dtype=torch.float64, scale: float = 1.0) -> torch.Tensor:
    return random_tensor(seed, shape, dtype=dtype, scale=scale)
