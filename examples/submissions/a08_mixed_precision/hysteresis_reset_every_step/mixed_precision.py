# Subtle bug: the hysteresis tracker is restored after every clean step (not only at a growth).
"""Assignment 8 (Lecture 10): FP32, FP16 and mixed-precision training with loss scaling.

A binary floating-point format with p significant bits (the implicit leading 1 included)
and minimum normal exponent e_min stores

    x = (-1)^s * 1.m * 2^e      (normal:    e_min <= e <= e_max)
    x = (-1)^s * 0.m * 2^e_min  (subnormal: below 2^e_min, evenly spaced by 2^(e_min - p + 1))

    format     p    e_min   e_max   largest finite          spacing at 1 (eps)
    float16    11   -14     15      65504 = (2 - 2^-10) 2^15    2^-10
    bfloat16    8   -126    127     (2 - 2^-7) 2^127            2^-7
    float32    24   -126    127     (2 - 2^-23) 2^127           2^-23

The rounding functions below compute these roundings with float64 arithmetic only: every
finite float16 or bfloat16 value is a float64, and scaling by a power of two is exact.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

FLOAT32_MAX = float(torch.finfo(torch.float32).max)   # (2 - 2^-23) * 2^127


def _round_to_format(x, significant_bits: int, min_exponent: int, max_finite: float) -> np.ndarray:
    """Nearest value with `significant_bits` bits, exponent >= `min_exponent`, ties to even.

    For |x| in [2^k, 2^(k+1)) the representable values are the multiples of
    ulp = 2^(k - p + 1) (k clamped below at e_min: the subnormals share the spacing of the
    smallest binade). x / ulp and q * ulp are exact in float64 (powers of two), and
    np.rint rounds half to even, so q * ulp is the correctly rounded result; a value that
    rounds past the largest finite one (|x| >= max + ulp/2) becomes +-inf.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        _, exponent = np.frexp(x)                                   # |x| in [2^(e-1), 2^e)
        binade = np.maximum(exponent - 1, min_exponent)             # k, clamped at e_min
        ulp = np.ldexp(1.0, binade - (significant_bits - 1))        # 2^(k - p + 1)
        rounded = np.rint(x / ulp) * ulp                            # ties to even; keeps -0.0
        rounded = np.where(np.abs(rounded) > max_finite, np.copysign(np.inf, x), rounded)
    return np.where(np.isfinite(x), rounded, x)                     # nan stays nan, +-inf stay


def round_to_fp16(x) -> np.ndarray:
    """x (float64 array) -> float64 array of the nearest IEEE binary16 values (ties to even).

    |x| >= 65520 = 65504 + 32/2 overflows to +-inf (65520 itself is a tie between 65504,
    whose last bit is odd, and 2^16, so it goes up); below 2^-14 the spacing stays 2^-24
    (subnormals); |x| <= 2^-25 underflows to a zero of the same sign.
    """
    return _round_to_format(x, significant_bits=11, min_exponent=-14, max_finite=65504.0)


def round_to_bf16(x) -> np.ndarray:
    """x (float64 array) -> float64 array of the nearest bfloat16 values (ties to even).

    bfloat16 keeps float32's 8 exponent bits and 7 stored mantissa bits: p = 8, e_min = -126,
    largest finite (2 - 2^-7) * 2^127, subnormals spaced 2^-133.
    """
    return _round_to_format(x, significant_bits=8, min_exponent=-126, max_finite=(2.0 - 2.0**-7) * 2.0**127)


def fp16_ulp(x) -> np.ndarray:
    """Spacing between |x| (a finite float16 value) and the next larger float16 value.

    2^(k - 10) for |x| in [2^k, 2^(k+1)), k >= -14; 2^-24 below 2^-14 (zero and the
    subnormals). At 65504 (no larger finite value) it is the spacing of its binade, 32.
    """
    magnitude = np.abs(np.asarray(x, dtype=np.float64))
    _, exponent = np.frexp(magnitude)                               # |x| in [2^(e-1), 2^e)
    binade = np.where(magnitude < 2.0**-14, -14, exponent - 1)      # zero and subnormals: e_min
    return np.ldexp(1.0, binade - 10)


class DynamicLossScaler:
    """Dynamic loss scaling (torch.amp.GradScaler's rule, with Megatron's hysteresis and floor).

    Multiply the loss by `scale` so that small gradients survive the float16 backward pass;
    divide the gradients by it again in float32. An inf/nan gradient means the scale was
    too large: skip the step and shrink the scale (after `hysteresis` such steps in a row
    without a growth in between); after `growth_interval` clean steps, grow it.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, hysteresis: int = 1, min_scale: float = 0.0):
        self.scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.hysteresis = int(hysteresis)
        self.min_scale = float(min_scale)
        self.growth_tracker = 0
        self.hysteresis_tracker = int(hysteresis)

    def scale_loss(self, loss: Tensor) -> Tensor:
        """loss * scale, same shape and dtype."""
        return loss * self.scale

    def unscale(self, grads: list[Tensor]) -> tuple[list[Tensor], bool]:
        """(float32 copies of the grads times 1/scale, whether any input grad holds inf or nan).

        1/scale is computed in float64 and rounded to float32, as torch does.
        """
        inverse = torch.tensor(1.0 / self.scale, dtype=torch.float64).float()          # ()
        found_inf = any(not bool(torch.isfinite(grad).all()) for grad in grads)
        return [grad.float() * inverse for grad in grads], found_inf

    def update(self, found_inf: bool) -> None:
        """Back off after overflow (with hysteresis and a floor), grow after clean intervals."""
        if found_inf:
            self.growth_tracker = 0
            self.hysteresis_tracker -= 1
            if self.hysteresis_tracker <= 0:
                self.scale = max(self.scale * self.backoff_factor, self.min_scale)
        else:
            self.growth_tracker += 1
            self.hysteresis_tracker = self.hysteresis
            if self.growth_tracker == self.growth_interval:
                self.growth_tracker = 0
                self.hysteresis_tracker = self.hysteresis
                grown = self.scale * self.growth_factor
                if grown <= FLOAT32_MAX:            # torch keeps the scale in float32: no growth to inf
                    self.scale = grown

    def state_dict(self) -> dict:
        """{"scale": float, "growth_tracker": int, "hysteresis_tracker": int}."""
        return {"scale": self.scale, "growth_tracker": self.growth_tracker,
                "hysteresis_tracker": self.hysteresis_tracker}


def mixed_precision_sgd_step(master_params: list[Tensor], fp16_grads: list[Tensor], scale: float,
                             lr: float) -> tuple[list[Tensor], list[Tensor], bool]:
    """One SGD step of mixed-precision training on float32 master weights.

        g_i = float32(fp16_grad_i) * (1 / scale)                  unscale in float32
        skip if any g_i (or fp16_grad_i) holds inf or nan         the masters stay bit for bit
        else master_i <- master_i - lr * g_i
        model copies: float16(master_i)

    Returns (new float32 masters, their float16 copies, skipped).
    """
    inverse = 1.0 / scale
    grads = [grad.float() * inverse for grad in fp16_grads]                      # float32, like the masters
    skipped = not all(bool(torch.isfinite(grad).all()) for grad in grads)
    if skipped:
        masters = [master.clone() for master in master_params]
    else:
        masters = [master - lr * grad for master, grad in zip(master_params, grads)]
    return masters, [master.half() for master in masters], skipped


def underflow_fraction(grads: Tensor, scale: float) -> float:
    """Of the non-zero float32 grads, the fraction that become 0 when grads * scale is cast to float16.

    0.0 when no grad is non-zero. A 1e-8 gradient is lost at scale 1 (below half of the
    smallest float16 subnormal, 2^-25 ~ 3e-8) and kept at scale 2^16 (6.6e-4).
    """
    nonzero = grads != 0
    count = int(nonzero.sum())
    if count == 0:
        return 0.0
    lost = nonzero & ((grads * scale).half() == 0)
    return int(lost.sum()) / count
