"""The trusted oracles' answers, computed once per batch and shared by every submission.

Hypothesis is derandomized, so every submission that passes draws the same examples, and the
reference (or an `oracle.py` function) gives the same answer to the same arguments for the
whole class. A call is answered from the batch's cache when its arguments are plain data
(numbers, strings, containers, numpy arrays, CPU tensors without autograd) and were seen
before; otherwise the function runs and, when it behaved as a pure function, its answer is
stored. A function that changed its arguments in place, drew from a global random generator or
returned something that is not plain data is never cached (and stays uncached in that run).

The store is one SQLite file per suite hash in the batch's private folder (0700, out of the
sandbox's reach), shared by the batch's trusted processes; answers are pickled by the trusted
side only. Each call's measured time is stored with it: the adaptive call budget reads it.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import io
import pickle
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MAX_STORED_BYTES = 16 << 20


class Unsupported(Exception):
    """A value that is not plain data: the call is not cached."""


def fingerprint(values: Any) -> bytes:
    """A digest of plain data that tells apart every value a function could tell apart (-0.0, nan, dtypes)."""
    digest = hashlib.sha256()
    _feed(values, digest, 0)
    return digest.digest()


def _feed(value: Any, digest: Any, depth: int) -> None:
    if depth > 32:
        raise Unsupported("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str):
        digest.update(f"{kind.__name__}:{value!r};".encode())
    elif kind is bytes:
        digest.update(b"bytes:%d:" % len(value) + value)
    elif kind in (tuple, list):
        digest.update(f"{kind.__name__}:{len(value)}(".encode())
        for item in value:
            _feed(item, digest, depth + 1)
        digest.update(b")")
    elif kind is dict:
        digest.update(f"dict:{len(value)}(".encode())
        for key, item in value.items():
            _feed(key, digest, depth + 1)
            _feed(item, digest, depth + 1)
        digest.update(b")")
    elif kind in (slice, range):
        digest.update(f"{kind.__name__}:{value!r};".encode())
    else:
        _feed_array(value, digest)


def _feed_array(value: Any, digest: Any) -> None:
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if numpy is not None and type(value) is numpy.ndarray and value.dtype != object:
        digest.update(f"ndarray:{value.dtype.str}:{value.shape}:".encode())
        digest.update(numpy.ascontiguousarray(value).tobytes())
    elif numpy is not None and isinstance(value, numpy.generic) and not isinstance(value, numpy.object_):
        digest.update(f"npscalar:{value.dtype.str}:".encode() + value.tobytes())
    elif numpy is not None and isinstance(value, numpy.dtype):
        digest.update(f"npdtype:{value.str};".encode())
    elif torch is not None and type(value) is torch.Tensor:
        if value.requires_grad or value.device.type != "cpu" or value.layout != torch.strided or value.is_quantized:
            raise Unsupported("a tensor with autograd, off the CPU or not strided")
        digest.update(f"tensor:{value.dtype}:{tuple(value.shape)}:".encode())
        digest.update(value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif torch is not None and type(value) is torch.dtype:
        digest.update(f"torchdtype:{value};".encode())
    else:
        raise Unsupported(type(value).__name__)


def _random_states() -> list:
    """The global generators' states (random, numpy, torch): a call that moves them is not pure."""
    states: list = [sys.modules["random"].getstate() if "random" in sys.modules else None]
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    states.append(numpy.random.get_state(legacy=False) if numpy is not None else None)
    states.append(torch.get_rng_state() if torch is not None else None)
    return states


def _same_states(before: list, after: list) -> bool:
    if before[0] != after[0]:
        return False
    if before[1] is not None:
        import numpy

        if before[1]["state"]["pos"] != after[1]["state"]["pos"] or not numpy.array_equal(before[1]["state"]["key"], after[1]["state"]["key"]):
            return False
    if before[2] is not None:
        import torch

        return bool(torch.equal(before[2], after[2]))
    return True


def _restore_states(states: list) -> None:
    if states[0] is not None:
        sys.modules["random"].setstate(states[0])
    if states[1] is not None:
        sys.modules["numpy"].random.set_state(states[1])
    if states[2] is not None:
        sys.modules["torch"].set_rng_state(states[2])


def _tensor_from(data: bytes, dtype: str, shape: tuple) -> Any:
    import torch

    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    return flat.view(getattr(torch, dtype.removeprefix("torch."))).reshape(shape)


class _Pickler(pickle.Pickler):
    """Plain tensors as their bytes (torch's own pickling costs ~100 µs a tensor; this, a few)."""

    def reducer_override(self, value: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and type(value) is torch.Tensor:
            data = value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            return _tensor_from, (data, str(value.dtype), tuple(value.shape))
        return NotImplemented


def _dumps(value: Any) -> bytes:
    stream = io.BytesIO()
    _Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return stream.getvalue()


@dataclass
class OracleStats:
    """What the trusted oracles cost in this run (outermost calls only)."""

    calls: int = 0
    hits: int = 0
    seconds: float = 0.0
    budget_calls: int = 0      # reference calls made only to time a student call


@dataclass
class OracleCache:
    """Answers and timings of trusted functions for one suite hash; `path=None` keeps them in memory only."""

    path: Path | None = None
    reuse: bool = True                   # False: every call computes (answers are only timed), for comparisons
    stats: OracleStats = field(default_factory=OracleStats)
    impure: set[str] = field(default_factory=set)
    depth: int = 0
    _connection: sqlite3.Connection | None = None
    _memory: dict[bytes, tuple[float, bytes | None]] = field(default_factory=dict)

    # ------------------------------------------------------------------ store
    def _db(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._connection is None:
            try:
                self._connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=OFF")
                self._connection.execute("CREATE TABLE IF NOT EXISTS answers (key BLOB PRIMARY KEY, seconds REAL, answer BLOB)")
            except sqlite3.Error:
                self.path, self._connection = None, None  # an unusable store: compute everything
                return None
        return self._connection

    def lookup(self, key: bytes) -> tuple[float, bytes | None] | None:
        if key in self._memory:
            return self._memory[key]
        db = self._db()
        if db is None:
            return None
        with contextlib.suppress(sqlite3.Error):
            row = db.execute("SELECT seconds, answer FROM answers WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self._memory[key] = (row[0], row[1])
                return self._memory[key]
        return None

    def store(self, key: bytes, seconds: float, answer: bytes | None) -> None:
        self._memory[key] = (seconds, answer)
        db = self._db()
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?)", (key, seconds, answer))

    def after_fork(self) -> None:
        """In a forked child: its own store connection (SQLite connections never cross a fork)."""
        self._connection = None

    # ------------------------------------------------------------------ calls
    def call(self, name: str, function: Callable, args: tuple, kwargs: dict) -> Any:
        """`function(*args, **kwargs)`, answered from the cache when it is a known pure call."""
        if self.depth:  # an oracle calling another: the outer call is the one cached and timed
            return function(*args, **kwargs)
        key = self._key(name, args, kwargs)
        if key is None:  # a checker (the student among its arguments) or a callable: not an oracle call
            return function(*args, **kwargs)
        self.stats.calls += 1
        if name in self.impure or not self.reuse:
            return self._run(name, function, args, kwargs, None)
        entry = self.lookup(key)
        if entry is not None and entry[1] is not None:
            self.stats.hits += 1
            return pickle.loads(entry[1])
        return self._run(name, function, args, kwargs, key)

    @staticmethod
    def _key(name: str, args: tuple, kwargs: dict) -> bytes | None:
        torch = sys.modules.get("torch")
        context = (str(torch.get_default_dtype()), torch.get_float32_matmul_precision()) if torch is not None else ()
        try:
            return fingerprint((name, args, kwargs, context))
        except Unsupported:
            return None

    def _run(self, name: str, function: Callable, args: tuple, kwargs: dict, key: bytes | None,
             counted: bool = True) -> Any:
        states = _random_states() if key is not None else None
        self.depth += 1
        started = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        except BaseException:
            if key is not None:
                self.store(key, time.perf_counter() - started, None)  # its time still sizes the student's budget
            raise
        finally:
            self.depth -= 1
            if counted:
                self.stats.seconds += time.perf_counter() - started
        seconds = time.perf_counter() - started
        if key is not None:
            self._remember(name, key, seconds, states, args, kwargs, result)
        return result

    def _remember(self, name: str, key: bytes, seconds: float, states: list, args: tuple, kwargs: dict, result: Any) -> None:
        try:
            pure = _same_states(states, _random_states()) and self._key(name, args, kwargs) == key
            fingerprint(result)
        except Unsupported:
            self.store(key, seconds, None)
            return
        if not pure:
            self.impure.add(name)
            self.store(key, seconds, None)  # its time, never its answer
            return
        answer = _dumps(result)
        self.store(key, seconds, answer if len(answer) <= MAX_STORED_BYTES else None)

    def reference_seconds(self, name: str, function: Callable, args: tuple, kwargs: dict) -> float | None:
        """How long the reference takes for exactly this call: from the store, or timed now on copies.

        Timing on copies leaves the test's values and the global random generators as they were.
        """
        key = self._key(name, args, kwargs)
        if key is None or self.depth:
            return None
        entry = self.lookup(key)
        if entry is not None:
            return entry[0]
        if name in self.impure:
            return None
        try:
            copies = copy.deepcopy((args, kwargs))
        except Exception:
            return None
        states = _random_states()
        self.stats.budget_calls += 1
        with contextlib.suppress(Exception):
            self._run(name, function, *copies, key, counted=False)
        _restore_states(states)
        entry = self.lookup(key)
        return entry[0] if entry is not None else None

    def wrap(self, name: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def cached(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, function, args, kwargs)

        cached.__wrapped_oracle__ = function  # type: ignore[attr-defined]
        return cached


class CachedModule:
    """A module whose plain functions answer through the cache; everything else is the module's own."""

    def __init__(self, module: Any, cache: OracleCache, prefix: str):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_cache", cache)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_wrapped", {})

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not inspect.isfunction(value) or name.startswith("_"):
            return value
        wrapped = self._wrapped.get(name)
        if wrapped is None or wrapped.__wrapped_oracle__ is not value:
            wrapped = self._wrapped[name] = self._cache.wrap(f"{self._prefix}.{name}", value)
        return wrapped

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._module, name, value)

    def __dir__(self) -> list[str]:
        return dir(self._module)

    def __repr__(self) -> str:
        return f"<cached {self._module!r}>"


def wrap_module_functions(module: Any, cache: OracleCache, prefix: str) -> None:
    """Route the module's own public functions through the cache (an oracle.py, before the tests import it)."""
    for name, value in list(vars(module).items()):
        if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__:
            setattr(module, name, cache.wrap(f"{prefix}.{name}", value))

