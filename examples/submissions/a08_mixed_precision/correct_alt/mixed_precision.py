"""Mixed precision, another way: scalar loops with math.frexp and Python's round (half to even)."""
import math

import numpy as np
import torch


def _nearest(value, precision, lowest_exponent, largest):
    """Nearest value with `precision` significant bits; Python's round() breaks ties to even."""
    if math.isnan(value) or math.isinf(value):
        return value
    _, e = math.frexp(value)                            # value = m * 2**e with 0.5 <= |m| < 1
    step = math.ldexp(1.0, max(e - 1, lowest_exponent) - precision + 1)
    result = math.copysign(float(round(value / step)) * step, value)
    return math.copysign(math.inf, value) if abs(result) > largest else result


def _apply(x, precision, lowest_exponent, largest):
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        out[index] = _nearest(float(x[index]), precision, lowest_exponent, largest)
    return out


def round_to_fp16(x):
    # float16 in bits: 1 sign, 5 exponent, 10 mantissa; the comment may say float16 freely
    return _apply(x, 11, -14, 65504.0)


def round_to_bf16(x):
    return _apply(x, 8, -126, math.ldexp(255.0, 120))


def fp16_ulp(x):
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        magnitude = abs(float(x[index]))
        exponent = math.frexp(magnitude)[1] - 1 if magnitude >= 2.0**-14 else -14
        out[index] = 2.0 ** (exponent - 10)
    return out


class DynamicLossScaler:
    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, hysteresis=1, min_scale=0.0):
        self._scale = init_scale
        self._options = (growth_factor, backoff_factor, growth_interval, hysteresis, min_scale)
        self._clean_steps = 0
        self._patience = hysteresis

    @property
    def scale(self):
        return float(self._scale)

    def scale_loss(self, loss):
        return loss * self.scale

    def unscale(self, grads):
        inverse = torch.tensor(self.scale, dtype=torch.float64).reciprocal().to(torch.float32)
        bad = False
        out = []
        for grad in grads:
            bad = bad or bool((~torch.isfinite(grad)).any())
            out.append(grad.to(torch.float32) * inverse)
        return out, bad

    def update(self, found_inf):
        growth, backoff, interval, hysteresis, floor = self._options
        if not found_inf:
            self._clean_steps += 1
            if self._clean_steps < interval:
                return
            self._clean_steps = 0
            self._patience = hysteresis
            if torch.isfinite(torch.tensor(self._scale * growth, dtype=torch.float32)):
                self._scale = self._scale * growth
            return
        self._clean_steps = 0
        self._patience -= 1
        if self._patience <= 0:
            self._scale = max(self._scale * backoff, floor)

    def state_dict(self):
        return dict(scale=self.scale, growth_tracker=self._clean_steps, hysteresis_tracker=self._patience)


def mixed_precision_sgd_step(master_params, fp16_grads, scale, lr):
    grads = [g.to(torch.float32) * (1.0 / scale) for g in fp16_grads]
    flat = torch.cat([g.reshape(-1) for g in grads])
    if not torch.isfinite(flat).all():
        kept = [p.detach().clone() for p in master_params]
        return kept, [p.to(torch.float16) for p in kept], True
    updated = []
    for p, g in zip(master_params, grads):
        updated.append(p - lr * g)
    return updated, [p.to(torch.float16) for p in updated], False


def underflow_fraction(grads, scale):
    values = grads.detach().numpy().ravel()
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 0.0
    scaled = (torch.from_numpy(nonzero) * scale).to(torch.float16)
    return float((scaled == 0).sum()) / nonzero.size
