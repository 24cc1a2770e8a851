"""The a02 suite's fixtures: the trusted instruments of oracle.py, handed to tests by name.

- `smooth_function(kind, seed, shape)`: oracle.make_smooth_function
- `quadratic(seed, n, rank)`: oracle.make_quadratic
- `graphs`: oracle.Graphs (random computational graphs and their torch oracle)
- `tol`: oracle.Tolerances
"""
from __future__ import annotations

import pytest

from oracle import Graphs, Tolerances, make_quadratic, make_smooth_function


@pytest.fixture(scope="session")
def smooth_function():
    return make_smooth_function


@pytest.fixture(scope="session")
def quadratic():
    return make_quadratic


@pytest.fixture(scope="session")
def graphs():
    return Graphs


@pytest.fixture(scope="session")
def tol():
    return Tolerances
