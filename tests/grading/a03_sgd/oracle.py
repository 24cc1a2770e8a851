"""Trusted oracles of the a03 suite that public and hidden tests share (released with the
public tests: nothing here may re-implement a hidden check's answer)."""
from __future__ import annotations

import itertools

import numpy as np

from autograder.harness.compare import Tolerance


def enumerated_variance(G, batch_size):
    """E ||mean(G[S]) - mean(G)||^2 by averaging over all C(N, batch_size) batches S."""
    g = G.mean(axis=0)
    errors = [np.sum((G[list(batch)].mean(axis=0) - g) ** 2)
              for batch in itertools.combinations(range(len(G)), batch_size)]
    return float(np.mean(errors))


# Enumeration averages up to C(9, 4) = 126 squared norms in another order than any closed
# form; 1e-9 relative is thousands of ulps of slack and still rejects every wrong formula
# (the nearest, sigma^2 / B without the correction, is off by (N - B) / (N - 1)).
ENUMERATION = Tolerance(rtol=1e-9, atol=1e-14)
