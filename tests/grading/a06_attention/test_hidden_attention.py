"""Hidden: causal_mask, scaled_dot_product_attention and sinusoidal_positions.

Attention is compared with torch's F.scaled_dot_product_attention (the oracle combines the
mask and the causal mask itself) on drawn leading shapes, Lq != Lk, d != dv, masks of every
broadcastable shape, causal or not, and scales None, 0.0 and others; rows with no allowed
key must be zeros. Properties: scale 0.0 averages the values, changing future keys leaves
earlier outputs unchanged, fully masked rows give zeros and finite gradients. Feedback names
the features of the call, never the drawn values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st

import oracle as O
from autograder.harness import FLOAT32, Tolerance, assert_close, assert_equal, diagnose, first_true, require
from autograder.harness.strategies import hidden_seeds, random_tensor, sides

LARGE = Tolerance(rtol=1e-8, atol=1e-8)      # scores near 1e4 carry ~1e-12 relative error each


@dataclass(frozen=True)
class Case:
    """One attention call: shapes, mask kind, causal flag, scale; tensors made from the seed."""

    seed: int
    batch: tuple
    Lq: int
    Lk: int
    d: int
    dv: int
    mask_kind: str
    is_causal: bool
    scale: float | None
    magnitude: float = 1.0

    def tensors(self, dtype=torch.float64):
        q = random_tensor(self.seed, (*self.batch, self.Lq, self.d), scale=self.magnitude).to(dtype)
        k = random_tensor(self.seed + 1, (*self.batch, self.Lk, self.d), scale=self.magnitude).to(dtype)
        v = random_tensor(self.seed + 2, (*self.batch, self.Lk, self.dv)).to(dtype)
        shape = {"none": None, "(Lq, Lk)": (self.Lq, self.Lk), "(..., Lq, Lk)": (*self.batch, self.Lq, self.Lk),
                 "(1, Lq, Lk)": (1, self.Lq, self.Lk), "sparse (..., Lq, Lk)": (*self.batch, self.Lq, self.Lk)}
        keep = 0.3 if self.mask_kind.startswith("sparse") else 0.75
        mask = None if shape[self.mask_kind] is None else O.random_mask(self.seed + 3, shape[self.mask_kind], keep)
        return q, k, v, mask

    def describe(self) -> str:
        parts = [f"{len(self.batch)} leading dims" if self.batch else "no leading dims"]
        parts.append("Lq != Lk" if self.Lq != self.Lk else "Lq == Lk")
        if self.d != self.dv:
            parts.append("d != dv")
        parts.append("no mask" if self.mask_kind == "none" else f"a {self.mask_kind} mask")
        if self.is_causal:
            parts.append("is_causal=True")
        parts.append("default scale" if self.scale is None else f"scale={self.scale:g}")
        return "scaled_dot_product_attention with " + ", ".join(parts)


@st.composite
def cases(draw, mask_kinds=("none", "(Lq, Lk)", "(..., Lq, Lk)", "(1, Lq, Lk)", "sparse (..., Lq, Lk)"),
          scales=(None, None, 0.0, 0.3, 2.5), causal=st.booleans()) -> Case:
    batch = draw(st.sampled_from([(), (3,), (2, 3), (1, 2)]))
    return Case(seed=draw(hidden_seeds()), batch=batch, Lq=draw(sides(1, 6)), Lk=draw(sides(1, 6)), d=draw(sides(1, 5)),
                dv=draw(sides(1, 5)), mask_kind=draw(st.sampled_from(mask_kinds)), is_causal=draw(causal),
                scale=draw(st.sampled_from(scales)))


def explain_attention(actual, case: Case, dtype=torch.float64) -> str | None:
    """Which plausible bug the student's output matches (trusted experiments, run on failure only)."""
    q, k, v, mask = case.tensors(dtype)
    if not isinstance(actual, torch.Tensor):
        return None

    def matches(**bug) -> bool:
        return O.close(actual, O.attention_variant(q, k, v, mask, case.is_causal, case.scale, **bug))

    return first_true([
        ("the causal mask is aligned bottom-right (query i sees keys j <= i + Lk - Lq); the spec aligns it "
         "top-left: query i sees keys j <= i, whatever Lk is",
         lambda: case.is_causal and case.Lq != case.Lk and matches(causal=O.bottom_right_causal)),
        ("scale=0.0 is treated as 'use the default': test `scale is None`; 0.0 is a valid scale (uniform weights)",
         lambda: case.scale == 0.0 and matches(scale_zero_is_default=True)),
        ("the default scale uses the value width dv; it is 1/sqrt(d), d the width of queries and keys",
         lambda: case.d != case.dv and matches(scale_by_dv=True)),
        ("with is_causal=True the mask is dropped: the two combine (allowed = mask & causal)",
         lambda: mask is not None and case.is_causal and matches(causal_replaces_mask=True)),
        ("a query row with no allowed key gives the mean of the values (masking with a finite number such as "
         "-1e9 makes the row uniform); the spec wants zeros for such rows",
         lambda: matches(empty_rows="mean")),
        ("a query row with no allowed key gives NaN (softmax over no key: 0/0); the spec wants zeros",
         lambda: matches(empty_rows="nan")),
        ("the mask is used inverted: True means 'may attend'",
         lambda: mask is not None and O.close(actual, O.attention_oracle(q, k, v, ~mask, case.is_causal, case.scale))),
        ("exp overflowed: subtract each row's maximum score before exp (the max-shift)",
         lambda: not bool(torch.isfinite(actual).all())),
    ])


def check_attention(student, case: Case, dtype=torch.float64, tol=None) -> torch.Tensor:
    q, k, v, mask = case.tensors(dtype)
    expected = O.attention_oracle(q, k, v, mask, case.is_causal, case.scale)
    with O.guarded():
        actual = student.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=case.is_causal, scale=case.scale)
    with diagnose(lambda: explain_attention(actual, case, dtype)):
        assert_close(actual, expected, f"{case.describe()} (rows with no allowed key: zeros)", tol=tol)
    return actual


# ------------------------------------------------------------------ Task 1.1: causal mask

@given(Lq=sides(1, 9), Lk=sides(1, 9))
def test_causal_mask_matches_j_le_i(student, Lq, Lk):
    actual = student.causal_mask(Lq, Lk)
    what = f"causal_mask with {'Lq < Lk' if Lq < Lk else 'Lq > Lk' if Lq > Lk else 'Lq == Lk'}"
    with diagnose(lambda: first_true([
            ("aligned bottom-right (j <= i + Lk - Lq); the spec aligns top-left: j <= i",
             lambda: bool(torch.equal(actual, O.bottom_right_causal(Lq, Lk)))),
            ("upper triangle (j >= i): True must mark the keys at or before the query",
             lambda: bool(torch.equal(actual, torch.ones(Lq, Lk, dtype=torch.bool).triu())))])):
        assert_equal(actual, O.top_left_causal(Lq, Lk), what)


# ------------------------------------------------------------------ Task 1.2: attention

@given(case=cases())
def test_attention_matches_torch(student, case):
    check_attention(student, case)


@given(case=cases(mask_kinds=("none", "(Lq, Lk)"), scales=(None,), causal=st.just(True)).filter(lambda c: c.Lq != c.Lk))
def test_attention_matches_torch_causal_with_lq_ne_lk(student, case):
    check_attention(student, case)


@given(case=cases(scales=(0.0,)))
def test_attention_property_scale_zero_gives_the_mean_of_the_allowed_values(student, case):
    q, k, v, mask = case.tensors()
    allowed = O.allowed_keys(tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])), case.Lq, case.Lk, mask,
                             case.is_causal).to(torch.float64)
    counts = allowed.sum(-1, keepdim=True)
    expected = (allowed @ v) / counts.clamp_min(1.0)                  # uniform over the allowed keys, 0 if none
    actual = student.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=case.is_causal, scale=0.0)
    with diagnose(lambda: explain_attention(actual, case)):
        assert_close(actual, expected, f"{case.describe()}: each row is the mean of the values it may attend")


@given(case=cases(mask_kinds=("none", "(..., Lq, Lk)"), scales=(None, 1.0), causal=st.just(True)), cut=st.integers(0, 5))
def test_attention_property_causality_future_keys_do_not_matter(student, case, cut):
    """With is_causal=True, changing keys and values j > t leaves the outputs of queries i <= t unchanged."""
    q, k, v, mask = case.tensors()
    t = min(cut, case.Lq - 1, case.Lk - 1)
    k2, v2 = k.clone(), v.clone()
    k2[..., t + 1:, :] = random_tensor(case.seed + 7, k2[..., t + 1:, :].shape)
    v2[..., t + 1:, :] = random_tensor(case.seed + 8, v2[..., t + 1:, :].shape)
    first = student.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=True, scale=case.scale)
    second = student.scaled_dot_product_attention(q, k2, v2, mask=mask, is_causal=True, scale=case.scale)
    with diagnose(lambda: first_true([
            ("a query row with no allowed key gives NaN (softmax over no key: 0/0); the spec wants zeros",
             lambda: bool(torch.isnan(first).any() or torch.isnan(second).any())),
            ("query i attends a key j > i: the causal mask must allow exactly j <= i", lambda: True)])):
        assert_close(second[..., :t + 1, :], first[..., :t + 1, :],
                     "causal attention: outputs of the earlier queries after changing only future keys and values")


@given(case=cases(mask_kinds=("(..., Lq, Lk)",)), rows=st.integers(1, 3))
def test_attention_property_fully_masked_rows_are_zero_with_finite_gradients(student, probe, case, rows):
    q, k, v, mask = case.tensors()
    mask = mask.clone()
    mask[..., :rows, :] = False                                       # the first queries see nothing
    expected = O.attention_oracle(q, k, v, mask, case.is_causal, case.scale)
    cotangent = random_tensor(case.seed + 9, tuple(expected.shape))
    actual, grads = probe.autograd(student.scaled_dot_product_attention, (q, k, v),
                                   {"mask": mask, "is_causal": case.is_causal, "scale": case.scale},
                                   wrt=[0, 1, 2], cotangents=cotangent)
    with diagnose(lambda: first_true([
            ("a query row with no allowed key gives NaN (softmax over no key: 0/0); the spec wants zeros",
             lambda: bool(torch.isnan(actual).any())),
            ("with is_causal=True the mask is dropped: the two combine (allowed = mask & causal)",
             lambda: case.is_causal and O.close(actual, O.attention_variant(q, k, v, mask, True, case.scale,
                                                                           causal_replaces_mask=True))),
            ("a query row with no allowed key gives the mean of the values (a finite fill such as -1e9 instead "
             "of -inf); the spec wants zeros", lambda: bool((actual[..., :rows, :] != 0).any()))])):
        assert_close(actual, expected, f"{case.describe()}, some query rows fully masked: output (those rows zeros)")
    _, oracle_grads, _ = O.with_gradients(lambda _, q, k, v: O.attention_oracle(q, k, v, mask, case.is_causal, case.scale),
                                          {}, [q, k, v], cotangent)
    with diagnose("the gradient is NaN or wrong where a row has no allowed key: keep the empty softmax's "
                  "denominator away from 0/0 (e.g. divide by 1 where the sum is 0)"):
        assert_close(list(grads), oracle_grads, f"{case.describe()}, some query rows fully masked: gradients of q, k, v")


@given(case=cases(scales=(None, 1.0)), magnitude=st.sampled_from([60.0, 100.0]), dtype=st.sampled_from(["float64", "float32"]))
def test_attention_stable_at_scores_near_1e4(student, case, magnitude, dtype):
    """q, k of size ~magnitude: scores of order 1e3..1e4 (exp overflows past 709 in float64, 88 in float32)."""
    case = Case(**{**case.__dict__, "magnitude": magnitude, "d": max(case.d, 2)})
    dt = getattr(torch, dtype)
    q, k, v, mask = case.tensors(dt)
    expected = O.attention_oracle(q.double(), k.double(), v.double(), mask, case.is_causal, case.scale).to(dt)
    actual = student.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=case.is_causal, scale=case.scale)
    with diagnose(lambda: explain_attention(actual, case, dt)):
        assert_close(actual, expected, f"{case.describe()}, scores near 1e4, {dtype}",
                     tol=LARGE if dtype == "float64" else Tolerance(rtol=1e-2, atol=1e-2))


@given(case=cases())
def test_attention_gradients_match_torch(student, probe, case):
    q, k, v, mask = case.tensors()
    fn = lambda _, q, k, v: O.attention_oracle(q, k, v, mask, case.is_causal, case.scale)   # noqa: E731
    with torch.no_grad():
        shape = tuple(fn(None, q, k, v).shape)
    cotangent = random_tensor(case.seed + 9, shape)
    expected, grads, _ = O.with_gradients(fn, {}, [q, k, v], cotangent)
    actual, actual_grads = probe.autograd(student.scaled_dot_product_attention, (q, k, v),
                                          {"mask": mask, "is_causal": case.is_causal, "scale": case.scale},
                                          wrt=[0, 1, 2], cotangents=cotangent)
    with diagnose(lambda: explain_attention(actual, case)):
        assert_close(actual, expected, f"{case.describe()}: output")
    require(all(g is not None for g in actual_grads),
            f"{case.describe()}: no gradient reaches q, k or v (detached, or computed outside autograd)")
    assert_close(list(actual_grads), grads, f"{case.describe()}: gradients of q, k and v")


# ------------------------------------------------------------------ Task 1.3: positions

@given(seq_len=st.sampled_from([1, 2, 17, 100, 1000, 4096]), half=st.integers(1, 32))
def test_sinusoidal_positions_match_the_formula(student, seq_len, half):
    d_model = 2 * half
    actual = student.sinusoidal_positions(seq_len, d_model)
    what = f"sinusoidal_positions with seq_len {'up to 4096' if seq_len > 1000 else 'small'}"
    with diagnose(lambda: first_true([
            ("every sin comes first, then every cos: the columns interleave (PE[p, 2i] = sin, PE[p, 2i+1] = cos)",
             lambda: O.close(actual.double(), O.positions_oracle(seq_len, d_model, "halves").double(), 0, 1e-3)),
            ("sin and cos are swapped: PE[p, 2i] = sin(...), PE[p, 2i+1] = cos(...)",
             lambda: O.close(actual.double(), O.positions_oracle(seq_len, d_model, "swapped").double(), 0, 1e-3)),
            ("the frequencies use i instead of 2i: 10000 ** (2i / d_model), 2i the even column index",
             lambda: O.close(actual.double()[:, 0::2], torch.sin(torch.arange(seq_len, dtype=torch.float64)[:, None]
                             / 10000.0 ** (torch.arange(d_model // 2, dtype=torch.float64) / d_model)), 0, 1e-3))])):
        assert_close(actual, O.positions_oracle(seq_len, d_model), what, tol=Tolerance(rtol=0.0, atol=1e-3))
