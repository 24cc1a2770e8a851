"""Trusted oracles for a08_mixed_precision, the hard cases they are checked on, and known-bug variants.

Trusted side only (float16 is fine here). The rounding oracle is brute force: every finite
non-negative value of the format, listed from its bit patterns, and exact rational
distances to the two neighbours of x; a tie goes to the even bit pattern. It is not
torch's float64 -> bfloat16 cast, which rounds through float32 first and so rounds twice
(wrong when x is a tie plus less than float32's half ulp). float16 is checked against
numpy's float64 -> float16 cast, a single correct rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch


@dataclass(frozen=True)
class Format:
    name: str
    significant_bits: int   # p, the implicit bit included
    min_exponent: int       # e_min
    max_finite: float

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.min_exponent - self.significant_bits + 1)

    @property
    def overflow_threshold(self) -> float:
        """max + ulp/2: from here on (a tie with the odd max goes up) values round to inf."""
        return self.max_finite + 2.0 ** (np.frexp(self.max_finite)[1] - 1 - self.significant_bits)


FP16 = Format("float16", 11, -14, 65504.0)
BF16 = Format("bfloat16", 8, -126, (2.0 - 2.0**-7) * 2.0**127)


@lru_cache(maxsize=None)
def format_values(name: str) -> np.ndarray:
    """Every finite non-negative value of the format in bit-pattern order, plus 2^(e_max+1) for overflow."""
    if name == "float16":
        finite = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
        return np.append(finite, 2.0**16)
    finite = (np.arange(0, 0x7F80, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)
    return np.append(finite, 2.0**128)


def nearest(x, fmt: Format) -> np.ndarray:
    """Exact nearest value of `fmt` (ties to the even bit pattern) for every float64 in x, as float64."""
    values = np.array(x, dtype=np.float64, copy=True)
    table = format_values(fmt.name)
    out = np.empty(values.shape, dtype=np.float64)
    for index, value in np.ndenumerate(values):
        value = float(value)
        if not np.isfinite(value):
            out[index] = value
            continue
        magnitude = abs(value)
        if magnitude >= table[-1]:
            result = np.inf
        else:
            low = int(np.searchsorted(table, magnitude, side="right")) - 1    # table[low] <= |x| < table[low + 1]
            below, above = Fraction(magnitude) - Fraction(table[low]), Fraction(table[low + 1]) - Fraction(magnitude)
            pick = low if below < above or (below == above and low % 2 == 0) else low + 1
            result = table[pick] if pick < len(table) - 1 else np.inf
        out[index] = np.copysign(result, value)
    return out


def numpy_fp16(x) -> np.ndarray:
    """numpy's float64 -> float16 cast (one correct rounding), back in float64."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)


def exact_bf16(x) -> np.ndarray:
    return nearest(x, BF16)


def torch_bf16(x) -> np.ndarray:
    """torch's float64 -> bfloat16 cast: through float32, so it rounds twice (a known-wrong variant)."""
    return torch.from_numpy(np.asarray(x, dtype=np.float64)).to(torch.bfloat16).double().numpy()


def fp16_spacing(x) -> np.ndarray:
    """Gap from |x| (a float16 value) to the next larger float16 value; 32 at 65504 (from the 2^16 sentinel)."""
    table = format_values("float16")
    magnitude = np.abs(np.asarray(x, dtype=np.float64))
    index = np.searchsorted(table, magnitude)
    return table[index + 1] - table[index]


# --------------------------------------------------------------------------- hard cases

def hard_cases(fmt: Format, binades: list[int] | None = None) -> np.ndarray:
    """Values where rounding is decided: ties, ties +- one float64 ulp, subnormals, overflow, specials.

    For each binade 2^k (k from the subnormals to e_max unless `binades` says): the ends, the
    tie between 2^k and its successor, the tie between 2^k and its predecessor, an
    odd-even tie in the middle, each +- one float64 ulp. Negatives of all, signed zeros,
    +-inf, nan.
    """
    p, emin = fmt.significant_bits, fmt.min_exponent
    emax = int(np.frexp(fmt.max_finite)[1]) - 1
    binades = binades if binades is not None else list(range(emin - p + 1, emax + 1))
    values = [0.0, fmt.smallest_subnormal, fmt.smallest_subnormal / 2, 3 * fmt.smallest_subnormal / 2,
              fmt.smallest_subnormal / 4, 2.0**emin - fmt.smallest_subnormal, 2.0**emin - fmt.smallest_subnormal / 2,
              fmt.max_finite, fmt.overflow_threshold, 2 * fmt.max_finite, 1e300]
    for k in binades:
        spacing = 2.0 ** (max(k, emin) - p + 1)
        start = 2.0**k
        values += [start, start + spacing / 2, start - spacing / 4, start + 3 * spacing / 2,
                   start + 5 * spacing / 2, 2 * start - spacing / 2]
    ties = np.array(values, dtype=np.float64)
    around = np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)])
    around = around[np.isfinite(around) & (around >= 0)]
    return np.concatenate([around, -around, [0.0, -0.0, np.inf, -np.inf, np.nan]])


def fp16_overflow_cases() -> np.ndarray:
    """65504 to 65520 and just past: the top of float16 and its overflow threshold."""
    grid = np.linspace(65504.0, 65520.0, 33)
    edges = np.array([65519.0, 65520.0, 65521.0, 65536.0, 65535.99])
    values = np.concatenate([grid, edges, np.nextafter(65520.0, 0.0), np.nextafter(65520.0, np.inf),
                             np.nextafter(65504.0 + 16.0, 0.0), [65504.0 - 16.0, 65504.0 - 8.0]], axis=None)
    return np.concatenate([values, -values])


def fp16_values_of_every_binade() -> np.ndarray:
    """Float16 values: zero, subnormals, and in every binade 2^-14 .. 2^15 its start, middle and end; both signs."""
    values = [0.0, 2.0**-24, 3 * 2.0**-24, 2.0**-15, 2.0**-14 - 2.0**-24]
    for k in range(-14, 16):
        values += [2.0**k, 2.0**k * 1.5, 2.0 ** (k + 1) - 2.0 ** (k - 10), 2.0**k + 2.0 ** (k - 10)]
    values = np.array(values)
    return np.concatenate([values, -values[1:]])


# --------------------------------------------------------------------------- rounding variants

def variant_round(x, fmt: Format, *, ties: str = "even", subnormals: bool = True, overflow: str = "threshold",
                  signed_zero: bool = True, bits: int = 0) -> np.ndarray:
    """The format's rounding with one known bug switched on (for diagnoses).

    ties: "even" | "away" (half away from zero) | "truncate" (toward zero); subnormals=False:
    full precision below 2^e_min; overflow: "threshold" | "above_max" (|x| > max -> inf)
    | "never" (no inf); signed_zero=False: underflow gives +0; bits: significant bits
    instead of the format's (one fewer: the implicit leading bit forgotten).
    """
    x = np.asarray(x, dtype=np.float64)
    p, emin = bits or fmt.significant_bits, fmt.min_exponent
    with np.errstate(all="ignore"):
        _, exponent = np.frexp(x)
        binade = exponent - 1 if not subnormals else np.maximum(exponent - 1, emin)
        ulp = np.ldexp(1.0, binade - (p - 1))
        q = x / ulp
        if ties == "away":
            q = np.trunc(q + np.copysign(0.5, q))
        elif ties == "truncate":
            q = np.trunc(q)
        else:
            q = np.rint(q)
        out = q * ulp
        if overflow == "threshold":
            out = np.where(np.abs(out) > fmt.max_finite, np.copysign(np.inf, x), out)
        elif overflow == "above_max":
            out = np.where(np.abs(x) > fmt.max_finite, np.copysign(np.inf, x), np.minimum(np.abs(out), fmt.max_finite) * np.sign(x))
        else:
            out = np.clip(out, -fmt.max_finite, fmt.max_finite)
        if not signed_zero:
            out = np.where(out == 0, 0.0, out)
    return np.where(np.isfinite(x), out, x)


def same_values(actual, expected) -> bool:
    """Bitwise-equal as float64 values: nan matches nan, and -0.0 differs from +0.0."""
    try:
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if a.shape != e.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(e)
    return bool(np.all(both_nan | ((a == e) & (np.signbit(a) == np.signbit(e)))))


def rounding_diagnosis(actual, x, fmt: Format) -> str | None:
    """Name the rounding feature at fault by matching the student's values with known-bug variants."""
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if a.shape != x.shape:
        return None
    exact = nearest(x, fmt)
    wrong = ~(((a == exact) & (np.signbit(a) == np.signbit(exact))) | (np.isnan(a) & np.isnan(exact)))

    def matches(**options):
        return lambda: same_values(a, variant_round(x, fmt, **options))

    def through_float32():
        with np.errstate(over="ignore"):
            return nearest(x.astype(np.float32).astype(np.float64), fmt)

    experiments = [
        ("ties are rounded half away from zero: round half to even (np.rint does, floor(q + 0.5) does not)", matches(ties="away")),
        ("one significant bit too few: the format has p = stored mantissa bits + 1 (the implicit leading 1)",
         matches(bits=fmt.significant_bits - 1)),
        ("values are truncated toward zero: round to the nearest value, ties to even", matches(ties="truncate")),
        ("below 2^e_min the spacing must stay that of the smallest binade (subnormals): clamp the exponent at e_min",
         matches(subnormals=False)),
        ("the overflow threshold is max + ulp/2 (65520 for float16), not the largest finite value: values between round down",
         matches(overflow="above_max")),
        ("values at or past the overflow threshold must become +-inf, not the largest finite value", matches(overflow="never")),
        ("an underflow to zero keeps the sign of x (-0.0 for negative x)", matches(signed_zero=False)),
        # last: on exact ties alone it looks like other bugs, so it is named only when nothing else fits
        ("the value is rounded twice (first to float32, then to the 16-bit format, as torch's float64 casts do): "
         "round once from float64", lambda: same_values(a, through_float32())),
    ]
    if np.any(wrong & ~np.isfinite(x)):
        return "nan must stay nan and +-inf stay +-inf"
    for sentence, check in experiments:
        try:
            if check():
                return sentence
        except Exception:  # noqa: BLE001 - an experiment that cannot run is evidence of nothing
            continue
    if np.any(wrong & (np.abs(x) < 2.0**fmt.min_exponent)):
        return "the subnormal range (below 2^e_min, spacing 2^(e_min - p + 1)) is rounded wrongly"
    return None


# --------------------------------------------------------------------------- loss scaling

class ReferenceScaler:
    """The scaler rule of the spec, written from Megatron's DynamicGradScaler (trusted), with optional bugs.

    bugs: "keep_growth_tracker" (not reset on overflow), "grow_to_inf" (no float32 check),
    "no_hysteresis_reset" (not restored at growth), "no_min_scale", "reset_hysteresis_on_success".
    """

    FLOAT32_MAX = float(np.finfo(np.float32).max)

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 hysteresis=1, min_scale=0.0, bug: str | None = None):
        self.scale, self.growth_factor, self.backoff_factor = float(init_scale), growth_factor, backoff_factor
        self.growth_interval, self.hysteresis, self.min_scale, self.bug = growth_interval, hysteresis, min_scale, bug
        self.growth_tracker, self.hysteresis_tracker = 0, hysteresis

    def update(self, found_inf) -> None:
        if found_inf:
            if self.bug != "keep_growth_tracker":
                self.growth_tracker = 0
            self.hysteresis_tracker -= 1
            if self.hysteresis_tracker <= 0:
                backed = self.scale * self.backoff_factor
                self.scale = backed if self.bug == "no_min_scale" else max(backed, self.min_scale)
            return
        self.growth_tracker += 1
        if self.bug == "reset_hysteresis_on_success":
            self.hysteresis_tracker = self.hysteresis
        if self.growth_tracker == self.growth_interval:
            self.growth_tracker = 0
            if self.bug != "no_hysteresis_reset":
                self.hysteresis_tracker = self.hysteresis
            grown = self.scale * self.growth_factor
            if grown <= self.FLOAT32_MAX or self.bug == "grow_to_inf":
                self.scale = grown

    def state_dict(self) -> dict:
        return {"scale": self.scale, "growth_tracker": self.growth_tracker, "hysteresis_tracker": self.hysteresis_tracker}


SCALER_BUGS = {
    "keep_growth_tracker": "an overflow must reset the growth tracker to 0 (growth needs growth_interval clean steps in a row)",
    "grow_to_inf": "growth stops where scale * growth_factor would exceed the float32 range (torch keeps the scale in float32)",
    "no_hysteresis_reset": "at each growth the hysteresis tracker is restored to `hysteresis`",
    "reset_hysteresis_on_success": "the hysteresis tracker is restored only at a growth, not after every clean step",
    "no_min_scale": "a backoff never takes the scale below min_scale",
}


def scaler_diagnosis(options: dict, actions: list[bool], student_states: list[dict]) -> str | None:
    """Replay the overflow sequence through each known-bug scaler; name the one the student's states follow.

    A variant counts only where it differs from the correct rule on this sequence and agrees
    with every state the student returned (all three keys).
    """
    keys = ("scale", "growth_tracker", "hysteresis_tracker")
    correct = ReferenceScaler(**options)
    right = []
    for found_inf in actions:
        correct.update(found_inf)
        right.append(correct.state_dict())
    for bug, sentence in SCALER_BUGS.items():
        variant = ReferenceScaler(**options, bug=bug)
        agrees, differs = bool(student_states), False
        for found_inf, state, expected in zip(actions, student_states, right):
            variant.update(found_inf)
            mine = variant.state_dict()
            differs = differs or mine != expected
            if any(state.get(key) != mine[key] for key in keys):
                agrees = False
                break
        if agrees and differs:
            return sentence
    return None


class TorchScaler:
    """torch.amp.GradScaler("cpu") driven one step at a time on given gradients (the trusted oracle)."""

    def __init__(self, shapes, **options):
        self.scaler = torch.amp.GradScaler("cpu", **options)
        self.params = [torch.nn.Parameter(torch.zeros(shape)) for shape in shapes]
        self.optimizer = torch.optim.SGD(self.params, lr=0.0)

    def step(self, grads: list[torch.Tensor]) -> tuple[list[torch.Tensor], dict]:
        """Unscale `grads` (float32), step (skipped on inf/nan) and update: (unscaled grads, state after)."""
        self.scaler.scale(torch.ones(()))
        for param, grad in zip(self.params, grads):
            param.grad = grad.detach().clone().float()
        self.scaler.unscale_(self.optimizer)
        unscaled = [param.grad.detach().clone() for param in self.params]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        state = self.scaler.state_dict()
        return unscaled, {"scale": float(state["scale"]), "growth_tracker": int(state["_growth_tracker"])}


# --------------------------------------------------------------------------- training step and underflow

def sgd_oracle(masters, grads16, scale, lr):
    """(new masters, float16 copies, skipped) written from the spec with float32 tensors."""
    grads = [g.to(torch.float32) * (1.0 / scale) for g in grads16]
    skipped = any(not torch.isfinite(g).all() for g in [*grads16, *grads])
    new = [m.clone() if skipped else m - lr * g for m, g in zip(masters, grads)]
    return new, [m.to(torch.float16) for m in new], skipped


def underflow_oracle(grads: torch.Tensor, scale: float) -> float:
    """Fraction of the non-zero float32 grads whose float16(grads * scale) is 0 (numpy's cast)."""
    values = grads.detach().numpy().astype(np.float32)
    nonzero = values != 0
    if not nonzero.any():
        return 0.0
    with np.errstate(over="ignore"):
        scaled = (values * np.float32(scale)).astype(np.float16)
    return float(np.count_nonzero(nonzero & (scaled == 0)) / np.count_nonzero(nonzero))


def tensor_bytes(tensors) -> list[bytes]:
    return [t.detach().contiguous().numpy().tobytes() for t in tensors]
