"""The sandbox's wire format and frame codec, shared by the parent and the worker.

A message is a magic, a JSON header (never pickle; NaN and Infinity refused) and raw buffers,
each 8-byte aligned and described in the header by offset and size; frames travel as their raw
column buffers plus their index. Every read is bounded by a size the caller allows.

This module is shipped to the sandbox worker as source text with the other modules the worker
needs (see ``launch.SHIPPED``): inside bubblewrap the project folder is not visible. It imports
only the standard library, numpy, pandas and the sandbox modules shipped before it.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

MAGIC = b"ALSB"
PREFIX = struct.Struct("<4sIQ")
MAX_FEATURES = 256
MAX_NAME_CHARS = 200
MAX_ARRAY_NAME = 300  # an output array's name: a driver's prefix ("feature/3/") and a column name
VALUES_PER_ROW = MAX_FEATURES + 32  # float64 values a frame's driver may return per input row, all arrays together


def max_result_bytes(rows: int) -> int:
    """The most a frame's child may send back for ``rows`` input rows (every instrument's together):
    ``VALUES_PER_ROW`` float64 values a row (signals or weights, every feature column, a forecaster's
    probabilities and codes), with room for alignment and the header."""
    return rows * 8 * VALUES_PER_ROW + (1 << 20)


class ProtocolError(RuntimeError):
    """A message on a sandbox pipe was truncated, oversized or malformed."""


def pack_message(header: dict[str, Any], body: list[bytes | memoryview] | None = None) -> list[bytes | memoryview]:
    """Frame a JSON header and raw buffers: magic, header length, body length, header, body."""
    parts = list(body or [])
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    total = sum(len(p) for p in parts)
    return [PREFIX.pack(MAGIC, len(head), total), head, *parts]


def write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    """Write every part to ``fd``, however many calls the pipe needs."""
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def read_message(read_exact: Callable[[int], bytes], max_header: int,
                 max_body: int) -> tuple[dict[str, Any], bytearray]:
    """Read one framed message, refusing anything larger than the caller allows."""
    magic, head_len, body_len = PREFIX.unpack(read_exact(PREFIX.size))
    if magic != MAGIC:
        raise ProtocolError("bad message magic")
    if head_len > max_header or body_len > max_body:
        raise ProtocolError(f"message too large ({head_len} + {body_len} bytes)")
    try:
        header = json.loads(read_exact(head_len).decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    body = bytearray(read_exact(body_len)) if body_len else bytearray()
    return header, body


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: a header carrying one is forged, and refused before use."""
    raise ValueError(f"non-JSON constant {name}")


def fd_reader(fd: int) -> Callable[[int], bytes]:
    """``read_exact`` over a pipe: blocks until ``n`` bytes came, EOFError if the writer closed it first."""
    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError(f"pipe {fd} closed")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    return read_exact


def buffer_reader(data: bytes | bytearray) -> Callable[[int], bytes]:
    """A ``read_exact`` over bytes already in memory."""
    view = memoryview(data)
    pos = 0

    def read_exact(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(view):
            raise ProtocolError("message truncated")
        chunk = bytes(view[pos:pos + n])
        pos += n
        return chunk

    return read_exact


def array_at(body: bytearray, spec: Any, count: int, dtype: str = "<f8") -> np.ndarray:
    """View ``count`` items of ``dtype`` at the place ``spec`` names, checking it stays in bounds."""
    if not isinstance(spec, dict):
        raise ProtocolError("array descriptor is not an object")
    offset, nbytes = spec.get("offset"), spec.get("nbytes")
    itemsize = np.dtype(dtype).itemsize
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, nbytes)):
        raise ProtocolError("array descriptor without integer offset and size")
    if nbytes != count * itemsize or offset < 0 or offset + nbytes > len(body) or offset % 8:
        raise ProtocolError(f"array descriptor out of bounds (offset {offset}, {nbytes} bytes)")
    return np.frombuffer(body, dtype=dtype, count=count, offset=offset)


class BodyBuilder:
    """Collect raw buffers for a message body, each 8-byte aligned, and describe where they are."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.size = 0

    def add(self, array: np.ndarray, dtype: str = "<f8") -> dict[str, int]:
        data = np.ascontiguousarray(array, dtype=dtype)
        raw = memoryview(data).cast("B")
        spec = {"offset": self.size, "nbytes": len(raw)}
        self.parts.append(raw)
        self.size += len(raw)
        pad = -self.size % 8
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        return spec


def encode_frames(frames: list[pd.DataFrame]) -> tuple[list[dict[str, Any]], BodyBuilder]:
    """Describe OHLCV frames as raw column buffers plus their index, exactly enough to rebuild them."""
    body = BodyBuilder()
    specs: list[dict[str, Any]] = []
    for i, df in enumerate(frames):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"frame {i} is a {type(df).__name__}, not a DataFrame")
        index = df.index
        if isinstance(index, pd.DatetimeIndex):
            ix: dict[str, Any] = {
                "kind": "datetime", "unit": index.unit, "tz": None if index.tz is None else str(index.tz),
                "freq": index.freqstr, **body.add(index.asi8, "<i8"),
            }
        elif isinstance(index, pd.RangeIndex):
            ix = {"kind": "range", "start": index.start, "stop": index.stop, "step": index.step}
        elif pd.api.types.is_integer_dtype(index.dtype):
            ix = {"kind": "int", **body.add(index.to_numpy(dtype=np.int64), "<i8")}
        else:
            raise TypeError(f"frame {i}: unsupported index type {type(index).__name__}")
        ix["name"] = index.name if isinstance(index.name, str) or index.name is None else str(index.name)
        columns = []
        if df.columns.has_duplicates:
            raise TypeError(f"frame {i}: column names must be unique")
        for pos, name in enumerate(df.columns):
            if not isinstance(name, str):
                raise TypeError(f"frame {i}: column names must be strings, got {name!r}")
            values = df.iloc[:, pos].to_numpy()
            if values.dtype.kind not in "biuf":
                raise TypeError(f"frame {i}: column {name!r} has unsupported dtype {values.dtype}")
            dtype = values.dtype.newbyteorder("<").str
            columns.append({"name": name, "dtype": dtype, **body.add(values, dtype)})
        specs.append({"n": len(df), "index": ix, "columns": columns})
    return specs, body


def encode_panels(panels: list[tuple[pd.DataFrame, ...]]) -> tuple[list[dict[str, Any]], list[bytes | memoryview]]:
    """Each panel (a frame: one DataFrame per instrument) as its own slice of one body, so the worker
    can hand a frame's child exactly its own bytes and nothing of another frame."""
    described: list[dict[str, Any]] = []
    parts: list[bytes | memoryview] = []
    offset = 0
    for panel in panels:
        specs, body = encode_frames(list(panel))
        described.append({"specs": specs, "offset": offset, "nbytes": body.size})
        parts += body.parts
        offset += body.size
    return described, parts


def encode_arrays(arrays: dict[str, Any]) -> tuple[list[dict[str, Any]], list[bytes | memoryview]]:
    """Named arrays as float64 buffers plus their names and shapes (what a frame's child sends back)."""
    if not isinstance(arrays, dict):
        raise TypeError(f"the driver returned a {type(arrays).__name__}, not a dict of arrays")
    body = BodyBuilder()
    described = []
    for name, value in arrays.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_ARRAY_NAME:
            raise TypeError("an output array's name is not a short string")
        data = np.asarray(value, dtype=np.float64)
        described.append({"name": name, "shape": list(data.shape), **body.add(data)})
    return described, body.parts


def decode_arrays(described: Any, body: bytearray) -> dict[str, np.ndarray]:
    """The named float64 arrays ``encode_arrays`` described, bounds-checked, trusting nothing else."""
    if not isinstance(described, list):
        raise ProtocolError("array list missing")
    out: dict[str, np.ndarray] = {}
    for spec in described:
        name = spec.get("name") if isinstance(spec, dict) else None
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not isinstance(name, str) or len(name) > MAX_ARRAY_NAME or name in out:
            raise ProtocolError("invalid or repeated array name")
        if not isinstance(shape, list) or len(shape) > 4 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
            raise ProtocolError(f"array {ascii(name)[:60]}: invalid shape")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        out[name] = array_at(body, spec, count).reshape(shape)
    return out


def decode_frames(specs: list[dict[str, Any]], body: bytearray) -> list[pd.DataFrame]:
    """Rebuild the frames ``encode_frames`` described (writable copies, dates and dtypes intact)."""
    frames = []
    for spec in specs:
        n = int(spec["n"])
        ix = spec["index"]
        if ix["kind"] == "datetime":
            values = array_at(body, ix, n, "<i8").view(f"datetime64[{ix['unit']}]").copy()
            index = pd.DatetimeIndex(values, name=ix["name"])
            if ix["tz"] is not None:
                index = index.tz_localize("UTC").tz_convert(ix["tz"])
            if ix["freq"] is not None:
                index = pd.DatetimeIndex(index, freq=ix["freq"])
        elif ix["kind"] == "range":
            index = pd.RangeIndex(ix["start"], ix["stop"], ix["step"], name=ix["name"])
        else:
            index = pd.Index(array_at(body, ix, n, "<i8").copy(), name=ix["name"])
        data = {c["name"]: array_at(body, c, n, c["dtype"]).copy() for c in spec["columns"]}
        frames.append(pd.DataFrame(data, index=index))
    return frames
