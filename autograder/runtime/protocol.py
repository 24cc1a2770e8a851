"""The message protocol between the trusted grader and the student's worker.

A frame is: 4-byte big-endian header length, a JSON header, then the binary buffers the
header declares (array and tensor data). Values are JSON with tagged objects for what JSON
lacks (tuples, non-string dict keys, non-finite floats, bytes, arrays, tensors, handles).
Nothing is ever unpickled or eval'd: decoding builds plain values from a closed set of
tags, checking every field, and anything else is a ProtocolViolation.

This module runs on both sides and imports only the standard library and numpy (torch
lazily, when a tensor crosses).
"""
from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import sys
import time
from typing import Any, Callable

import numpy as np

MAX_HEADER_BYTES = 8 << 20
MAX_MESSAGE_BYTES = 512 << 20
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
MAX_INT_DIGITS = 4000

NUMPY_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}
TORCH_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16", "float32",
    "float64", "complex64", "complex128",
}
DEVICE_PATTERN = re.compile(r"(cpu|cuda|cuda:\d{1,2}|mps)")  # the only devices a tensor may name


class ProtocolViolation(Exception):
    """A message that does not follow the protocol (malformed, oversized, unknown tag)."""


class NotEncodable(Exception):
    """A value that cannot cross by copy; the worker sends a handle instead."""


def _torch():
    return sys.modules.get("torch") or __import__("torch")


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class Encoder:
    """Turns a value into (JSON-able tree, buffers). `to_handle` makes handles for the rest."""

    def __init__(self, to_handle: Callable[[Any], dict] | None = None):
        self.buffers: list[bytes] = []
        self.to_handle = to_handle
        self.items = 0

    def _buffer(self, data: bytes) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > MAX_DEPTH:
            raise NotEncodable(f"value nested deeper than {MAX_DEPTH} levels")
        if self.items > MAX_ITEMS:
            raise NotEncodable(f"value has more than {MAX_ITEMS} items")
        if value is None or isinstance(value, (bool, str)) and type(value) in (bool, str):
            return value
        if type(value) is int:
            if abs(value) >= 1 << 53:
                text = str(value) if value.bit_length() < MAX_INT_DIGITS * 3 else None
                if text is None:
                    raise NotEncodable("integer too large")
                return {"$": "int", "v": text}
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, np.ndarray):
            return self._array(value)
        if isinstance(value, np.generic):
            return self._numpy_scalar(value)
        if _is_tensor(value):
            return self._tensor(value)
        if type(value) in (bytes, bytearray):
            return {"$": "bytes", "b": self._buffer(bytes(value))}
        if type(value) is list:
            return [self.encode(item, depth + 1) for item in value]
        if type(value) is tuple:
            return {"$": "tuple", "v": [self.encode(item, depth + 1) for item in value]}
        if type(value) is dict:
            return {"$": "dict", "k": [self.encode(k, depth + 1) for k in value],
                    "v": [self.encode(v, depth + 1) for v in value.values()]}
        special = self._special(value, depth)
        if special is not None:
            return special
        if self.to_handle is not None:
            return self.to_handle(value)
        raise NotEncodable(f"a {type(value).__name__} cannot cross the process boundary")

    def _special(self, value: Any, depth: int) -> Any:
        """Subclasses of plain types (OrderedDict, namedtuple, IntEnum...) and torch metadata."""
        torch = sys.modules.get("torch")
        if torch is not None:
            if isinstance(value, torch.dtype):
                return {"$": "torch_dtype", "v": str(value).replace("torch.", "")}
            if isinstance(value, torch.device):
                return {"$": "torch_device", "v": str(value)}
            if isinstance(value, torch.Size):
                return {"$": "tuple", "v": [int(v) for v in value]}
        for base in (bool, int, float, str, dict, tuple, list):  # bool before int: a bool is an int
            if isinstance(value, base):
                plain = base(value)
                return plain if base in (bool, str) else self.encode(plain, depth)
        return None

    def _array(self, array: np.ndarray) -> dict:
        if array.dtype.name not in NUMPY_DTYPES:
            raise NotEncodable(f"numpy arrays of dtype {array.dtype} cannot cross the process boundary")
        data = np.ascontiguousarray(array)
        return {"$": "ndarray", "dtype": array.dtype.name, "shape": list(array.shape), "b": self._buffer(data.tobytes())}

    def _numpy_scalar(self, value: np.generic) -> dict:
        if value.dtype.name not in NUMPY_DTYPES:
            raise NotEncodable(f"numpy scalars of dtype {value.dtype} cannot cross the process boundary")
        return {"$": "npscalar", "dtype": value.dtype.name, "b": self._buffer(np.asarray(value).tobytes())}

    def _tensor(self, tensor: Any) -> dict:
        torch = _torch()
        dtype = str(tensor.dtype).replace("torch.", "")
        if dtype not in TORCH_DTYPES:
            raise NotEncodable(f"tensors of dtype {dtype} cannot cross the process boundary")
        device = str(tensor.device)
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        cpu = tensor.detach().to("cpu").contiguous()
        if getattr(cpu, "is_conj", lambda: False)():
            cpu = cpu.resolve_conj()
        if dtype == "bfloat16":
            raw = cpu.view(torch.int16).numpy().tobytes()
        else:
            raw = cpu.numpy().tobytes()
        return {"$": "tensor", "dtype": dtype, "shape": list(cpu.shape), "device": device, "b": self._buffer(raw)}


class Decoder:
    """Builds values from a JSON tree and buffers, checking every tag and field."""

    def __init__(self, buffers: list[bytes], from_handle: Callable[[dict], Any] | None = None, from_callback:
                 Callable[[dict], Any] | None = None, restore_device: bool = True, import_torch: bool = True):
        self.buffers = buffers
        self.from_handle = from_handle
        self.from_callback = from_callback
        self.restore_device = restore_device
        self.import_torch = import_torch  # False (trusted side): a torch value where torch is not loaded is malformed
        self.items = 0

    def _torch(self) -> Any:
        if "torch" not in sys.modules and not self.import_torch:
            raise ProtocolViolation("a torch value arrived where none was expected")
        return _torch()

    def _buffer(self, node: dict) -> bytes:
        index = node.get("b")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise ProtocolViolation("buffer index out of range")
        return self.buffers[index]

    def decode(self, node: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > MAX_DEPTH + 2 or self.items > MAX_ITEMS:
            raise ProtocolViolation("value too deeply nested or too large")
        if node is None or type(node) in (bool, str):
            return node
        if type(node) is int:
            return node
        if type(node) is float:
            return node
        if type(node) is list:
            return [self.decode(item, depth + 1) for item in node]
        if type(node) is not dict:
            raise ProtocolViolation(f"unexpected JSON value of type {type(node).__name__}")
        tag = node.get("$")
        if tag == "tuple":
            return tuple(self.decode(item, depth + 1) for item in _list(node, "v"))
        if tag == "dict":
            keys, values = _list(node, "k"), _list(node, "v")
            if len(keys) != len(values):
                raise ProtocolViolation("dict with unequal keys and values")
            out = {}
            for k, v in zip(keys, values):
                key = self.decode(k, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise ProtocolViolation("unhashable dict key") from None
                out[key] = self.decode(v, depth + 1)
            return out
        if tag == "int":
            text = _str(node, "v")
            if len(text) > MAX_INT_DIGITS or not text.lstrip("-").isdigit():
                raise ProtocolViolation("malformed integer")
            return int(text)
        if tag == "float":
            text = _str(node, "v")
            if text not in ("nan", "inf", "-inf"):
                raise ProtocolViolation("malformed float")
            return float(text)
        if tag == "bytes":
            return self._buffer(node)
        if tag == "ndarray":
            return self._array(node)
        if tag == "npscalar":
            dtype = _dtype(node, NUMPY_DTYPES)
            data = self._buffer(node)
            if len(data) != np.dtype(dtype).itemsize:
                raise ProtocolViolation("numpy scalar of the wrong size")
            return np.frombuffer(data, dtype=dtype)[0]
        if tag == "tensor":
            return self._tensor(node)
        if tag == "torch_dtype":
            return getattr(self._torch(), _dtype(node, TORCH_DTYPES, key="v"))
        if tag == "torch_device":
            return self._torch().device(_device(node, "v"))
        if tag in ("handle", "method") and self.from_handle is not None:
            return self.from_handle(node)
        if tag == "callback" and self.from_callback is not None:
            return self.from_callback(node)
        raise ProtocolViolation("unknown value tag")

    def _shape(self, node: dict) -> tuple[int, ...]:
        shape = _list(node, "shape")
        if len(shape) > 32 or any(type(s) is not int or s < 0 for s in shape):
            raise ProtocolViolation("malformed shape")
        return tuple(shape)

    def _array(self, node: dict) -> np.ndarray:
        dtype = _dtype(node, NUMPY_DTYPES)
        shape = self._shape(node)
        data = self._buffer(node)
        if len(data) != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ProtocolViolation("array data does not match its shape and dtype")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()

    def _tensor(self, node: dict) -> Any:
        torch = self._torch()
        dtype = _dtype(node, TORCH_DTYPES)
        shape = self._shape(node)
        data = self._buffer(node)
        torch_dtype = getattr(torch, dtype)
        itemsize = torch.empty((), dtype=torch_dtype).element_size()
        if len(data) != math.prod(shape) * itemsize:
            raise ProtocolViolation("tensor data does not match its shape and dtype")
        if dtype == "bfloat16":
            array = np.frombuffer(data, dtype=np.int16).reshape(shape).copy()
            tensor = torch.from_numpy(array).view(torch.bfloat16)
        else:
            array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
            tensor = torch.from_numpy(array)
        device = _device(node, "device")
        if self.restore_device and device != "cpu":
            try:  # no such device here: the sender's fault, never the receiver's
                tensor = tensor.to(device)
            except Exception as error:
                raise ProtocolViolation(f"a tensor on device {device} cannot be used here ({type(error).__name__})") from None
        return tensor


def _list(node: dict, key: str) -> list:
    value = node.get(key)
    if type(value) is not list:
        raise ProtocolViolation(f"field {key!r} must be a list")
    return value


def _str(node: dict, key: str) -> str:
    value = node.get(key)
    if type(value) is not str:
        raise ProtocolViolation(f"field {key!r} must be a string")
    return value


def _device(node: dict, key: str) -> str:
    """A device a tensor may name: anything else (a student's "hpu", "xla:0") is refused, never looked up."""
    if not DEVICE_PATTERN.fullmatch(value := _str(node, key)):
        raise ProtocolViolation("a tensor on an unknown device")
    return value


def _dtype(node: dict, allowed: set[str], key: str = "dtype") -> str:
    value = _str(node, key)
    if value not in allowed:
        raise ProtocolViolation("a dtype that is not allowed")
    return value


# ------------------------------------------------------------------ framing

def _reject_constant(name: str) -> Any:
    raise ProtocolViolation(f"non-standard JSON constant {name}")


# Encoder/decoder objects, not json.dumps/json.loads: an assignment may forbid those functions
# (the guard disarms them in the worker) and the protocol must still work.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def pack(header: dict, buffers: list[bytes]) -> bytes:
    header = dict(header, buffers=[len(b) for b in buffers])
    text = _JSON_ENCODER.encode(header).encode()
    if len(text) > MAX_HEADER_BYTES:
        raise NotEncodable(f"message header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
    total = len(text) + sum(len(b) for b in buffers)
    if total > MAX_MESSAGE_BYTES:
        raise NotEncodable(f"message of {total} bytes exceeds {MAX_MESSAGE_BYTES}")
    return b"".join([struct.pack(">I", len(text)), text, *buffers])


class TooLarge(ProtocolViolation):
    """A message over the receiver's byte budget (per call or per test)."""


def parse_header(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[dict, list[int]]:
    """Check and parse a header; returns it and the sizes of the buffers that follow."""
    try:
        header = _JSON_DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolViolation(f"malformed message header: {str(error)[:80]}") from None
    if type(header) is not dict:
        raise ProtocolViolation("message header is not an object")
    sizes = header.get("buffers", [])
    if type(sizes) is not list or any(type(s) is not int or s < 0 for s in sizes):
        raise ProtocolViolation("malformed buffer sizes")
    if sum(sizes) + len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolViolation(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    if sum(sizes) + len(raw) > max_bytes:
        raise TooLarge(f"a message of {sum(sizes) + len(raw)} bytes, over the {max_bytes} bytes allowed")
    return header, sizes


class Channel:
    """Blocking framed messages over a file descriptor pair (a socket or two pipes).

    `receive(deadline=...)` waits at most until that time.monotonic() value, then raises
    TimeoutError: the trusted side never blocks on a worker for longer than its limit; a frame over
    `max_bytes` is refused (TooLarge) before its data is read.
    """

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd

    def send(self, header: dict, buffers: list[bytes]) -> None:
        data = memoryview(pack(header, buffers))
        while data:
            written = os.write(self.write_fd, data[: 1 << 20])
            data = data[written:]

    def _read_exact(self, size: int, deadline: float | None) -> bytes:
        chunks, remaining = [], size
        while remaining:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.read_fd], [], [], wait)[0]:
                    raise TimeoutError("no reply before the deadline")
            chunk = os.read(self.read_fd, min(remaining, 1 << 20))
            if not chunk:
                raise EOFError("the other side closed the channel")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def receive(self, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[dict, list[bytes]]:
        (length,) = struct.unpack(">I", self._read_exact(4, deadline))
        if length > MAX_HEADER_BYTES:
            raise ProtocolViolation(f"message header of {length} bytes exceeds {MAX_HEADER_BYTES}")
        if length > max_bytes:
            raise TooLarge(f"a message of more than {max_bytes} bytes")
        header, sizes = parse_header(self._read_exact(length, deadline), max_bytes)
        return header, [self._read_exact(size, deadline) for size in sizes]
