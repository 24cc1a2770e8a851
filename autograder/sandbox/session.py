"""The trusted side of the process boundary: the `student` object the grading tests use.

Student code never runs in this process. `student.f(x)` sends a request to the worker (see
autograder.runtime.protocol), waits at most the call limit, and decodes the reply: copies of
plain values, or handles (RemoteObject) whose methods, attributes and operators forward.
A hung worker is killed (StudentTimeout), a dead one reported (WorkerCrashed); the next call
starts a fresh worker, so one bad call costs one test.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from autograder.errors import GraderFault
from autograder.runtime.protocol import (
    Decoder,
    Encoder,
    NotEncodable,
    ProtocolViolation,
)
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
