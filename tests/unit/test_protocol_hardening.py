"""The wire protocol refuses malformed, oversized and unexpected messages instead of trusting them."""
import json
import os
import struct

import numpy as np
import pytest

from autograder.runtime.protocol import (MAX_DEPTH, MAX_HEADER_BYTES, Channel, Decoder, Encoder, NotEncodable,
                                         ProtocolViolation, pack)


def _channel_pair():
    read_fd, write_fd = os.pipe()
    return Channel(read_fd, write_fd)


def _raw(channel: Channel, data: bytes) -> None:
    """Write in a thread: a pipe holds only 64 KiB until the reader drains it."""
    import threading

    def write():
        try:
            os.write(channel.write_fd, data)
        except OSError:
            pass

    threading.Thread(target=write, daemon=True).start()


def test_values_round_trip_by_copy():
    value = {"a": [1, 2.5, None, True, "s", b"\x00b"], ("t", 1): np.arange(6.0).reshape(2, 3), "n": np.float32(1.5),
             "big": 1 << 80, "nan": float("nan")}
    encoder = Encoder()
    tree = encoder.encode(value)
    decoded = Decoder(encoder.buffers).decode(json.loads(json.dumps(tree)))
    assert decoded["a"] == value["a"] and decoded["big"] == 1 << 80 and np.isnan(decoded["nan"])
    assert np.array_equal(decoded[("t", 1)], value[("t", 1)]) and decoded[("t", 1)].flags.writeable
    assert decoded["n"] == np.float32(1.5) and decoded["n"].dtype == np.float32


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", "malformed message header"),
    (b"[1, 2]", "not an object"),
    (b'{"buffers": [-1]}', "malformed buffer sizes"),
    (b'{"buffers": "x"}', "malformed buffer sizes"),
    (b'{"x": NaN}', "non-standard JSON constant"),
    (b'{"buffers": [1073741824]}', "larger than"),
    (b"\xff\xfe", "malformed message header"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed message header"),
])
def test_malformed_headers_are_protocol_violations(payload, reason):
    channel = _channel_pair()
    _raw(channel, struct.pack(">I", len(payload)) + payload)
    with pytest.raises(ProtocolViolation, match=reason):
        channel.receive(deadline=None)


def test_oversized_header_is_refused_before_reading_it():
    channel = _channel_pair()
    _raw(channel, struct.pack(">I", MAX_HEADER_BYTES + 1))
    with pytest.raises(ProtocolViolation, match="exceeds"):
        channel.receive(deadline=None)


def test_truncated_message_is_end_of_stream_not_a_hang():
    channel = _channel_pair()
    os.write(channel.write_fd, struct.pack(">I", 100) + b'{"a"')
    os.close(channel.write_fd)
    with pytest.raises(EOFError):
        channel.receive(deadline=None)


def test_silent_peer_times_out_at_the_deadline():
    import time

    channel = _channel_pair()
    with pytest.raises(TimeoutError):
        channel.receive(deadline=time.monotonic() + 0.05)


@pytest.mark.parametrize("node, reason", [
    ({"$": "ndarray", "dtype": "object", "shape": [1], "b": 0}, "not allowed"),
    ({"$": "ndarray", "dtype": "float64", "shape": [3], "b": 0}, "does not match"),
    ({"$": "ndarray", "dtype": "float64", "shape": [-1], "b": 0}, "malformed shape"),
    ({"$": "bytes", "b": 7}, "out of range"),
    ({"$": "pickle", "v": "gASV"}, "unknown value tag"),
    ({"$": "int", "v": "1e5"}, "malformed integer"),
    ({"$": "float", "v": "__import__('os')"}, "malformed float"),
    ({"$": "dict", "k": [[1]], "v": [1]}, "unhashable"),
    ({"$": "handle", "id": 1}, "unknown value tag"),  # no handles expected here
])
def test_malformed_values_are_protocol_violations(node, reason):
    with pytest.raises(ProtocolViolation, match=reason):
        Decoder([b"\x00" * 8]).decode(node)


def test_deep_nesting_is_refused_both_ways():
    deep = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(NotEncodable, match="nested deeper"):
        Encoder().encode(deep)
    tree = 1
    for _ in range(MAX_DEPTH + 5):
        tree = [tree]
    with pytest.raises(ProtocolViolation, match="too deeply nested"):
        Decoder([]).decode(tree)


def test_values_that_lie_about_their_type_are_not_trusted():
    class Liar:
        __class__ = property(lambda self: bytes)

    with pytest.raises(NotEncodable):
        Encoder().encode(Liar())


def test_oversized_message_cannot_be_sent():
    with pytest.raises(NotEncodable, match="exceeds"):
        pack({"ok": 1}, [bytes(600 << 20)])
