"""The `probe` fixture: instruments that run inside the worker around one student call.

Op trace (every aten op with output shapes and dtypes), autograd through student code,
peak memory and numpy warnings. Their results are data from the worker: hints to check,
never a score on their own.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from autograder.sandbox.errors import StudentError
from autograder.sandbox.remote import RemoteObject
from autograder.sandbox.session import Session


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

        return sorted({op.name for op in ops for pattern in self._forbidden if fnmatch.fnmatchcase(op.name, pattern)})

    def autograd(self, function: Any, args: tuple, kwargs: dict | None = None, *, wrt: list[int], cotangents: Any = None) -> tuple[Any, list]:
        return self._run("autograd", function, args, kwargs or {}, {"wrt": list(wrt), "cotangents": cotangents})

    def module_autograd(self, module: Any, args: tuple, kwargs: dict | None = None, *, wrt: list[int] = (),
                        cotangents: Any = None) -> tuple[Any, list, dict]:
        """module(*args, **kwargs) (a student torch module's handle) in the worker, and the gradients of
        <outputs, cotangents> w.r.t. args[wrt] and w.r.t. every named parameter: (outputs, input grads,
        {parameter name: grad})."""
        outputs, data = self._run("module_autograd", module, args, kwargs or {}, {"wrt": list(wrt), "cotangents": cotangents})
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), list) or not isinstance(data.get("parameters"), dict):
            raise StudentError("ProtocolViolation", "the worker sent a malformed module_autograd result")
        return outputs, data["inputs"], data["parameters"]

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
