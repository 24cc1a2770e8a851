"""Whose fault (issue 10, items 1 and 8): whatever arrives from the worker is data to validate.

A failure to decode, convert or re-send something the worker produced is the student's (that
test fails or errors with a plain sentence); only a fault of trusted code on trusted inputs is a
grader-error. Frames carry an unguessable request id, so a stale or forged frame is never read as
the reply to a later call. Nested callbacks work.
"""
from __future__ import annotations

import os
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.course import records
from autograder.errors import GraderFault
from autograder.harness.compare import assert_close
from autograder.harness.outcomes import classify
from autograder.runtime.protocol import Channel, Encoder
from autograder.sandbox.errors import StudentError
from autograder.sandbox.remote import StudentModule
from autograder.sandbox.session import CallLimits, Session
from autograder.sandbox.worker import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]


def _status(error: BaseException, hidden: bool = False) -> tuple[str, str]:
    status, message, _ = classify(error, "call", hidden=hidden)
    return status, message


def _session(tmp_path: Path, source: str, preload=("numpy",), **limits) -> Session:
    directory = tmp_path / "sub"
    directory.mkdir(exist_ok=True)
    (directory / "hostile.py").write_text(textwrap.dedent(source))
    spec = WorkerSpec(directory, "hostile", preload=preload, zygote=None)
    return Session(spec, CallLimits(20, 60, **limits))


def _run(session: Session, body) -> tuple[str, str]:
    """Run a test body against the session; its outcome as the grader would record it."""
    session.begin_test()
    try:
        body(StudentModule(session))
    except BaseException as error:  # noqa: BLE001 - the classification is what is under test
        return _status(error)
    return records.PASSED, ""


# ---------------------------------------------------------------- item 1, as observed

HPU_REPLY = '''
import sys
protocol = sys.modules["_autograder_runtime.protocol"]
original = protocol.Encoder.encode

def encode(self, value, depth=0):
    if depth == 0 and type(value) is list:  # every reply becomes a tensor on a device the grader lacks
        return {"$": "tensor", "dtype": "float64", "shape": [1], "device": "hpu", "b": self._buffer(bytes(8))}
    return original(self, value, depth)

protocol.Encoder.encode = encode

def f(x):
    return [float(v) for v in x]
'''


def test_reply_on_a_device_the_grader_lacks_is_the_students_error(tmp_path):
    session = _session(tmp_path, HPU_REPLY)
    try:
        status, message = _run(session, lambda student: student.f(np.ones(3)))
    finally:
        session.close()
    assert status == records.ERROR, message
    assert "cannot use" in message


# variant: the worker answers with a torch dtype object in a numpy-only grader, and with a device object
@pytest.mark.parametrize("node", [
    {"$": "torch_dtype", "v": "float32"},
    {"$": "torch_device", "v": "xla:0"},
    {"$": "tensor", "dtype": "float64", "shape": [1], "device": "cuda:99", "b": 0},
])
def test_torch_values_the_grader_cannot_build_are_the_students_error(tmp_path, node, monkeypatch):
    # The premise, made explicit: a grader that has not loaded torch (earlier tests in this process may have).
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    source = f'''
import sys
protocol = sys.modules["_autograder_runtime.protocol"]
original = protocol.Encoder.encode
NODE = {node!r}

def encode(self, value, depth=0):
    if depth == 0 and value == "bait":
        self._buffer(bytes(8))
        return NODE
    return original(self, value, depth)

protocol.Encoder.encode = encode

def f():
    return "bait"
'''
    session = _session(tmp_path, source)
    try:
        status, message = _run(session, lambda student: student.f())
    finally:
        session.close()
    assert status in (records.ERROR, records.FAILED), message


OBJECT_ARRAY = '''
class Handle:
    pass

def handles(n):
    return [Handle() for _ in range(n)]

def f(x):
    return 1.0
'''


def test_value_built_from_student_handles_that_cannot_be_sent_back_is_the_students(tmp_path):
    session = _session(tmp_path, OBJECT_ARRAY)

    def body(student):
        objects = student.handles(3)
        array = np.asarray(objects + [1.5], dtype=object)  # an object array over handles
        student.f(array)

    try:
        status, message = _run(session, body)
    finally:
        session.close()
    assert status == records.ERROR, message
    assert "your code's output" in message


def test_a_trusted_value_that_cannot_cross_is_still_the_graders(tmp_path):
    session = _session(tmp_path, OBJECT_ARRAY)
    session.begin_test()
    try:
        with pytest.raises(GraderFault):
            StudentModule(session).f(np.asarray([object()], dtype=object))
    finally:
        session.close()


# ---------------------------------------------------------------- request ids

STALE_FRAME = '''
import sys
runtime = sys.modules["_autograder_runtime.worker"]
protocol = sys.modules["_autograder_runtime.protocol"]

def f(x):
    return x

servers = []
original_handle = runtime.Server.handle

def handle(self, header, buffers):
    servers.append(self)  # the runtime's server, captured (gc is refused by the audit hook)
    return original_handle(self, header, buffers)

runtime.Server.handle = handle

def plant():
    """Write a forged reply for the NEXT call into the grader's channel, then answer this one."""
    server = servers[-1]
    for rid in (server.rid + 1, None, 0):
        server.channel.send({"ok": 1000, "rid": rid}, [])
    return 1
'''


def test_a_planted_frame_is_never_read_as_a_later_calls_reply(tmp_path):
    session = _session(tmp_path, STALE_FRAME)
    try:
        session.begin_test()
        student = StudentModule(session)
        with pytest.raises(StudentError) as raised:  # the call that planted: its real reply is not first
            student.plant()
        assert "answers no pending call" in raised.value.message
        assert student.f(5) == 5   # a fresh worker: the planted 1000 never surfaces
    finally:
        session.close()


# ---------------------------------------------------------------- item 8: nested callbacks

NESTED = '''
class Sized:
    def __init__(self, callback):
        self.callback = callback

    def __len__(self):
        return int(self.callback(2))      # calls the trusted function again, from inside a callback


def apply(callback, x):
    return callback(Sized(callback)) + x


def deep(callback, n):
    return n if n == 0 else callback(n)
'''


def test_nested_callbacks_work(tmp_path):
    session = _session(tmp_path, NESTED)
    try:
        session.begin_test()
        student = StudentModule(session)

        def trusted(value):
            return 10 * value if isinstance(value, int) else len(value)  # len() goes back into the worker

        assert student.apply(trusted, 1) == 21

        def recurse(n):  # variant: callback -> student -> callback -> ... five levels deep
            return student.deep(recurse, n - 1) + 1

        assert student.deep(recurse, 5) == 5
    finally:
        session.close()


def test_callback_with_the_wrong_arguments_fails_with_a_plain_sentence(tmp_path):
    session = _session(tmp_path, "def apply(callback):\n    return callback(1, 2, 3, surprise=4)\n")
    try:
        status, message = _run(session, lambda student: student.apply(lambda x: x))
    finally:
        session.close()
    assert status == records.ERROR and "wrong arguments" in message, message


def test_callback_arguments_count_against_the_call_budget(tmp_path):
    source = "import numpy as np\ndef apply(callback):\n    return callback(np.zeros(4 << 20))\n"
    session = _session(tmp_path, source, call_bytes=8 << 20, test_bytes=64 << 20)
    kept = []
    try:
        status, message = _run(session, lambda student: student.apply(kept.append))
    finally:
        session.close()
    assert status == records.ERROR and "TooMuchData" in message, message
    assert kept == []


def test_replies_over_the_test_budget_fail_that_test(tmp_path):
    source = "import numpy as np\ndef big():\n    return np.zeros(1 << 20)\n"
    session = _session(tmp_path, source, call_bytes=16 << 20, test_bytes=20 << 20)
    try:
        status, message = _run(session, lambda student: [student.big() for _ in range(5)])
        assert status == records.ERROR and "TooMuchData" in message, message
        assert _run(session, lambda student: student.big())[0] == records.PASSED  # a new test, a new budget
    finally:
        session.close()


# ---------------------------------------------------------------- property: random replies at the encoder

class FakeWorker:
    """Plays the worker: answers each request with the frame `reply(rid)` builds."""

    def __init__(self, reply):
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        self.channel = Channel(from_worker_r, to_worker_w)
        self.inner = Channel(to_worker_r, from_worker_w)
        self.fds = [to_worker_r, to_worker_w, from_worker_r, from_worker_w]
        self.reply = reply
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            header, _ = self.inner.receive(deadline=None)
            frame, buffers = self.reply(header.get("rid"))
            self.inner.send(frame, buffers)
            self.inner.receive(deadline=None)  # a callback's result, if the frame asked for one
        except Exception:
            pass
        self.close()

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def alive(self):
        return bool(self.fds)

    def kill(self):
        self.close()

    stop = kill

    def wait_dead(self, grace=1.0):
        self.close()

    def describe_exit(self):
        return ""

    def output(self):
        return ""


TAGS = ["tuple", "dict", "int", "float", "bytes", "ndarray", "npscalar", "tensor", "torch_dtype", "torch_device",
        "handle", "method", "callback", "pickle", "", None]
KEYS = ["$", "v", "k", "b", "dtype", "shape", "device", "id", "type", "callable"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(TAGS), st.sampled_from(["float64", "int8", "object", "bfloat16",
                                                                                  "cpu", "cuda", "hpu", "nan", "1e5"]))
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    st.fixed_dictionaries({"$": st.sampled_from(TAGS)}, optional={k: inner for k in KEYS[1:]}),
), max_leaves=12)
values = st.recursive(
    st.one_of(st.none(), st.integers(-2**80, 2**80), st.floats(), st.text(max_size=8), st.binary(max_size=16),
              st.builds(lambda n, d: np.arange(n).astype(d), st.integers(0, 5),
                        st.sampled_from(["float64", "float32", "int64", "bool", "complex128", "uint8"]))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=3)),
    max_leaves=8)


@st.composite
def frames(draw):
    """A reply frame: a well-formed value, a mutated tree, or a malformed header, with right or wrong rid."""
    kind = draw(st.sampled_from(["value", "tree", "error", "callback", "header"]))
    buffers = draw(st.lists(st.binary(max_size=24), max_size=3))
    rid_ok = draw(st.booleans()) or kind == "value"
    if kind == "value":
        encoder = Encoder()
        tree = encoder.encode(draw(values))
        body, buffers = {"ok": tree}, encoder.buffers
    elif kind == "tree":
        body = {"ok": draw(trees)}
    elif kind == "error":
        body = {"error": draw(st.one_of(trees, st.fixed_dictionaries({"type": scalars, "message": scalars,
                                                                      "traceback": scalars})))}
    elif kind == "callback":
        body = {"callback": draw(scalars), "cid": draw(scalars), "args": draw(trees), "kwargs": draw(trees)}
    else:
        body = draw(st.dictionaries(st.text(max_size=8), trees, max_size=3))
    return body, buffers, rid_ok, draw(st.sampled_from(["close", "equal", "arith"]))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(frames())
def test_random_replies_never_yield_grader_error(frame):
    body, buffers, rid_ok, use = frame

    def reply(rid):
        header = dict(body)
        header["rid"] = rid if rid_ok else (rid or 0) + 1
        return header, buffers

    spec = WorkerSpec(Path("/nonexistent"), "fake", zygote=None)
    session = Session(spec, CallLimits(5, 10))
    session.worker = FakeWorker(reply)
    session.begin_test()
    student = StudentModule(session)
    try:
        result = student.f(np.arange(3.0), callback=lambda x: x)
        if use == "close":
            assert_close(result, np.arange(3.0), "f of a vector")
        elif use == "equal":
            assert result == [1, 2]
        else:
            np.asarray(result, dtype=float) * 2 + 1
    except BaseException as error:  # noqa: BLE001
        status, message = _status(error)
        assert status != records.GRADER_ERROR, message
        hidden_status, hidden_message = _status(error, hidden=True)
        assert hidden_status == status
    finally:
        session.worker.close()
