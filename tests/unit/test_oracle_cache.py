"""The oracle cache answers only what a pure function would answer again, and shares it across a batch."""
import random
import sqlite3

import numpy as np
import pytest
import torch

from autograder.harness.oracle_cache import CachedModule, OracleCache, fingerprint


def test_fingerprint_tells_apart_what_a_function_could_tell_apart():
    values = [0.0, -0.0, float("nan"), 1, True, 1.0, "1", b"1", (1,), [1], {"a": 1}, {"b": 1},
              np.array([1.0]), np.array([1.0], dtype=np.float32), np.array([[1.0]]), np.float32(1.0),
              torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.bfloat16),
              torch.tensor(1.0), torch.float32, np.dtype("float32"), slice(0, 2), None]
    prints = [fingerprint(value) for value in values]
    assert len(set(prints)) == len(values)
    assert fingerprint(np.arange(6.0).reshape(2, 3).T) == fingerprint(np.ascontiguousarray(np.arange(6.0).reshape(2, 3).T))


@pytest.mark.parametrize("value", [torch.ones(2, requires_grad=True), object(), lambda: 1, np.array([object()])])
def test_values_that_are_not_plain_data_are_never_cached(value):
    cache = OracleCache()
    calls = []

    def oracle(x):
        calls.append(1)
        return 3.0

    assert cache.call("f", oracle, (value,), {}) == 3.0
    assert cache.call("f", oracle, (value,), {}) == 3.0
    assert len(calls) == 2 and cache.stats.hits == 0


def test_a_pure_call_is_answered_again_as_a_fresh_copy():
    cache = OracleCache()
    calls = []

    def oracle(x, scale=1.0):
        calls.append(1)
        return {"y": x * scale, "t": torch.arange(3) * scale}

    first = cache.call("f", oracle, (np.arange(3.0),), {"scale": 2.0})
    first["y"][0] = 99.0                              # the test changes what it got
    again = cache.call("f", oracle, (np.arange(3.0),), {"scale": 2.0})
    assert len(calls) == 1 and cache.stats.hits == 1
    np.testing.assert_array_equal(again["y"], [0.0, 2.0, 4.0])
    torch.testing.assert_close(again["t"], torch.tensor([0.0, 2.0, 4.0]))
    cache.call("f", oracle, (np.arange(3.0),), {"scale": -0.0})   # other arguments: computed
    assert len(calls) == 2


def test_a_function_that_changes_its_arguments_or_draws_random_numbers_is_never_cached():
    cache = OracleCache()

    def in_place(x):
        x += 1
        return x.sum()

    def draws(x):
        return x + np.random.rand()

    def draws_python(x):
        return x + random.random()

    for name, function in (("in_place", in_place), ("draws", draws), ("draws_python", draws_python)):
        for _ in range(3):
            cache.call(name, function, (np.zeros(2),), {})
    assert cache.stats.hits == 0
    assert cache.impure == {"in_place", "draws", "draws_python"}


def test_the_default_dtype_is_part_of_the_question():
    cache = OracleCache()

    def ones(n):
        return torch.ones(n)

    assert cache.call("ones", ones, (2,), {}).dtype == torch.float32
    torch.set_default_dtype(torch.float64)
    try:
        assert cache.call("ones", ones, (2,), {}).dtype == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)


def test_the_store_is_shared_by_the_processes_of_a_batch(tmp_path):
    path = tmp_path / "suite.sqlite"
    first, second = OracleCache(path), OracleCache(path)
    calls = []

    def oracle(x):
        calls.append(1)
        return x * 2

    first.call("f", oracle, (np.arange(4.0),), {})
    np.testing.assert_array_equal(second.call("f", oracle, (np.arange(4.0),), {}), np.arange(4.0) * 2)
    assert len(calls) == 1 and second.stats.hits == 1
    assert sqlite3.connect(path).execute("SELECT count(*) FROM answers").fetchone()[0] == 1


def test_reuse_off_computes_every_call_and_still_times_it():
    cache = OracleCache(reuse=False)
    calls = []
    for _ in range(3):
        cache.call("f", lambda x: calls.append(1) or x, (1.0,), {})
    assert len(calls) == 3 and cache.stats.hits == 0 and cache.stats.calls == 3


def test_timing_the_reference_leaves_the_tests_values_and_random_state_alone():
    cache = OracleCache()
    x = np.zeros(3)

    def step(x):
        x += np.random.rand(3)    # in place, and draws
        return x

    np.random.seed(5)
    expected_next = np.random.rand()
    np.random.seed(5)
    seconds = cache.reference_seconds("reference.step", step, (x,), {})
    assert seconds is not None and seconds >= 0
    np.testing.assert_array_equal(x, np.zeros(3))
    assert np.random.rand() == expected_next


def test_cached_module_routes_functions_and_leaves_the_rest():
    import types

    module = types.ModuleType("ref")
    module.CONSTANT = 3
    exec("def double(x):\n    return x * 2\nclass Thing:\n    pass\n", module.__dict__)
    module.double.__module__ = "ref"
    cache = OracleCache()
    proxy = CachedModule(module, cache, "reference")
    assert proxy.CONSTANT == 3 and proxy.Thing is module.Thing
    assert proxy.double(2.0) == 4.0 and proxy.double(2.0) == 4.0
    assert cache.stats.hits == 1


def test_the_batch_store_is_shared_only_where_workers_cannot_reach_it(monkeypatch):
    from autograder.pipeline import run
    from autograder.runtime.contract import IsolationMeasures

    monkeypatch.delenv("AUTOGRADER_ORACLE_CACHE", raising=False)
    monkeypatch.setattr(run, "detect_isolation", lambda: IsolationMeasures(mode="none"))
    assert run.oracle_cache_for("abc") == "memory"
    monkeypatch.setattr(run, "detect_isolation", lambda: IsolationMeasures(mode="root"))
    assert run.oracle_cache_for("abc").endswith("abc.sqlite")
    monkeypatch.setenv("AUTOGRADER_ORACLE_CACHE", "0")
    assert run.oracle_cache_for("abc") == "off"
