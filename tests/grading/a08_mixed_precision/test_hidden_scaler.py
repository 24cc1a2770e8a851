"""Hidden: DynamicLossScaler against torch.amp.GradScaler("cpu") and against a trusted hysteresis reference.

Hypothesis draws the options (power-of-two scales and factors) and a sequence of steps:
clean, overflow (an inf in a gradient) or nan, each with an unscale call on float16 and
float32 gradients. After every step the scale, the growth tracker and the state_dict are
compared; with hysteresis > 1 and min_scale the trusted reference is oracle.ReferenceScaler
(Megatron's rule, as the spec writes it).
"""
import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import assert_close, diagnose, require
from autograder.harness.strategies import hidden_seeds
from oracle import ReferenceScaler, TorchScaler, scaler_diagnosis

STEP_KINDS = ["clean", "clean", "clean", "overflow", "nan"]


def torch_options():
    return st.fixed_dictionaries({
        "init_scale": st.integers(-6, 30).map(lambda k: 2.0**k),
        "growth_factor": st.sampled_from([2.0, 4.0, 8.0]),
        "backoff_factor": st.sampled_from([0.5, 0.25, 0.125]),
        "growth_interval": st.integers(1, 6),
    })


def step_grads(seed, kind, shapes):
    """Gradients of one step: float16 and float32 tensors, with an inf or nan for an overflow step."""
    rng = np.random.default_rng(seed)
    grads = []
    for index, shape in enumerate(shapes):
        dtype = torch.float16 if index % 2 == 0 else torch.float32
        grads.append(torch.from_numpy(rng.standard_normal(shape) * 100.0).to(dtype))
    if kind != "clean":
        target = int(rng.integers(len(grads)))
        flat = grads[target].view(-1)
        flat[int(rng.integers(flat.numel()))] = float("inf") if kind == "overflow" else float("nan")
    return grads


def unscale_diagnosis(unscaled, grads, expected):
    if any(getattr(u, "dtype", None) != torch.float32 for u in unscaled):
        return "unscale returns float32 copies of the grads, whatever their dtype (float16 grads included)"
    scale = float(grads[0].float().reshape(-1)[0] / expected[0].reshape(-1)[0]) if expected[0].numel() else 1.0
    if all(torch.allclose(u, g.float() * scale, equal_nan=True) for u, g in zip(unscaled, grads)):
        return "unscale multiplies the grads by 1/scale, not by scale"
    return None


def state_of(scaler) -> dict:
    state = scaler.state_dict()
    require(isinstance(state, dict) and {"scale", "growth_tracker", "hysteresis_tracker"} <= set(state),
            "state_dict() must return a dict with the keys scale, growth_tracker and hysteresis_tracker")
    return state


@given(options=torch_options(), kinds=st.lists(st.sampled_from(STEP_KINDS), min_size=1, max_size=30),
       seed=hidden_seeds(), shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=3))
def test_scaler_matches_grad_scaler_on_drawn_sequences(student, options, kinds, seed, shapes):
    oracle = TorchScaler(shapes, **options)
    mine = student.DynamicLossScaler(**options)
    actions, states = [], []
    for t, kind in enumerate(kinds, start=1):
        grads = step_grads(seed + t % 60, kind, shapes)
        expected_grads, expected_state = oracle.step(grads)
        found_expected = kind != "clean"
        unscaled, found_inf = mine.unscale([g.clone() for g in grads])
        what = f"GradScaler with drawn options, step {t} ({kind})"
        require(bool(found_inf) == found_expected, f"{what}: unscale's found_inf should be {found_expected}")
        with diagnose(lambda: unscale_diagnosis(unscaled, grads, expected_grads)):
            assert_close(list(unscaled), expected_grads, f"{what}: unscaled float32 grads", equal_nan=True)
        mine.update(found_expected)
        state = state_of(mine)
        actions.append(found_expected)
        states.append(state)
        with diagnose(lambda: scaler_diagnosis(options, actions, states)):
            require(state["scale"] == expected_state["scale"], f"{what}: state_dict()['scale'] differs from GradScaler's")
            require(state["growth_tracker"] == expected_state["growth_tracker"],
                    f"{what}: state_dict()['growth_tracker'] differs from GradScaler's")
            require(float(mine.scale) == expected_state["scale"], f"{what}: the scale attribute differs from GradScaler's")


def hysteresis_options():
    return st.fixed_dictionaries({
        "init_scale": st.integers(0, 24).map(lambda k: 2.0**k),
        "growth_factor": st.sampled_from([2.0, 4.0]),
        "backoff_factor": st.sampled_from([0.5, 0.25]),
        "growth_interval": st.integers(1, 5),
        "hysteresis": st.integers(2, 4),
        "min_scale": st.sampled_from([0.0, 1.0, 2.0**4, 2.0**10]),
    })


@given(options=hysteresis_options(), overflows=st.lists(st.booleans(), min_size=1, max_size=60))
def test_scaler_with_hysteresis_and_min_scale_matches_the_reference(student, options, overflows):
    reference = ReferenceScaler(**options)
    mine = student.DynamicLossScaler(**options)
    states = []
    for t, found_inf in enumerate(overflows, start=1):
        reference.update(found_inf)
        mine.update(found_inf)
        state = state_of(mine)
        states.append(state)
        expected = reference.state_dict()
        what = f"scaler with hysteresis {options['hysteresis']} and a min_scale, step {t} ({'overflow' if found_inf else 'clean'})"
        with diagnose(lambda: scaler_diagnosis(options, overflows[:t], states)):
            for key in ("scale", "growth_tracker", "hysteresis_tracker"):
                require(state[key] == expected[key], f"{what}: state_dict()[{key!r}] differs from the reference")


@given(start=st.integers(110, 127), growth_factor=st.sampled_from([2.0, 4.0, 16.0]), steps=st.integers(1, 24),
       hysteresis=st.sampled_from([1, 2]))
def test_scaler_growth_stops_at_the_float32_range(student, start, growth_factor, steps, hysteresis):
    options = dict(init_scale=2.0**start, growth_factor=growth_factor, growth_interval=1)
    oracle = TorchScaler([(2,)], **options)
    reference = ReferenceScaler(**options, hysteresis=hysteresis)
    mine = student.DynamicLossScaler(**options, hysteresis=hysteresis)
    for t in range(1, steps + 1):
        _, expected = oracle.step([torch.ones(2)])
        reference.update(False)
        mine.update(False)
        state = state_of(mine)
        what = f"clean step {t} near the top of the float32 range"
        with diagnose("growth stops where scale * growth_factor would exceed the float32 range (torch keeps the scale in float32)"):
            require(math.isfinite(state["scale"]) and state["scale"] <= float(np.finfo(np.float32).max),
                    f"{what}: the scale left the float32 range")
            require(state["scale"] == expected["scale"] == reference.state_dict()["scale"], f"{what}: the scale differs from GradScaler's")
        require(state["growth_tracker"] == expected["growth_tracker"], f"{what}: growth_tracker differs from GradScaler's")


def test_scaler_defaults_are_torch_defaults(student):
    mine = student.DynamicLossScaler()
    oracle = torch.amp.GradScaler("cpu")
    require(mine.state_dict() == {"scale": 2.0**16, "growth_tracker": 0, "hysteresis_tracker": 1},
            "DynamicLossScaler() should start at scale 2^16 with both trackers at their initial values")
    for _ in range(1999):
        mine.update(False)
    require(state_of(mine)["scale"] == oracle.get_scale(), "DynamicLossScaler(): no growth before 2000 clean steps")
    mine.update(False)
    require(state_of(mine)["scale"] == 2.0**17 and state_of(mine)["growth_tracker"] == 0,
            "DynamicLossScaler(): growth by 2 after exactly 2000 clean steps")
    mine.update(True)
    require(state_of(mine)["scale"] == 2.0**16, "DynamicLossScaler(): backoff by 0.5 after an overflow")


@given(exponent=st.integers(0, 15), seed=hidden_seeds(), dtype=st.sampled_from([torch.float16, torch.float32]),
       shape=st.sampled_from([(), (3,), (2, 2)]))
def test_scale_loss_keeps_shape_and_dtype(student, exponent, seed, dtype, shape):
    loss = torch.from_numpy(np.asarray(np.random.default_rng(seed).uniform(0.1, 1.5, shape))).to(dtype)
    mine = student.DynamicLossScaler(init_scale=2.0**exponent)
    expected = loss * 2.0**exponent          # GradScaler.scale would promote a 0-d float16 loss to float32
    assert_close(mine.scale_loss(loss.clone()), expected, f"scale_loss of a {dtype} loss of shape {shape}")
