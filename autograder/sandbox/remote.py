"""Handles on objects that live in the worker: the `student` module and remote objects.

`student.f(x)` and every method, attribute and operator of a RemoteObject become requests
to the worker through the Session; values are copies, objects stay on the worker's side.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from autograder.sandbox.errors import StudentError

if TYPE_CHECKING:
    from autograder.sandbox.session import Session


_COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]
_UNARY = ["neg", "pos", "abs", "invert"]
_BINARY = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor", "lshift", "rshift"]


class RemoteObject:
    """A handle to an object living in the worker; methods, attributes and operators forward.

    Its own methods have private names (`_node`, `_check_alive`, `_make`) on purpose: every public
    name is the student object's, so the session, the probe and the decoder use these private ones.
    """

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


def _comparison(name: str):
    def compare(self: RemoteObject, other: Any) -> Any:
        return self._operator(name, self, other)

    return compare


def _unary(name: str):
    def apply(self: RemoteObject) -> Any:
        return self._operator(name, self)

    return apply


for _name in _COMPARISONS:
    setattr(RemoteObject, f"__{_name}__", _comparison(_name))
for _name in _UNARY:
    setattr(RemoteObject, f"__{_name}__", _unary(_name))
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
            return session.request({"op": "call", "target": None, "name": name}, {"args": list(args), "kwargs": kwargs},
                                   name=name)

        call.__name__ = name
        call.__qualname__ = f"student.{name}"
        call._student_name = name  # type: ignore[attr-defined]  (private: on a RemoteObject a public name would reach the worker)
        return call

    def value_of(self, name: str) -> Any:
        """A module-level value (a constant) rather than a function to call."""
        return self._session.request({"op": "getattr", "target": None, "name": name}, {})

    def names(self) -> list[str]:
        return self._session.request({"op": "names"}, {})

    def __repr__(self) -> str:
        return f"<student module {self._session.spec.module}>"
