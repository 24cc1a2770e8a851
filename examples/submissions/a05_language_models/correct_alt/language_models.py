"""a05 in another style: einsum and logsumexp, Python loops for the counts, softplus by hand,
BPTT with lists, and sampling masks built from ranks."""
import math

import torch
import torch.nn.functional as F


def bigram_log_probs(tokens, vocab_size, alpha):
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    ids = tokens.tolist()
    for a, b in zip(ids, ids[1:]):
        counts[a, b] += 1
    table = torch.log(counts + alpha) - torch.log(counts.sum(1, keepdim=True) + alpha * vocab_size)
    return table.to(torch.get_default_dtype())


def perplexity(target_log_probs):
    nll = -target_log_probs.to(torch.float64).sum() / target_log_probs.numel()
    return float(torch.exp(nll))


def _softplus(s):
    return torch.clamp(s, min=0) + torch.log1p(torch.exp(-s.abs()))


def sgns_loss_and_grads(v_center, u_context, u_negatives):
    B = v_center.shape[0]
    pos = torch.einsum("bd,bd->b", u_context, v_center)
    neg = torch.einsum("bkd,bd->bk", u_negatives, v_center)
    loss = (_softplus(-pos).sum() + _softplus(neg).sum()) / B
    d_pos = -torch.sigmoid(-pos) / B
    d_neg = torch.sigmoid(neg) / B
    grad_v = torch.einsum("b,bd->bd", d_pos, u_context) + torch.einsum("bk,bkd->bd", d_neg, u_negatives)
    grad_u = torch.einsum("b,bd->bd", d_pos, v_center)
    grad_n = torch.einsum("bk,bd->bkd", d_neg, v_center)
    return loss, grad_v, grad_u, grad_n


def rnn_forward(x, h0, W_xh, W_hh, b_h):
    inputs = torch.einsum("tbd,dh->tbh", x, W_xh) + b_h
    states = []
    h = h0
    for t in range(x.shape[0]):
        h = torch.tanh(inputs[t] + torch.einsum("bh,hk->bk", h, W_hh))
        states.append(h)
    return torch.stack(states)


def rnn_backward(x, h0, W_xh, W_hh, b_h, h, dh):
    T = x.shape[0]
    previous = torch.cat([h0[None], h[:-1]])             # h_{t-1} for t = 1..T
    pre_grads = [None] * T
    carry = torch.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        pre_grads[t] = (dh[t] + carry) * (1 - h[t] * h[t])
        carry = torch.einsum("bk,hk->bh", pre_grads[t], W_hh)
    a = torch.stack(pre_grads)
    return {
        "x": torch.einsum("tbh,dh->tbd", a, W_xh),
        "h0": carry,
        "W_xh": torch.einsum("tbd,tbh->dh", x, a),
        "W_hh": torch.einsum("tbk,tbh->kh", previous, a),
        "b_h": a.sum(dim=(0, 1)),
    }


def lm_cross_entropy(logits, targets):
    z = logits.flatten(0, -2) if logits.dim() > 1 else logits[None]
    y = targets.flatten()
    picked = z[torch.arange(z.shape[0]), y]
    return (torch.logsumexp(z, dim=-1) - picked).mean()


def _keep_top(probs, count):
    """A mask of the `count` largest per row, ties to the lower index (rank by value, then index)."""
    V = probs.shape[-1]
    index = torch.arange(V)
    beats = (probs[:, None, :] > probs[:, :, None]) | ((probs[:, None, :] == probs[:, :, None]) & (index[None, :] < index[:, None])[None])
    rank = beats.sum(-1)                                   # how many tokens come before each token
    return rank < count, rank


def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    squeeze = logits.dim() == 1
    z = logits[None] if squeeze else logits
    V = z.shape[-1]
    if temperature == 0:
        first = (z == z.max(-1, keepdim=True).values).to(torch.int64).argmax(-1)
        p = F.one_hot(first, V).to(z.dtype)
    else:
        p = torch.softmax(z / temperature, dim=-1)
    if top_k is not None and top_k < V:
        keep, _ = _keep_top(p, top_k)
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum(-1, keepdim=True)
    if top_p is not None and top_p < 1:
        _, rank = _keep_top(p, V)
        order = rank.argsort(-1)
        ranked = p.gather(-1, order)
        before = torch.cat([torch.zeros_like(ranked[:, :1]), ranked.cumsum(-1)[:, :-1]], dim=-1)
        keep_ranked = before < top_p
        keep_ranked[:, 0] = True
        keep = keep_ranked.gather(-1, rank)
        p = torch.where(keep, p, torch.zeros_like(p))
        p = p / p.sum(-1, keepdim=True)
    return p[0] if squeeze else p
