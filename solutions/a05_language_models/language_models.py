"""Assignment 5 (Lecture 6): word embeddings, language models and recurrent networks.

A language model assigns a probability to the next token given the ones before it. This
module builds the pieces of the lecture from the ground up:

    counts          bigram_log_probs   log P(next | current) from counted pairs, add-alpha smoothed
    evaluation      perplexity         exp of the mean negative log-likelihood
    embeddings      sgns_loss_and_grads  word2vec skip-gram with negative sampling, gradients by hand
    recurrence      rnn_forward / rnn_backward  a tanh RNN and backpropagation through time by hand
    neural LM loss  lm_cross_entropy   the stable cross-entropy of next-token logits
    generation      next_token_probs   temperature, top-k and nucleus (top-p) filtering

Functions marked "manual" compute gradients with the chain rule written out: no autograd
(no backward, torch.autograd.grad, autograd.Function, torch.func). Shapes: T time steps,
B batch, D input size, H hidden size, V vocabulary, d embedding size, K negatives.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def bigram_log_probs(tokens: Tensor, vocab_size: int, alpha: float) -> Tensor:
    """log P(next = j | current = i) of an add-alpha smoothed bigram model, as a (V, V) table.

        c_ij = #{t : tokens[t] = i, tokens[t + 1] = j}      (consecutive pairs)
        c_i  = sum_j c_ij                                  (pairs that start with i)
        P(j | i) = (c_ij + alpha) / (c_i + alpha * V)

    Every row sums to one; a token never seen as "current" gets the uniform row 1 / V.
    Returns torch.get_default_dtype() values on the tokens' device.
    """
    # BEGIN SOLUTION Task 1.1: bigram counts with add-alpha smoothing
    V = vocab_size
    pairs = tokens[:-1] * V + tokens[1:]                                   # (T - 1,) flat index i * V + j
    counts = torch.bincount(pairs, minlength=V * V).reshape(V, V)         # (V, V) c_ij
    counts = counts.to(torch.float64)
    row_totals = counts.sum(dim=1, keepdim=True)                          # (V, 1) c_i
    probs = (counts + alpha) / (row_totals + alpha * V)                   # (V, V)
    return probs.log().to(torch.get_default_dtype())
    # END SOLUTION


def perplexity(target_log_probs: Tensor) -> float:
    """exp(-mean(target_log_probs)): the effective number of equally likely choices per token.

    target_log_probs holds log P(x_t | context) of the tokens that actually came (any shape).
    """
    # BEGIN SOLUTION Task 1.2: perplexity
    return math.exp(-float(target_log_probs.double().mean()))
    # END SOLUTION


def sgns_loss_and_grads(v_center: Tensor, u_context: Tensor,
                        u_negatives: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Skip-gram with negative sampling (word2vec), loss and gradients by hand ("manual").

    v_center (B, d) center-word vectors v_c, u_context (B, d) outside vectors u_o of the
    true context words, u_negatives (B, K, d) outside vectors u_k of K sampled words.

        s_o = u_o . v_c,   s_k = u_k . v_c
        loss = (1 / B) sum_b [ -log sigma(s_o) - sum_k log sigma(-s_k) ]

    With d/ds [-log sigma(s)] = -sigma(-s) and d/ds [-log sigma(-s)] = sigma(s):

        dL/dv_c = (1 / B) [ -sigma(-s_o) u_o + sum_k sigma(s_k) u_k ]
        dL/du_o = (1 / B) [ -sigma(-s_o) v_c ]
        dL/du_k = (1 / B) [  sigma(s_k) v_c ]

    -log sigma(s) = softplus(-s) is computed without overflow (logsigmoid), never as
    log(sigmoid(s)), which is log(0) = -inf once sigma(s) underflows.
    Returns (loss as a 0-d tensor, grad v_center, grad u_context, grad u_negatives).
    """
    # BEGIN SOLUTION Task 2.1: skip-gram negative sampling loss and gradients
    B = v_center.shape[0]
    s_pos = (u_context * v_center).sum(dim=-1)                            # (B,)
    s_neg = (u_negatives * v_center[:, None, :]).sum(dim=-1)              # (B, K)
    loss = -(torch.nn.functional.logsigmoid(s_pos)
             + torch.nn.functional.logsigmoid(-s_neg).sum(dim=-1)).mean()
    coef_pos = -torch.sigmoid(-s_pos) / B                                 # (B,)  dL/ds_o
    coef_neg = torch.sigmoid(s_neg) / B                                   # (B, K) dL/ds_k
    grad_v = coef_pos[:, None] * u_context + (coef_neg[:, :, None] * u_negatives).sum(dim=1)   # (B, d)
    grad_u_context = coef_pos[:, None] * v_center                                            # (B, d)
    grad_u_negatives = coef_neg[:, :, None] * v_center[:, None, :]                           # (B, K, d)
    return loss, grad_v, grad_u_context, grad_u_negatives
    # END SOLUTION


def rnn_forward(x: Tensor, h0: Tensor, W_xh: Tensor, W_hh: Tensor, b_h: Tensor) -> Tensor:
    """A vanilla (Elman) RNN with tanh, unrolled over time.

        h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b_h),   t = 1..T

    x (T, B, D), h0 (B, H), W_xh (D, H), W_hh (H, H), b_h (H,). Returns h_1..h_T stacked
    as (T, B, H). (torch.nn.RNN stores the transposes: weight_ih = W_xh^T, weight_hh = W_hh^T.)
    """
    # BEGIN SOLUTION Task 3.1: RNN forward
    hidden = []
    h = h0                                                                # (B, H)
    for x_t in x:                                                         # x_t (B, D)
        h = torch.tanh(x_t @ W_xh + h @ W_hh + b_h)                       # (B, H)
        hidden.append(h)
    return torch.stack(hidden) if hidden else x.new_zeros((0, *h0.shape))  # (T, B, H)
    # END SOLUTION


def rnn_backward(x: Tensor, h0: Tensor, W_xh: Tensor, W_hh: Tensor, b_h: Tensor,
                 h: Tensor, dh: Tensor) -> dict[str, Tensor]:
    """Backpropagation through time for rnn_forward, by hand ("manual").

    h (T, B, H) are rnn_forward's outputs; dh (T, B, H) holds dLoss/dh_t from outside
    (the direct terms only, e.g. from an output layer at every step). Going backwards, the
    total gradient at h_t adds what flows back from step t + 1:

        g_t = dh_t + a_{t+1} @ W_hh^T          (g_T = dh_T)
        a_t = g_t * (1 - h_t ** 2)             (tanh' = 1 - tanh^2, at the pre-activation)
        dW_xh = sum_t x_t^T @ a_t,   dW_hh = sum_t h_{t-1}^T @ a_t,   db_h = sum_t sum_b a_t
        dx_t  = a_t @ W_xh^T,        dh0   = a_1 @ W_hh^T

    Returns {"x": (T, B, D), "h0": (B, H), "W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}.
    """
    # BEGIN SOLUTION Task 3.2: backpropagation through time
    grad_x = torch.zeros_like(x)                                          # (T, B, D)
    grad_W_xh = torch.zeros_like(W_xh)                                    # (D, H)
    grad_W_hh = torch.zeros_like(W_hh)                                    # (H, H)
    grad_b = torch.zeros_like(b_h)                                        # (H,)
    from_later = torch.zeros_like(h0)                                     # (B, H) a_{t+1} @ W_hh^T
    for t in reversed(range(x.shape[0])):
        a = (dh[t] + from_later) * (1 - h[t] ** 2)                        # (B, H)
        h_prev = h[t - 1] if t > 0 else h0                                # (B, H)
        grad_W_xh = grad_W_xh + x[t].T @ a
        grad_W_hh = grad_W_hh + h_prev.T @ a
        grad_b = grad_b + a.sum(dim=0)
        grad_x[t] = a @ W_xh.T                                            # (B, D)
        from_later = a @ W_hh.T                                           # (B, H)
    return {"x": grad_x, "h0": from_later, "W_xh": grad_W_xh, "W_hh": grad_W_hh, "b_h": grad_b}
    # END SOLUTION


def lm_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean negative log-likelihood of the targets under softmax(logits), computed stably.

    logits (..., V), targets (...) int64 in [0, V). With m = max_j z_j (the max-shift),

        -log softmax(z)_y = logsumexp(z) - z_y = m + log sum_j exp(z_j - m) - z_y

    Every exp(z_j - m) is in (0, 1] and one of them is 1, so nothing overflows and the log
    never sees 0, even at |z| = 1e4. Returns a 0-d tensor that autograd differentiates
    (its gradient w.r.t. the logits is (softmax(z) - onehot(y)) / N).
    """
    # BEGIN SOLUTION Task 4.1: stable cross-entropy
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)                                          # (N, V)
    flat_targets = targets.reshape(-1, 1)                                 # (N, 1)
    shift = flat.max(dim=-1, keepdim=True).values.detach()                # (N, 1) m; its gradient cancels
    log_normaliser = shift + (flat - shift).exp().sum(dim=-1, keepdim=True).log()   # (N, 1) logsumexp
    target_logits = flat.gather(-1, flat_targets)                         # (N, 1) z_y
    return (log_normaliser - target_logits).mean()
    # END SOLUTION


def next_token_probs(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> Tensor:
    """The distribution a sampler draws the next token from: temperature, then top-k, then top-p.

    logits (V,) or (B, V); the result has the same shape and dtype.
      temperature == 0: the one-hot of the argmax (lowest index on ties: greedy decoding);
      otherwise softmax(logits / temperature) (T < 1 sharpens, T > 1 flattens).
      top_k: keep the k most probable tokens (ties broken by lower index), zero the rest,
        renormalise; k >= V keeps everything.
      top_p < 1 (nucleus): sort those probabilities descending (stable, so ties keep index
        order); keep a token if the probability mass of the tokens before it is < top_p
        (the first is always kept), zero the rest, renormalise.
    """
    # BEGIN SOLUTION Task 5.1: temperature, top-k and nucleus sampling distribution
    rows = logits.reshape(-1, logits.shape[-1])                           # (B, V)
    if temperature == 0:
        probs = torch.zeros_like(rows)
        probs.scatter_(-1, rows.argmax(dim=-1, keepdim=True), 1.0)        # argmax: first maximum
    else:
        probs = torch.softmax(rows / temperature, dim=-1)                 # (B, V)
    if top_k is not None and top_k < rows.shape[-1]:
        order = probs.sort(dim=-1, descending=True, stable=True).indices  # (B, V) ties: lower index first
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order[:, :top_k], True)
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    if top_p is not None and top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)   # (B, V)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs                 # (B, V) exclusive cumsum
        keep_sorted = mass_before < top_p
        keep_sorted[:, 0] = True
        keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs.reshape(logits.shape)
    # END SOLUTION
