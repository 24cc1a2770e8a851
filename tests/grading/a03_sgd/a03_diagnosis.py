"""Diagnoses for a03 that the public tests may use (they give no answer away): run only
when a check fails, on the trusted side. The training loop and schedule experiments, which
re-implement the answer, live in a03_hidden_diagnosis.py (never released).
"""
from __future__ import annotations

import numpy as np

from autograder.harness import first_true


def near(a, b, rtol=1e-9, atol=1e-12) -> bool:
    try:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except Exception:  # noqa: BLE001
        return False


def explain_shuffle(batches, n, batch_size, seed) -> str | None:
    def legacy():
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            order = np.random.permutation(n)
        finally:
            np.random.set_state(state)
        joined = np.concatenate([np.asarray(b) for b in batches]) if len(batches) else np.zeros(0)
        return n > 1 and np.array_equal(joined, order[:len(joined)]) and not np.array_equal(
            joined, np.random.default_rng(seed).permutation(n)[:len(joined)])

    return first_true([("the order comes from the legacy global generator (np.random.seed, np.random.permutation); "
                        "use a generator of your own: np.random.default_rng(seed).permutation(n)", legacy)])
