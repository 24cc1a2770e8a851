"""Shared hypothesis strategies for grading suites (trusted side).

Inputs avoid kinks and overflow unless a test is about them: values are bounded and
finite, shapes are small enough that a derandomized run of 25 examples costs milliseconds.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def sides(min_side: int = 1, max_side: int = 6) -> st.SearchStrategy[int]:
    return st.integers(min_side, max_side)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 6) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def finite_floats(bound: float = 10.0, *, min_magnitude: float = 0.0) -> st.SearchStrategy[float]:
    """Floats in [-bound, bound] (no nan, no inf); |x| >= min_magnitude when given."""
    values = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if min_magnitude > 0:
        values = values.filter(lambda x: abs(x) >= min_magnitude)
    return values


def float64_arrays(shape, bound: float = 10.0) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of `shape` (a tuple or a strategy of tuples) with entries in [-bound, bound]."""
    return hnp.arrays(np.float64, shape, elements=finite_floats(bound))


# Public and hidden tests draw their data from disjoint seed ranges, so a hidden input is
# never one a student has seen in a public test's feedback.
PUBLIC_SEEDS = (0, 2**24 - 1)
HIDDEN_SEEDS = (2**24, 2**31 - 64)


def public_seeds() -> st.SearchStrategy[int]:
    """Seeds for public tests (0 .. 2**24 - 1)."""
    return st.integers(*PUBLIC_SEEDS)


def hidden_seeds() -> st.SearchStrategy[int]:
    """Seeds for hidden tests (2**24 .. 2**31 - 64): disjoint from the public ones; a test may
    use seed + k for k < 64 for further streams."""
    return st.integers(*HIDDEN_SEEDS)


def random_normal(seed: int, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    """Well-spread values from a seed: hypothesis draws the seed and the shape, numpy the data.

    Cheaper to shrink than element-wise strategies, and free of the many exact zeros and
    repeated values that element-wise draws produce.
    """
    values = np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale)  # 0-d stays an array
    return values.astype(dtype)


def random_tensor(seed: int, shape, dtype=None, scale: float = 1.0):
    """A torch tensor with `random_normal` values (float64 unless dtype says otherwise); 0-d too."""
    import torch

    return torch.from_numpy(np.asarray(random_normal(seed, shape, scale=scale))).to(dtype or torch.float64)
