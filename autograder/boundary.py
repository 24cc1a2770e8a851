"""The trusted side of the process boundary: the `student` object the grading tests use.

Student code never runs in this process. `student.f(x)` sends a request to the worker (see
autograder.runtime.protocol), waits at most the call limit, and decodes the reply: copies of
plain values, or handles (RemoteObject) whose methods, attributes and operators forward.
A hung worker is killed (StudentTimeout), a dead one reported (WorkerCrashed); the next call
starts a fresh worker, so one bad call costs one test.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from autograder.errors import GraderFault
from autograder.runtime.protocol import Decoder, Encoder, NotEncodable, ProtocolViolation
from autograder.sandbox import WorkerProcess, WorkerSpec


class StudentError(Exception):
    """Student code raised (or returned something that cannot cross). Status: error."""

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        self.type_name, self.message, self.traceback = type_name, message, traceback
        super().__init__(f"{type_name}: {message}")


class StudentTimeout(Exception):
    """A call into student code ran past its limit; the worker was killed. Status: timeout."""


class WorkerCrashed(Exception):
    """The worker died during a call (segfault, os._exit, out of memory). Status: crashed."""


class SubmissionRejected(Exception):
    """The submission cannot even be imported: every test fails with this reason."""


@dataclass
class CallLimits:
    call_seconds: float
    test_seconds: float
    test_deadline: float | None = None


@dataclass
class Session:
    """One submission's worker, restarted after a crash or timeout; counts its calls."""

    spec: WorkerSpec
    limits: CallLimits
    worker: WorkerProcess | None = None
    generation: int = 0
    calls: int = 0
    restarts: int = 0
    pending_release: list[int] = field(default_factory=list)
    rejected: str | None = None
    callback_table: dict[int, Callable] = field(default_factory=dict)
    depth: int = 0
    poisoned: Exception | None = None
    collected_output: str = ""
    isolation: dict = field(default_factory=dict)

    def begin_test(self) -> None:
        """A new test: a fresh time budget, and earlier timeouts or crashes forgotten."""
        self.limits.test_deadline = time.monotonic() + self.limits.test_seconds
        self.poisoned = None

    # ---------------------------------------------------------------- life cycle
    def ensure_worker(self) -> WorkerProcess:
        if self.rejected is not None:
            raise SubmissionRejected(self.rejected)
        if self.worker is not None and self.worker.alive():
            return self.worker
        if self.worker is not None:
            self.restarts += 1
            self._retire(self.worker)
        self.generation += 1
        self.pending_release.clear()
        worker = WorkerProcess.start(self.spec)
        self._await_isolation(worker)
        try:
            header, _ = worker.channel.receive(deadline=time.monotonic() + self.spec.start_seconds)
        except TimeoutError:
            self._retire(worker)
            self.rejected = f"importing the module took longer than {self.spec.start_seconds:g} s"
            raise SubmissionRejected(self.rejected) from None
        except (EOFError, OSError, ProtocolViolation):
            worker.wait_dead()  # let it finish dying, so the reason names its real exit
            self.rejected = f"the worker died while importing the module{worker.describe_exit()}"
            self._retire(worker)
            raise SubmissionRejected(self.rejected) from None
        if "error" in header:
            self._retire(worker)
            error = header["error"] if isinstance(header["error"], dict) else {}
            self.rejected = f"{error.get('type', 'Error')}: {str(error.get('message', ''))[:500]}"
            raise SubmissionRejected(self.rejected)
        self.worker = worker
        return worker

    def _await_isolation(self, worker: WorkerProcess) -> None:
        """The worker's first message, sent before any student code runs: the measures in force."""
        try:
            header, _ = worker.channel.receive(deadline=time.monotonic() + self.spec.start_seconds)
        except (TimeoutError, EOFError, OSError, ProtocolViolation) as error:
            self._retire(worker)
            raise GraderFault(f"the worker failed before loading the submission ({type(error).__name__}"
                              f"{worker.describe_exit()}); check the grading environment") from None
        if isinstance(header.get("isolated"), dict):
            self.isolation = header["isolated"]
            return
        self._retire(worker)
        error = header.get("error") if isinstance(header.get("error"), dict) else {}
        raise GraderFault(f"the sandbox could not be set up: {str(error.get('message', header))[:500]}")

    def _retire(self, worker: WorkerProcess, graceful: bool = False) -> None:
        worker.stop() if graceful else worker.kill()
        text = worker.output()
        if text and len(self.collected_output) < 1 << 20:
            self.collected_output += text

    def close(self) -> None:
        if self.worker is not None:
            self._retire(self.worker, graceful=True)
            self.worker = None

    # ---------------------------------------------------------------- requests
    def request(self, header: dict, values: dict[str, Any]) -> Any:
        """Send one request with encoded `values` fields; serve callbacks; return the reply."""
        if self.poisoned is not None and self.depth == 0:
            # After a timeout or crash, the rest of this test fails the same way at once
            # (hypothesis would otherwise restart a worker for every shrinking attempt).
            raise type(self.poisoned)(str(self.poisoned))
        if self.limits.test_deadline is not None and time.monotonic() >= self.limits.test_deadline:
            self.poisoned = StudentTimeout(f"the test ran past its {self.limits.test_seconds:g} s limit")
            raise self.poisoned
        worker = self.ensure_worker()
        generation = self.generation
        if self.depth == 0:
            self.callback_table.clear()
        encoder = Encoder(to_handle=self._reference)
        try:
            for key, value in values.items():
                header[key] = encoder.encode(value)
        except NotEncodable as error:
            raise GraderFault(f"a grading test passed a value the boundary cannot copy: {error}") from None
        if self.pending_release:
            header["release"] = self.pending_release[:]
            self.pending_release.clear()
        self.calls += 1
        self.depth += 1
        try:
            worker.channel.send(header, encoder.buffers)
            return self._await_reply(worker, generation)
        except (BrokenPipeError, ConnectionError):
            worker.wait_dead()
            raise WorkerCrashed(f"the worker process died before the call{worker.describe_exit()}") from None
        finally:
            self.depth -= 1

    def _callback(self, function: Callable) -> dict:
        callback_id = len(self.callback_table) + 1
        self.callback_table[callback_id] = function
        return {"$": "callback", "id": callback_id}

    def _reference(self, value: Any) -> dict:
        """A student object goes back as its handle; a trusted callable as a callback."""
        if isinstance(value, RemoteObject):
            value._check_alive()
            return value._node()
        if callable(value):
            return self._callback(value)
        raise NotEncodable(f"a {type(value).__name__} cannot be sent to student code")

    def _deadline(self) -> float:
        deadline = time.monotonic() + self.limits.call_seconds
        if self.limits.test_deadline is not None:
            deadline = min(deadline, self.limits.test_deadline)
        return deadline

    def _await_reply(self, worker: WorkerProcess, generation: int) -> Any:
        deadline = self._deadline()
        while True:
            try:
                header, buffers = worker.channel.receive(deadline=deadline)
            except TimeoutError:
                worker.kill()
                test_over = self.limits.test_deadline is not None and time.monotonic() >= self.limits.test_deadline
                limit = f"the test's {self.limits.test_seconds:g} s" if test_over else f"{self.limits.call_seconds:g} s"
                self.poisoned = StudentTimeout(f"student code ran past {limit} limit and was stopped")
                raise self.poisoned from None
            except ProtocolViolation as error:
                worker.kill()
                raise StudentError("ProtocolViolation", f"the worker sent a malformed reply ({error})") from None
            except (EOFError, OSError):
                worker.wait_dead()
                self.poisoned = WorkerCrashed(f"the worker process died during the call{worker.describe_exit()}")
                raise self.poisoned from None
            if "callback" in header:
                self._serve_callback(worker, header, buffers)
                continue
            if "error" in header:
                error = header["error"]
                if not isinstance(error, dict):
                    raise StudentError("ProtocolViolation", "the worker sent a malformed error")
                raise StudentError(str(error.get("type", "Error"))[:100], str(error.get("message", ""))[:4000],
                                   str(error.get("traceback", ""))[:8000])
            if "ok" not in header:
                worker.kill()
                raise StudentError("ProtocolViolation", "the worker sent a reply without a result")
            try:
                return self._decode(header["ok"], buffers, generation)
            except ProtocolViolation as error:
                raise StudentError("ProtocolViolation", f"the worker sent a malformed value ({error})") from None

    def _decode(self, tree: Any, buffers: list[bytes], generation: int) -> Any:
        def from_handle(node: dict) -> RemoteObject:
            handle_id, type_name = node.get("id"), node.get("type", "object")
            if type(handle_id) is not int or type(type_name) is not str:
                raise ProtocolViolation("malformed handle")
            return RemoteObject._make(self, generation, handle_id, type_name[:80], bool(node.get("callable")))

        return Decoder(buffers, from_handle=from_handle).decode(tree)

    def _serve_callback(self, worker: WorkerProcess, header: dict, buffers: list[bytes]) -> None:
        function = self.callback_table.get(header.get("callback"))
        reply: dict[str, Any] = {"op": "callback_result"}
        encoder = Encoder(to_handle=self._reference)
        try:
            if function is None:
                raise ProtocolViolation("callback to an unknown function")
            args = self._decode(header.get("args", []), buffers, self.generation)
            kwargs = self._decode(header.get("kwargs", {"$": "dict", "k": [], "v": []}), buffers, self.generation)
            if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise ProtocolViolation("malformed callback arguments")
            reply["ok"] = encoder.encode(function(*args, **kwargs))
        except ProtocolViolation as error:
            reply = {"op": "callback_result", "error": f"malformed callback: {error}"}
            encoder.buffers.clear()
        except Exception as error:  # the trusted function refused the student's argument
            reply = {"op": "callback_result", "error": f"{type(error).__name__}: {error}"}
            encoder.buffers.clear()
        worker.channel.send(reply, encoder.buffers)

    def release(self, generation: int, handle_id: int) -> None:
        if generation == self.generation:
            self.pending_release.append(handle_id)


_BINARY = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor", "lshift", "rshift"]


class RemoteObject:
    """A handle to an object living in the worker; methods, attributes and operators forward."""

    __slots__ = ("_session", "_generation", "_id", "_type", "_callable", "__weakref__")

    @classmethod
    def _make(cls, session: Session, generation: int, handle_id: int, type_name: str, is_callable: bool) -> "RemoteObject":
        obj = object.__new__(cls)
        object.__setattr__(obj, "_session", session)
        object.__setattr__(obj, "_generation", generation)
        object.__setattr__(obj, "_id", handle_id)
        object.__setattr__(obj, "_type", type_name)
        object.__setattr__(obj, "_callable", is_callable)
        weakref.finalize(obj, session.release, generation, handle_id)
        return obj

    def _check_alive(self) -> None:
        if self._generation != self._session.generation:
            raise StudentError("StaleHandle", f"this {self._type} object belonged to a worker that was stopped "
                                              "(after a timeout or crash) and no longer exists")

    def _node(self) -> dict:
        return {"$": "handle", "id": self._id}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private names are no part of the API (and tools probe them)
            raise AttributeError(name)
        self._check_alive()
        return self._session.request({"op": "getattr", "target": self._node(), "name": name}, {})

    def __setattr__(self, name: str, value: Any) -> None:
        self._check_alive()
        self._session.request({"op": "setattr", "target": self._node(), "name": name}, {"value": value})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._check_alive()
        return self._session.request({"op": "call", "target": self._node()}, {"args": list(args), "kwargs": kwargs})

    def _operator(self, name: str, *args: Any) -> Any:
        self._check_alive()
        return self._session.request({"op": "operator", "name": name}, {"args": list(args)})

    def __repr__(self) -> str:
        return f"<student {self._type} object>"

    def __hash__(self) -> int:
        return hash((id(self._session), self._generation, self._id))

    def __eq__(self, other: Any) -> Any:
        return self._operator("eq", self, other)

    def __ne__(self, other: Any) -> Any:
        return self._operator("ne", self, other)

    def __lt__(self, other: Any) -> Any:
        return self._operator("lt", self, other)

    def __le__(self, other: Any) -> Any:
        return self._operator("le", self, other)

    def __gt__(self, other: Any) -> Any:
        return self._operator("gt", self, other)

    def __ge__(self, other: Any) -> Any:
        return self._operator("ge", self, other)

    def __neg__(self) -> Any:
        return self._operator("neg", self)

    def __pos__(self) -> Any:
        return self._operator("pos", self)

    def __abs__(self) -> Any:
        return self._operator("abs", self)

    def __invert__(self) -> Any:
        return self._operator("invert", self)

    def __bool__(self) -> bool:
        return bool(self._operator("truth", self))

    def __len__(self) -> int:
        return int(self._operator("len", self))

    def __float__(self) -> float:
        return float(self._operator("float", self))

    def __int__(self) -> int:
        return int(self._operator("int", self))

    def __index__(self) -> int:
        return int(self._operator("index", self))

    def __getitem__(self, key: Any) -> Any:
        return self._operator("getitem", self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._operator("setitem", self, key, value)

    def __contains__(self, item: Any) -> bool:
        return bool(self._operator("contains", self, item))

    def __iter__(self):
        return iter(self._operator("iter_list", self))


def _binary(name: str):
    def forward(self: RemoteObject, other: Any) -> Any:
        return self._operator(name, self, other)

    def reflected(self: RemoteObject, other: Any) -> Any:
        return self._operator(name, other, self)

    return forward, reflected


for _name in _BINARY:
    _dunder = _name.rstrip("_")
    _forward, _reflected = _binary(_name)
    setattr(RemoteObject, f"__{_dunder}__", _forward)
    setattr(RemoteObject, f"__r{_dunder}__", _reflected)


class StudentModule:
    """The `student` fixture: attributes are the submission's module-level names."""

    def __init__(self, session: Session):
        object.__setattr__(self, "_session", session)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private names are no part of the API (and tools probe them)
            raise AttributeError(name)
        session = self._session

        def call(*args: Any, **kwargs: Any) -> Any:
            return session.request({"op": "call", "target": None, "name": name}, {"args": list(args), "kwargs": kwargs})

        call.__name__ = name
        call.__qualname__ = f"student.{name}"
        call._student_name = name  # type: ignore[attr-defined]
        return call

    def value_of(self, name: str) -> Any:
        """A module-level value (a constant) rather than a function to call."""
        return self._session.request({"op": "getattr", "target": None, "name": name}, {})

    def names(self) -> list[str]:
        return self._session.request({"op": "names"}, {})

    def __repr__(self) -> str:
        return f"<student module {self._session.spec.module}>"


@dataclass(frozen=True)
class OpRecord:
    name: str
    shapes: tuple
    dtypes: tuple


class Probe:
    """Instruments one student call in the worker (op trace, autograd, memory, warnings)."""

    def __init__(self, session: Session, forbidden_ops: tuple[str, ...] = ()):
        self._session = session
        self._forbidden = forbidden_ops

    def _run(self, probe: str, function: Any, args: tuple, kwargs: dict, options: dict | None = None) -> Any:
        header: dict[str, Any] = {"op": "probe", "probe": probe}
        name = getattr(function, "_student_name", None)
        if name is not None:
            header.update(target=None, name=name)
        elif isinstance(function, RemoteObject):
            function._check_alive()
            header.update(target=function._node())
        else:
            raise TypeError("probe needs a student function (student.f) or a student object")
        reply = self._session.request(header, {"args": list(args), "kwargs": kwargs, "options": options or {}})
        if not isinstance(reply, tuple) or len(reply) != 2:
            raise StudentError("ProtocolViolation", "the worker sent a malformed probe result")
        return reply

    def op_trace(self, function: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[OpRecord]]:
        result, ops = self._run("op_trace", function, args, kwargs)
        records = []
        for op in ops if isinstance(ops, list) else []:
            if isinstance(op, dict) and isinstance(op.get("name"), str):
                records.append(OpRecord(op["name"], tuple(tuple(s) for s in op.get("shapes", []) if isinstance(s, list)),
                                        tuple(str(d) for d in op.get("dtypes", []))))
        return result, records

    def forbidden_ops(self, ops: list[OpRecord]) -> list[str]:
        import fnmatch

        return sorted({op.name for op in ops for pattern in self._forbidden if fnmatch.fnmatchcase(op.name, pattern)})

    def autograd(self, function: Any, args: tuple, kwargs: dict | None = None, *, wrt: list[int], cotangents: Any = None) -> tuple[Any, list]:
        return self._run("autograd", function, args, kwargs or {}, {"wrt": list(wrt), "cotangents": cotangents})

    def autograd_trace(self, function: Any, args: tuple, kwargs: dict | None = None, *, wrt: list[int],
                       cotangents: Any = None) -> tuple[Any, list, list[OpRecord], list[tuple[int, ...]]]:
        """autograd() plus the op trace of its forward and backward and the shapes saved for backward:
        (outputs, grads, ops, saved_shapes)."""
        result, data = self._run("autograd_trace", function, args, kwargs or {}, {"wrt": list(wrt), "cotangents": cotangents})
        if not isinstance(result, (list, tuple)) or len(result) != 2:
            raise StudentError("ProtocolViolation", "the worker sent a malformed probe result")
        outputs, grads = result
        data = data if isinstance(data, dict) else {}
        ops = [OpRecord(op["name"], tuple(tuple(s) for s in op.get("shapes", []) if isinstance(s, list)),
                        tuple(str(t) for t in op.get("dtypes", [])))
               for op in data.get("ops", []) if isinstance(op, dict) and isinstance(op.get("name"), str)]
        saved = [tuple(s) for s in data.get("saved", []) if isinstance(s, (list, tuple))]
        return outputs, grads, ops, saved

    def peak_memory(self, function: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
        return self._run("peak_memory", function, args, kwargs)

    def numpy_warnings(self, function: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
        result, texts = self._run("numpy_warnings", function, args, kwargs)
        return result, [str(t) for t in texts] if isinstance(texts, list) else []
