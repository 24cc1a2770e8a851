"""a08's trusted rounding oracle is exact, and torch's float64 -> bfloat16 cast is not (why the oracle exists)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ORACLE = Path(__file__).resolve().parents[1] / "grading" / "a08_mixed_precision" / "oracle.py"
spec = importlib.util.spec_from_file_location("a08_oracle_under_test", ORACLE)
oracle = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = oracle   # dataclasses look their module up there
spec.loader.exec_module(oracle)


def test_torch_bfloat16_cast_rounds_twice_and_the_oracle_does_not():
    tie_plus_tiny = 1.0 + 2.0**-8 + 2.0**-40    # above the tie between 1 and 1 + 2^-7 by less than float32 can hold
    torch_value = torch.tensor([tie_plus_tiny], dtype=torch.float64).to(torch.bfloat16).double().item()
    assert torch_value == 1.0                   # float64 -> float32 gives the exact tie, which goes to even
    assert oracle.exact_bf16([tie_plus_tiny])[0] == 1.0 + 2.0**-7
    assert oracle.exact_bf16([1.0 + 2.0**-8])[0] == 1.0            # the exact tie: to even
    assert oracle.exact_bf16([1.0 + 3 * 2.0**-8])[0] == 1.0 + 2.0**-6   # tie with an odd neighbour: up


def test_fp16_oracle_agrees_with_numpy_on_hard_cases_and_random_values():
    rng = np.random.default_rng(0)
    values = np.concatenate([oracle.hard_cases(oracle.FP16), oracle.fp16_overflow_cases(),
                             rng.standard_normal(2000) * 10.0 ** rng.integers(-9, 6, 2000)])
    assert oracle.same_values(oracle.nearest(values, oracle.FP16), oracle.numpy_fp16(values))


def test_bf16_oracle_agrees_with_torch_where_torch_rounds_once():
    """On float32 inputs torch's float32 -> bfloat16 cast is a single correct rounding."""
    rng = np.random.default_rng(1)
    values = (rng.standard_normal(2000) * 10.0 ** rng.integers(-40, 38, 2000)).astype(np.float32)
    values = np.concatenate([values, oracle.hard_cases(oracle.BF16, binades=[-133, -127, -126, 0, 127]).astype(np.float32)])
    expected = torch.from_numpy(values).to(torch.bfloat16).double().numpy()
    assert oracle.same_values(oracle.exact_bf16(values.astype(np.float64)), expected)


@pytest.mark.parametrize("fmt", [oracle.FP16, oracle.BF16], ids=lambda f: f.name)
def test_overflow_threshold_is_a_tie_that_rounds_to_inf(fmt):
    threshold = fmt.overflow_threshold
    assert oracle.nearest([threshold], fmt)[0] == np.inf
    assert oracle.nearest([np.nextafter(threshold, 0)], fmt)[0] == fmt.max_finite


def test_fp16_spacing_at_every_binade_and_at_the_top():
    values = oracle.fp16_values_of_every_binade()
    spacing = oracle.fp16_spacing(values)
    assert spacing[list(values).index(65504.0)] == 32.0
    assert oracle.fp16_spacing([-0.5])[0] == oracle.fp16_spacing([0.5])[0] == 2.0**-11
    assert oracle.fp16_spacing([0.0])[0] == 2.0**-24
