"""A tiny ONNX protobuf reader (no ``onnx`` package needed): :func:`read_onnx_graph` returns a
model's nodes, its small inline initializers and the external-data files it refers to, enough
to read the scale and zero point of a quantised model's input and output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dissect.models.yamnet_files import YamnetFilesError

#: The tagger's model or class map cannot be used (also raised by this reader): the same class
#: as the model files' error, so one ``except`` covers both.
TaggerError = YamnetFilesError


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def _fields(buf: memoryview):
    """Yield ``(field number, wire type, value)`` of one protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        else:
            raise TaggerError(f"unsupported protobuf wire type {wire}")
        yield num, wire, value


# ONNX TensorProto.DataType -> numpy dtype (the scalar types quantisation parameters use).
_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
                7: np.int64, 10: np.float16, 11: np.float64}


@dataclass
class OnnxGraph:
    """What :func:`read_onnx_graph` extracts: nodes as ``(op_type, inputs, outputs)``, small
    inline initializers as arrays, and the external-data files the model refers to."""

    nodes: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    external_files: list[str] = field(default_factory=list)


def _tensor(buf: memoryview, max_elements: int) -> tuple[str, np.ndarray | None, str | None]:
    dims, dtype, name, raw, floats, ints, location = [], 0, "", None, [], [], None
    for num, wire, value in _fields(buf):
        if num == 1:
            if wire == 2:
                j = 0
                while j < len(value):
                    d, j = _varint(value, j)
                    dims.append(d)
            else:
                dims.append(value)
        elif num == 2:
            dtype = value
        elif num == 8:
            name = bytes(value).decode("utf-8")
        elif num == 9:
            raw = value
        elif num == 4:
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value) if wire == 2
                          else struct.unpack("<f", value))
        elif num == 5:
            if wire == 2:
                j = 0
                while j < len(value):
                    v, j = _varint(value, j)
                    ints.append(v)
            else:
                ints.append(value)
        elif num == 13:
            kv = {k: bytes(v).decode("utf-8") for k, _, v in _fields(value)}
            if kv.get(1) == "location":
                location = kv.get(2)
    count = int(np.prod(dims)) if dims else 1
    if location is not None or dtype not in _ONNX_DTYPES or count > max_elements:
        return name, None, location
    np_dtype = _ONNX_DTYPES[dtype]
    if raw is not None:
        arr = np.frombuffer(bytes(raw), dtype=np.dtype(np_dtype).newbyteorder("<"))
    elif floats:
        arr = np.asarray(floats, dtype=np_dtype)
    else:  # int32_data holds every integer type up to 32 bits (two's complement for signed)
        arr = np.asarray([v - (1 << 64) if v >= 1 << 63 else v for v in ints]).astype(np_dtype)
    return name, arr.reshape(dims) if dims else arr.reshape(()), None


def read_onnx_graph(path: Path, max_elements: int = 64) -> OnnxGraph:
    """Read the nodes, small initializers (<= ``max_elements``) and external data locations of
    an ONNX model without the ``onnx`` package (ModelProto.graph = 7; GraphProto.node = 1,
    initializer = 5; NodeProto input = 1, output = 2, op_type = 4)."""
    data = memoryview(Path(path).read_bytes())
    graph = next((v for num, _, v in _fields(data) if num == 7), None)
    if graph is None:
        raise TaggerError(f"tagger: {path} holds no ONNX graph")
    out = OnnxGraph()
    for num, _, value in _fields(graph):
        if num == 1:
            node: dict[int, list[str]] = {1: [], 2: [], 4: []}
            for n, _, v in _fields(value):
                if n in node:
                    node[n].append(bytes(v).decode("utf-8"))
            out.nodes.append(((node[4] or [""])[0], node[1], node[2]))
        elif num == 5:
            name, arr, location = _tensor(value, max_elements)
            if arr is not None:
                out.initializers[name] = arr
            if location is not None and location not in out.external_files:
                out.external_files.append(location)
    return out
