"""The trusted side of the process boundary: the `student` object the grading tests use.

Student code never runs in this process. `student.f(x)` sends a request to the worker (see
autograder.runtime.protocol), waits at most the call limit, and decodes the reply: copies of
plain values, or handles (RemoteObject) whose methods, attributes and operators forward.
A hung worker is killed (StudentTimeout), a dead one reported (WorkerCrashed); the next call
starts a fresh worker, so one bad call costs one test.
"""
from __future__ import annotations

import inspect
import secrets
import select
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from autograder.course.model import Limits
from autograder.errors import GraderFault
from autograder.runtime.contract import EMPTY_DICT_NODE
from autograder.runtime.protocol import (
    Decoder,
    Encoder,
    NotEncodable,
    ProtocolViolation,
    TooLarge,
)
from autograder.sandbox.budget import CallBudget, CallPlan
from autograder.sandbox.errors import (
    StudentError,
    StudentTimeout,
    SubmissionRejected,
    WorkerCrashed,
)
from autograder.sandbox.remote import RemoteObject
from autograder.sandbox.worker import WorkerProcess, WorkerSpec


@dataclass
class CallLimits:
    call_seconds: float
    test_seconds: float
    test_deadline: float | None = None
    call_bytes: int = Limits.transfer_mb_per_call << 20   # bytes the worker may send in one call (callbacks included)
    test_bytes: int = Limits.transfer_mb_per_test << 20   # ... and in one test


def _holds_worker_value(value: Any, depth: int = 0) -> bool:
    """Whether `value` contains a handle of a student object (an object array built over handles, ...)."""
    if isinstance(value, RemoteObject):
        return True
    if depth > 8:
        return False
    try:
        import numpy as np

        if isinstance(value, np.ndarray) and value.dtype == object:
            return any(_holds_worker_value(v, depth + 1) for v in value.flat[:10000])
    except Exception:
        return False
    if isinstance(value, dict):
        return any(_holds_worker_value(v, depth + 1) for v in list(value.keys())[:10000] + list(value.values())[:10000])
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_worker_value(v, depth + 1) for v in list(value)[:10000])
    return False


def _unusable(error: BaseException) -> StudentError:
    """What the student reads when a value their code produced cannot be used (never their text)."""
    detail = str(error) if isinstance(error, ProtocolViolation) else type(error).__name__
    return StudentError("UnusableValue", f"your code sent back a value the grader cannot use ({detail[:200]})")


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
    test_bytes: int = 0          # bytes received from the worker in this test
    call_bytes: int = 0          # ... in the current outermost call
    budget: CallBudget | None = None   # adaptive per-call time budgets (None: the call limit for every call)
    student_seconds: float = 0.0       # time inside student calls, as the worker measured it
    boundary_seconds: float = 0.0      # the rest of the outermost calls: encoding, copies, round trips
    start_seconds: float = 0.0         # starting workers and importing the submission
    _reported: float = 0.0

    def begin_test(self) -> None:
        """A new test: a fresh time budget, and earlier timeouts or crashes forgotten."""
        self.limits.test_deadline = time.monotonic() + self.limits.test_seconds
        self.poisoned = None
        self.test_bytes = 0

    # ---------------------------------------------------------------- life cycle
    def ensure_worker(self) -> WorkerProcess:
        if self.rejected is not None:
            raise SubmissionRejected(self.rejected)
        if self.worker is not None and self.worker.alive():
            return self.worker
        if self.worker is not None:
            self.restarts += 1
            self.retire(self.worker)
        self.generation += 1
        self.pending_release.clear()
        started = time.perf_counter()
        try:
            worker = self._start_worker()
        finally:
            self.start_seconds += time.perf_counter() - started
        self.worker = worker
        return worker

    def _start_worker(self) -> WorkerProcess:
        worker = WorkerProcess.start(self.spec)
        self._await_isolation(worker)
        try:
            header, _ = worker.channel.receive(deadline=time.monotonic() + self.spec.start_seconds)
        except TimeoutError:
            self.retire(worker)
            self.rejected = f"importing the module took longer than {self.spec.start_seconds:g} s"
            raise SubmissionRejected(self.rejected) from None
        except (EOFError, OSError, ProtocolViolation):
            worker.wait_dead()  # let it finish dying, so the reason names its real exit
            self.rejected = f"the worker died while importing the module{worker.describe_exit()}"
            self.retire(worker)
            raise SubmissionRejected(self.rejected) from None
        if "error" in header:
            self.retire(worker)
            error = header["error"] if isinstance(header["error"], dict) else {}
            self.rejected = f"{error.get('type', 'Error')}: {str(error.get('message', ''))[:500]}"
            raise SubmissionRejected(self.rejected)
        return worker

    def _await_isolation(self, worker: WorkerProcess) -> None:
        """The worker's first message, sent before any student code runs: the measures in force."""
        try:
            header, _ = worker.channel.receive(deadline=time.monotonic() + self.spec.start_seconds)
        except (TimeoutError, EOFError, OSError, ProtocolViolation) as error:
            self.retire(worker)
            raise GraderFault(f"the worker failed before loading the submission ({type(error).__name__}"
                              f"{worker.describe_exit()}); check the grading environment") from None
        if isinstance(header.get("isolated"), dict):
            self.isolation = header["isolated"]
            return
        self.retire(worker)
        error = header.get("error") if isinstance(header.get("error"), dict) else {}
        raise GraderFault(f"the sandbox could not be set up: {str(error.get('message', header))[:500]}")

    def retire(self, worker: WorkerProcess, graceful: bool = False) -> None:
        worker.stop() if graceful else worker.kill()
        text = worker.output()
        if text and len(self.collected_output) < 1 << 20:
            self.collected_output += text

    def close(self) -> None:
        if self.worker is not None:
            self.retire(self.worker, graceful=True)
            self.worker = None

    # ---------------------------------------------------------------- requests
    def request(self, header: dict, values: dict[str, Any], *, name: str | None = None) -> Any:
        """Send one request with encoded `values` fields; serve callbacks; return the reply.

        `name` is the student function called (`student.name(...)`): its time budget adapts to the
        reference's time for the same call (see sandbox/budget.py).
        """
        if self.poisoned is not None and self.depth == 0:
            # After a timeout or crash, the rest of this test fails the same way at once
            # (hypothesis would otherwise restart a worker for every shrinking attempt).
            raise type(self.poisoned)(str(self.poisoned))
        if self.limits.test_deadline is not None and time.monotonic() >= self.limits.test_deadline:
            self.poisoned = StudentTimeout(f"the test ran past its {self.limits.test_seconds:g} s limit")
            raise self.poisoned
        worker = self.ensure_worker()
        generation = self.generation
        outermost = self.depth == 0
        plan = CallPlan(None, self.limits.call_seconds)
        if outermost:
            self.callback_table.clear()
            if self.budget is not None:
                plan = self.budget.plan(name, tuple(values.get("args", ())), values.get("kwargs") or {})
            started, self._reported = time.perf_counter(), 0.0
        encoder = Encoder(to_handle=self._reference)
        try:
            for key, value in values.items():
                header[key] = encoder.encode(value)
        except NotEncodable as error:
            if _holds_worker_value(values):  # built from the student's output: theirs to fix
                raise StudentError("UnsupportedValue", "a value built from your code's output cannot be sent back "
                                                       "to your code (for example an array of your objects)") from None
            raise GraderFault(f"a grading test passed a value the boundary cannot copy: {error}") from None
        except StudentError:
            raise
        except Exception as error:  # a student object's method ran while copying (len, iter, ...)
            if _holds_worker_value(values):
                raise StudentError("UnsupportedValue", f"a value built from your code's output could not be sent "
                                                       f"back to your code ({type(error).__name__})") from None
            raise
        if self.pending_release:
            header["release"] = self.pending_release[:]
            self.pending_release.clear()
        rid = secrets.randbits(62)  # unguessable: a frame written before this request cannot name it
        header["rid"] = rid
        self.calls += 1
        if self.depth == 0:
            self.call_bytes = 0
        self.depth += 1
        try:
            worker.channel.send(header, encoder.buffers)
            result = self._await_reply(worker, generation, rid, plan)
        except (BrokenPipeError, ConnectionError):
            worker.wait_dead()
            raise WorkerCrashed(f"the worker process died before the call{worker.describe_exit()}") from None
        finally:
            self.depth -= 1
            if outermost:
                wall = time.perf_counter() - started
                self.student_seconds += min(self._reported, wall)
                self.boundary_seconds += wall - min(self._reported, wall)
        if outermost and self.budget is not None:
            self.budget.record(name, timed_out=False)
        return result

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

    def _deadline(self, seconds: float, start: float) -> float:
        deadline = start + seconds
        if self.limits.test_deadline is not None:
            deadline = min(deadline, self.limits.test_deadline)
        return deadline

    def _budget(self) -> int:
        """Bytes the worker may still send: the smaller of the call's and the test's remainders."""
        return max(0, min(self.limits.call_bytes - self.call_bytes, self.limits.test_bytes - self.test_bytes))

    def _await_reply(self, worker: WorkerProcess, generation: int, rid: int, plan: CallPlan) -> Any:
        start = time.monotonic()
        deadline = self._deadline(plan.first, start)
        while True:
            if plan.extend is not None and not select.select([worker.channel.read_fd], [], [],
                                                             max(0.0, deadline - time.monotonic()))[0]:
                deadline = self._deadline(plan.extended(), start)  # the floor ran out: time the reference, once
                continue
            try:
                header, buffers = worker.channel.receive(deadline=deadline, max_bytes=self._budget())
            except TimeoutError:
                worker.kill()
                test_over = self.limits.test_deadline is not None and time.monotonic() >= self.limits.test_deadline
                if not test_over and self.budget is not None:
                    self.budget.record(plan.name, timed_out=True)
                if not test_over and plan.name is not None and plan.seconds < self.limits.call_seconds:
                    self.poisoned = StudentTimeout(plan.explain())
                else:
                    limit = f"the test's {self.limits.test_seconds:g} s" if test_over else f"{plan.seconds:g} s"
                    self.poisoned = StudentTimeout(f"student code ran past {limit} limit and was stopped")
                raise self.poisoned from None
            except TooLarge as error:
                worker.kill()
                raise StudentError("TooMuchData", f"your code sent back {error} per call "
                                                  f"({self.limits.call_bytes >> 20} MiB) and per test "
                                                  f"({self.limits.test_bytes >> 20} MiB)") from None
            except ProtocolViolation as error:
                worker.kill()
                raise StudentError("ProtocolViolation", f"the worker sent a malformed reply ({error})") from None
            except (EOFError, OSError):
                worker.wait_dead()
                self.poisoned = WorkerCrashed(f"the worker process died during the call{worker.describe_exit()}")
                raise self.poisoned from None
            size = sum(len(b) for b in buffers)
            self.call_bytes += size
            self.test_bytes += size
            if header.get("rid") != rid:  # stale, forged, or an answer to another call: never read as this one
                worker.kill()
                raise StudentError("ProtocolViolation", "the worker sent a reply that answers no pending call "
                                                        "(student code wrote to the grader's channel)")
            if "callback" in header:
                self._serve_callback(worker, header, buffers)
                continue
            if "error" in header:
                error = header["error"]
                if not isinstance(error, dict):
                    raise StudentError("ProtocolViolation", "the worker sent a malformed error")
                raise StudentError(str(error.get("type", "Error"))[:100], str(error.get("message", ""))[:4000],
                                   str(error.get("traceback", ""))[:8000], from_worker=True)
            if "ok" not in header:
                worker.kill()
                raise StudentError("ProtocolViolation", "the worker sent a reply without a result")
            if type(header.get("t")) is float and header["t"] >= 0:  # the worker's time inside the call
                self._reported = header["t"]
            return self._decode(header["ok"], buffers, generation)

    def _decode(self, tree: Any, buffers: list[bytes], generation: int) -> Any:
        """Values from the worker: any failure to build them is the student's fault, never the grader's."""
        def from_handle(node: dict) -> RemoteObject:
            handle_id, type_name = node.get("id"), node.get("type", "object")
            if type(handle_id) is not int or type(type_name) is not str:
                raise ProtocolViolation("malformed handle")
            if not type_name.isidentifier():  # a class name is an identifier; anything else is smuggled text
                type_name = "object"
            return RemoteObject._make(self, generation, handle_id, type_name[:80], node.get("callable") is True)

        try:
            return Decoder(buffers, from_handle=from_handle, import_torch=False).decode(tree)
        except RecursionError as error:
            raise _unusable(error) from None
        except Exception as error:
            raise _unusable(error) from None

    def _serve_callback(self, worker: WorkerProcess, header: dict, buffers: list[bytes]) -> None:
        """Call a trusted function for the worker, with arguments checked against its signature.

        The reply names the callback call it answers (`cid`), so nested callbacks each get their own.
        What goes back on refusal is the grader's sentence and an exception type, never a hidden value.
        """
        function = self.callback_table.get(header.get("callback"))
        call_id = header.get("cid")
        reply: dict[str, Any] = {"op": "callback_result", "cid": call_id if type(call_id) is int else None}
        encoder = Encoder(to_handle=self._reference)
        try:
            if function is None:
                raise ProtocolViolation("callback to an unknown function")
            try:
                args = self._decode(header.get("args", []), buffers, self.generation)
                kwargs = self._decode(header.get("kwargs", EMPTY_DICT_NODE), buffers, self.generation)
            except StudentError as error:
                raise ProtocolViolation(error.message) from None
            if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise ProtocolViolation("malformed callback arguments")
            try:
                inspect.signature(function).bind(*args, **kwargs)
            except TypeError:
                raise ProtocolViolation("the grader's function was called with the wrong arguments") from None
            except ValueError:
                pass  # a builtin without a signature: it checks its own arguments
            reply["ok"] = encoder.encode(function(*args, **kwargs))
        except ProtocolViolation as error:
            reply = {"op": "callback_result", "cid": reply["cid"], "error": f"refused: {error}"}
            encoder.buffers.clear()
        except (StudentTimeout, WorkerCrashed):
            raise  # the worker is gone: nothing to answer
        except Exception as error:  # the trusted function refused the student's argument
            reply = {"op": "callback_result", "cid": reply["cid"], "error": f"{type(error).__name__}"}
            encoder.buffers.clear()
        worker.channel.send(reply, encoder.buffers)

    def release(self, generation: int, handle_id: int) -> None:
        if generation == self.generation:
            self.pending_release.append(handle_id)
