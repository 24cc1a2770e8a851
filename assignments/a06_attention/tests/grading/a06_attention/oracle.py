"""Trusted oracles for a06_attention: torch's own attention, and known-bug variants for diagnoses.

Trusted side only (student code may not call these library functions; the suite may).
- `attention_oracle`: F.scaled_dot_product_attention. It refuses a mask and is_causal at
  once, so the mask is combined with the causal mask here; a query row with no key
  allowed is computed with a dummy all-True row and then set to zeros (what the spec asks;
  torch versions differ there: NaN or zeros).
- `torch_attention`: nn.MultiheadAttention (batch_first) run through torch.func.functional_call
  on the spec's separate q/k/v/out projections (concatenated into its in_proj), so the
  gradients land on the spec's parameter names. Its boolean masks mean the opposite
  (True = may NOT attend) and its (B*H, Lq, Lk) masks are batch-major; both handled here.
  Fully masked rows again use a dummy row and then out_proj's bias (attention gives zeros).
- `block_oracle`, `decoder_oracle`: the pre-LN blocks written with torch functionals.
- `*_variant`: the same maths with one plausible bug switched on, for diagnoses only.
"""
from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.harness import StudentError, assert_close, diagnose, require
from autograder.harness.strategies import random_tensor

# ----------------------------------------------------------------------------- masks


def top_left_causal(Lq: int, Lk: int) -> Tensor:
    """True where key j <= query i (the spec's alignment)."""
    return torch.arange(Lk)[None, :] <= torch.arange(Lq)[:, None]


def bottom_right_causal(Lq: int, Lk: int) -> Tensor:
    """The other convention (flash-attn, KV caches): the last query sees the last key."""
    return torch.ones(Lq, Lk, dtype=torch.bool).tril(diagonal=Lk - Lq)


def allowed_keys(batch: tuple, Lq: int, Lk: int, mask: Tensor | None, is_causal: bool,
                 causal=top_left_causal) -> Tensor:
    """The combined boolean mask, broadcast to (*batch, Lq, Lk)."""
    allowed = torch.ones(*batch, Lq, Lk, dtype=torch.bool)
    allowed = allowed if mask is None else allowed & mask
    if is_causal:
        allowed = allowed & causal(Lq, Lk)
    return allowed


def with_dummy_rows(allowed: Tensor) -> tuple[Tensor, Tensor]:
    """(allowed with every fully masked row made all-True, the (..., Lq, 1) rows that were empty)."""
    empty = ~allowed.any(dim=-1, keepdim=True)
    return allowed | empty, empty


# ----------------------------------------------------------------------------- attention


def attention_oracle(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, is_causal: bool = False,
                     scale: float | None = None, causal=top_left_causal) -> Tensor:
    """torch's scaled_dot_product_attention with the spec's mask rules; differentiable."""
    Lq, Lk = q.size(-2), k.size(-2)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    allowed, empty = with_dummy_rows(allowed_keys(tuple(batch), Lq, Lk, mask, is_causal, causal))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    return out.masked_fill(empty, 0.0)


def attention_variant(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, is_causal: bool = False,
                      scale: float | None = None, *, causal=top_left_causal, scale_zero_is_default: bool = False,
                      scale_by_dv: bool = False, causal_replaces_mask: bool = False,
                      empty_rows: str = "zeros") -> Tensor:
    """attention_oracle with one bug: the scale, the causal alignment, the mask combination, or
    what a fully masked row gives ("zeros", "mean": a finite -1e9 fill, "nan": no guard)."""
    Lq, Lk = q.size(-2), k.size(-2)
    if scale_zero_is_default and not scale:
        scale = None
    if scale is None:
        scale = 1.0 / math.sqrt(v.shape[-1] if scale_by_dv else q.shape[-1])
    if causal_replaces_mask and is_causal:
        mask = None
    batch = tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]))
    allowed = allowed_keys(batch, Lq, Lk, mask, is_causal, causal)
    fixed, empty = with_dummy_rows(allowed)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=fixed, scale=scale)
    if empty_rows == "zeros":
        return out.masked_fill(empty, 0.0)
    if empty_rows == "mean":
        return torch.where(empty, v.mean(dim=-2, keepdim=True).expand_as(out), out)
    return out.masked_fill(empty, float("nan"))


def positions_oracle(seq_len: int, d_model: int, layout: str = "interleaved") -> Tensor:
    """The sinusoidal table in float64, cast to float32. layout "halves" puts every sin first,
    "swapped" puts cos on the even columns (two common bugs)."""
    p = torch.arange(seq_len, dtype=torch.float64)[:, None]
    angle = p / 10000.0 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    sin, cos = torch.sin(angle), torch.cos(angle)
    if layout == "halves":
        return torch.cat([sin, cos], dim=1).float()
    if layout == "swapped":
        sin, cos = cos, sin
    return torch.stack([sin, cos], dim=-1).reshape(seq_len, d_model).float()


# ----------------------------------------------------------------------------- modules

MHA_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj")


def mha_state(seed: int, d_model: int, bias: bool = True, prefix: str = "", dtype=torch.float64) -> dict[str, Tensor]:
    """A random MultiHeadAttention state_dict under the spec's names (weights ~ N(0, 1/d_model))."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name in MHA_NAMES:
        state[f"{prefix}{name}.weight"] = torch.randn(d_model, d_model, generator=generator, dtype=dtype) / math.sqrt(d_model)
        if bias:
            state[f"{prefix}{name}.bias"] = 0.3 * torch.randn(d_model, generator=generator, dtype=dtype)
    return state


def randomised(state: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Fresh values for every entry of a state_dict (same names, shapes, dtype): weights
    ~ N(0, 1/fan_in), biases ~ N(0, 0.3^2), LayerNorm weights 1 + N(0, 0.3^2) (not torch's 1 and 0,
    which would hide a missing or swapped LayerNorm)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in state.items():
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
        if name.startswith("ln") and name.endswith(".weight"):
            value = 1.0 + 0.3 * noise
        elif name.endswith(".weight"):
            value = noise / math.sqrt(tensor.shape[-1])
        else:
            value = 0.3 * noise
        out[name] = value.to(tensor.dtype)
    return out


def _template(d_model: int, n_heads: int, bias: bool, dtype) -> torch.nn.MultiheadAttention:
    return torch.nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True, dtype=dtype)


def torch_attention(params: dict[str, Tensor], prefix: str, x: Tensor, memory: Tensor | None, mask: Tensor | None,
                    is_causal: bool, n_heads: int) -> Tensor:
    """nn.MultiheadAttention with the spec's weights (differentiable w.r.t. `params` and the inputs).

    mask: the spec's (Lq, Lk), (B, Lq, Lk) or (B, H, Lq, Lk), True = may attend.
    """
    B, Lq, D = x.shape
    source = memory if memory is not None else x
    Lk = source.size(1)
    weight = lambda name: params[f"{prefix}{name}.weight"]                  # noqa: E731
    bias = f"{prefix}q_proj.bias" in params
    if mask is not None and mask.ndim == 3:
        mask = mask.unsqueeze(1)                                                # per batch element
    allowed = allowed_keys((B, n_heads), Lq, Lk, mask, is_causal)          # (B, H, Lq, Lk)
    fixed, empty = with_dummy_rows(allowed)
    module_params = {"in_proj_weight": torch.cat([weight("q_proj"), weight("k_proj"), weight("v_proj")]),
                     "out_proj.weight": weight("out_proj")}
    if bias:
        module_params["in_proj_bias"] = torch.cat([params[f"{prefix}{n}.bias"] for n in ("q_proj", "k_proj", "v_proj")])
        module_params["out_proj.bias"] = params[f"{prefix}out_proj.bias"]
    template = _template(D, n_heads, bias, x.dtype)
    out, _ = torch.func.functional_call(template, module_params, (x, source, source),
                                        {"attn_mask": ~fixed.reshape(B * n_heads, Lq, Lk), "need_weights": False})
    # A query with no key: zero attention, so out_proj's bias alone (zeros without bias).
    empty_rows = empty.all(dim=1)                                           # (B, Lq, 1): empty for every head
    if empty.any():
        fallback = params[f"{prefix}out_proj.bias"] if bias else torch.zeros(D, dtype=x.dtype)
        if bool((empty.any(dim=1) != empty_rows).any()):                   # empty for some heads only
            return mha_variant(params, prefix, x, memory, mask, is_causal, n_heads)
        out = torch.where(empty_rows, fallback.expand_as(out), out)
    return out


def mha_variant(params: dict[str, Tensor], prefix: str, x: Tensor, memory: Tensor | None, mask: Tensor | None,
                is_causal: bool, n_heads: int, *, head_split: str = "contiguous", concat_transposed: bool = True,
                mask3d_per_head: bool = False, causal=top_left_causal) -> Tensor:
    """Multi-head attention written out (for heads masked differently, and for diagnoses), with
    one bug switchable: heads as strided slices ("strided"), heads concatenated without the
    transpose back, or a (B, Lq, Lk) mask broadcast against the heads axis instead of the batch."""
    B, Lq, D = x.shape
    source = memory if memory is not None else x
    Lk, H = source.shape[1], n_heads
    dh = D // H
    bias = f"{prefix}q_proj.bias" in params

    def project(name: str, t: Tensor) -> Tensor:
        return F.linear(t, params[f"{prefix}{name}.weight"], params[f"{prefix}{name}.bias"] if bias else None)

    def split(t: Tensor, L: int) -> Tensor:
        if head_split == "strided":
            return t.view(B, L, dh, H).permute(0, 3, 1, 2)                  # (B, H, L, dh)
        return t.view(B, L, H, dh).transpose(1, 2)

    q, k, v = split(project("q_proj", x), Lq), split(project("k_proj", source), Lk), split(project("v_proj", source), Lk)
    if mask is not None and mask.dim() == 3 and not mask3d_per_head:
        mask = mask.unsqueeze(1)
    heads = attention_oracle(q, k, v, mask, is_causal, causal=causal)       # (B, H, Lq, dh)
    joined = heads.transpose(1, 2).reshape(B, Lq, D) if concat_transposed else heads.reshape(B, Lq, D)
    return project("out_proj", joined)


def _layer_norm(params: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], params[f"{name}.weight"], params[f"{name}.bias"])


def _feed_forward(params: dict[str, Tensor], h: Tensor, gelu: str = "none") -> Tensor:
    return F.linear(F.gelu(F.linear(h, params["ff_in.weight"], params["ff_in.bias"]), approximate=gelu),
                    params["ff_out.weight"], params["ff_out.bias"])


def block_oracle(params: dict[str, Tensor], x: Tensor, n_heads: int, is_causal: bool = True, *,
                 pre_ln: bool = True, gelu: str = "none") -> Tensor:
    """TransformerBlock (pre-LN): x + attn(ln1 x); x + ff(ln2 x). pre_ln=False is the post-LN
    block of the 2017 paper, gelu="tanh" the approximate GELU (diagnoses only)."""
    if not pre_ln:
        x = _layer_norm(params, "ln1", x + torch_attention(params, "attn.", x, None, None, is_causal, n_heads))
        return _layer_norm(params, "ln2", x + _feed_forward(params, x, gelu))
    x = x + torch_attention(params, "attn.", _layer_norm(params, "ln1", x), None, None, is_causal, n_heads)
    return x + _feed_forward(params, _layer_norm(params, "ln2", x), gelu)


def decoder_oracle(params: dict[str, Tensor], x: Tensor, memory: Tensor, memory_mask: Tensor | None, n_heads: int, *,
                   self_causal: bool = True, use_memory_mask: bool = True, pre_ln: bool = True,
                   gelu: str = "none") -> Tensor:
    """DecoderBlock (pre-LN): causal self-attention, cross-attention to memory, feed-forward."""
    mask = memory_mask if use_memory_mask else None
    if not pre_ln:
        x = _layer_norm(params, "ln1", x + torch_attention(params, "self_attn.", x, None, None, self_causal, n_heads))
        x = _layer_norm(params, "ln2", x + torch_attention(params, "cross_attn.", x, memory, mask, False, n_heads))
        return _layer_norm(params, "ln3", x + _feed_forward(params, x, gelu))
    x = x + torch_attention(params, "self_attn.", _layer_norm(params, "ln1", x), None, None, self_causal, n_heads)
    x = x + torch_attention(params, "cross_attn.", _layer_norm(params, "ln2", x), memory, mask, False, n_heads)
    return x + _feed_forward(params, _layer_norm(params, "ln3", x), gelu)


def block_state(seed: int, d_model: int, d_ff: int, decoder: bool = False) -> dict[str, Tensor]:
    """A random TransformerBlock / DecoderBlock state_dict under the spec's names (float64)."""
    norms = ("ln1", "ln2", "ln3") if decoder else ("ln1", "ln2")
    attentions = ("self_attn.", "cross_attn.") if decoder else ("attn.",)
    shapes = {f"{n}.{p}": (d_model,) for n in norms for p in ("weight", "bias")}
    for prefix in attentions:
        shapes.update({f"{prefix}{n}.weight": (d_model, d_model) for n in MHA_NAMES})
        shapes.update({f"{prefix}{n}.bias": (d_model,) for n in MHA_NAMES})
    shapes.update({"ff_in.weight": (d_ff, d_model), "ff_in.bias": (d_ff,),
                   "ff_out.weight": (d_model, d_ff), "ff_out.bias": (d_model,)})
    return randomised({name: torch.zeros(shape, dtype=torch.float64) for name, shape in shapes.items()}, seed)


def with_gradients(function, params: dict[str, Tensor], inputs: list[Tensor], cotangent: Tensor
                   ) -> tuple[Tensor, list[Tensor], dict[str, Tensor]]:
    """function(params, *inputs), and the gradients of <output, cotangent> w.r.t. inputs and params."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in params.items()}
    xs = [t.detach().clone().requires_grad_(True) for t in inputs]
    with torch.enable_grad():
        out = function(leaves, *xs)
        grads = torch.autograd.grad(out, xs + list(leaves.values()), cotangent, allow_unused=True)
    input_grads = [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, xs)]
    param_grads = {name: g if g is not None else torch.zeros_like(leaves[name])
                   for name, g in zip(leaves, grads[len(xs):])}
    return out.detach(), input_grads, param_grads


# ----------------------------------------------------------------------------- student modules


def load_student_module(constructor, state: dict[str, Tensor], *args, **kwargs):
    """Build the student's module in the worker, in float64, with `state` (strict: the spec's
    submodule names exactly). Returns the handle."""
    module = constructor(*args, **kwargs)
    module = module.double()
    module.load_state_dict(dict(state))
    return module


def random_mask(seed: int, shape: tuple, keep: float = 0.7) -> Tensor:
    """A boolean mask with about `keep` of its entries True (may attend)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64) < keep


def _forbidden_call_sentence() -> str | None:
    """Run inside diagnose's handler: names the rule when the student's call hit the call guard."""
    error = sys.exc_info()[1]
    if isinstance(error, StudentError) and error.type_name == "ForbiddenCallError":
        return ("your code called one of torch's ready-made attention functions (F.scaled_dot_product_attention, "
                "nn.MultiheadAttention, ...), which raise while you are graded: write attention with matmul, "
                "masking and softmax yourself")
    return None


def unless_forbidden(sentence: str):
    """A diagnosis for a property check: `sentence` for a wrong value, the forbidden-call rule for a
    call that hit the guard, nothing for any other error of the student's code."""
    def explain() -> str | None:
        return _forbidden_call_sentence() or (sentence if isinstance(sys.exc_info()[1], AssertionError) else None)
    return explain


def guarded():
    """`with guarded(): student call` names the forbidden-call rule if the call hit the guard."""
    return diagnose(_forbidden_call_sentence)


def check_module(probe, module, oracle, state, inputs, kwargs, what, seed, explain=None) -> None:
    """The student's module (a handle) against `oracle(state, *inputs)`: the output, the gradients
    of the inputs and of every parameter, for a random cotangent (worker-side autograd).

    `explain(actual_output)` runs only if the output differs, and names the feature at fault.
    """
    with torch.no_grad():
        shape = tuple(oracle(state, *inputs).shape)
    cotangent = random_tensor(seed + 50, shape)
    expected, input_grads, param_grads = with_gradients(oracle, state, inputs, cotangent)
    with guarded():
        actual, actual_input_grads, actual_param_grads = probe.module_autograd(
            module, tuple(inputs), kwargs, wrt=list(range(len(inputs))), cotangents=cotangent)
    with diagnose(lambda: explain(actual) if explain is not None else None):
        assert_close(actual, expected, f"{what}: output")
    assert_close(list(actual_input_grads), input_grads, f"{what}: gradient of the inputs")
    require(set(actual_param_grads) == set(param_grads),
            f"{what}: the parameters should be exactly {sorted(param_grads)}, got {sorted(map(str, actual_param_grads))}")
    assert_close(actual_param_grads, param_grads, f"{what}: gradient of every parameter")


def close(actual, expected, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """For diagnoses: does the student's value match a variant (NaN matching NaN)?"""
    return (isinstance(actual, Tensor) and actual.shape == expected.shape
            and bool(torch.allclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=True)))
