"""ONNX graph -> torch module, so an exported model's channels are neurons like any other's.

:func:`load_onnx_module` reads an ``.onnx`` file (with its external data) through the ``onnx``
package and returns an :class:`OnnxModule`: every graph node becomes a submodule named after the
node (``/model/layer2/pointwise_conv/conv/Conv`` -> ``model.layer2.pointwise_conv.conv``), and the
forward pass runs the nodes in the graph's (topological) order. So forward hooks, the recorder
and ablation work on it as on any ``nn.Module``:

* ``Conv`` (1-D/2-D/3-D) becomes an :class:`OnnxConv` (an ``nn.Conv1d/2d/3d`` that applies the
  node's explicit, possibly asymmetric, ``pads`` first); ``Gemm`` and ``MatMul`` with a constant
  2-D weight become ``nn.Linear``; ``BatchNormalization`` becomes ``nn.BatchNorm*d`` (eval);
  their weights are the (folded) constants of the graph, as parameters;
* every other supported op (:data:`SUPPORTED_OPS`) is an :class:`OnnxOp` holding its attributes
  and constant inputs;
* nodes whose inputs are all constants (weight quantisation, shape arithmetic) are evaluated
  once at load time ("folded").

Quantised (QDQ) models. ``QuantizeLinear`` computes ``clip(round_half_even(x / scale) + zp,
qmin, qmax)`` as a float tensor of integer values and ``DequantizeLinear`` ``(q - zp) * scale``
(per tensor, or per channel along ``axis``), exactly as the ONNX operators are defined; the
integer type (and so ``qmin``/``qmax``) is the zero point's. ``quantization`` selects:

* ``"fake"`` (default): as written. Weight Q/DQ pairs fold into dequantised weights; activation
  Q/DQ pairs round activations onto the int8 grid, as the deployed model does. An integer graph
  input read by a ``DequantizeLinear`` takes the *float* value and is quantised with that node's
  scale and zero point first; an integer graph output written by a ``QuantizeLinear`` comes back
  dequantised. So the module maps float to float and equals onnxruntime's result on the
  quantised input, up to float rounding (onnxruntime's fused integer kernels round the
  accumulator once, here every value is a float32; see ``docs/real-audio.md`` for the figures).
* ``"weights"``: dequantised weights, float activations (activation Q/DQ become identities).
* ``"none"``: every Q/DQ is an identity, so a model whose initialisers are the float weights
  (as Qualcomm AI Hub's QDQ exports are) runs as the float network it was quantised from.

Batches. Exports often fix the batch size to 1 (YAMNet's is ``[1, 1, 96, 64]``); the module
runs any batch size, and a ``Reshape`` to a constant shape whose first entry is 1 keeps the
input's batch dimension instead. Unsupported ops raise :class:`OnnxConversionError` naming the
node and listing the supported set; shape arithmetic must fold to constants.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

QUANTIZATION_MODES = ("fake", "weights", "none")


class OnnxConversionError(ValueError):
    """The ONNX file cannot be turned into a torch module (the message names node and op)."""


# ------------------------------------------------------------------------ quantisation helpers
_INT_RANGE = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max))
              for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32)}


def _broadcast(p: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """A per-axis parameter ``[C]`` shaped to broadcast along ``axis`` of ``x``."""
    if p.dim() == 0 or p.numel() == 1:
        return p.reshape(())
    shape = [1] * x.dim()
    shape[axis % x.dim()] = p.numel()
    return p.reshape(shape)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int,
             qmax: int, axis: int = 1) -> torch.Tensor:
    """ONNX ``QuantizeLinear``: ``clip(round_half_even(x / scale) + zp, qmin, qmax)`` (float)."""
    s, z = _broadcast(scale.to(x.dtype), x, axis), _broadcast(zero_point.to(x.dtype), x, axis)
    return torch.clamp(torch.round(x / s) + z, qmin, qmax)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
               axis: int = 1) -> torch.Tensor:
    """ONNX ``DequantizeLinear``: ``(q - zp) * scale``."""
    s, z = _broadcast(scale.to(q.dtype), q, axis), _broadcast(zero_point.to(q.dtype), q, axis)
    return (q - z) * s


# ------------------------------------------------------------------------ op implementations
def _pads_to_torch(pads: Sequence[int]) -> list[int]:
    """ONNX ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` -> ``F.pad`` order (last dim
    first)."""
    n = len(pads) // 2
    out: list[int] = []
    for i in reversed(range(n)):
        out += [int(pads[i]), int(pads[i + n])]
    return out


def _auto_pad(attrs: Mapping[str, Any], in_shape: Sequence[int], kernel: Sequence[int],
              strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    mode = attrs.get("auto_pad", "NOTSET")
    if isinstance(mode, bytes):
        mode = mode.decode()
    if mode in ("NOTSET", ""):
        return list(attrs.get("pads", [0] * (2 * len(kernel))))
    if mode == "VALID":
        return [0] * (2 * len(kernel))
    begin, end = [], []
    for size, k, s, d in zip(in_shape, kernel, strides, dilations, strict=True):
        out = math.ceil(size / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        first, last = (small, big) if mode == "SAME_UPPER" else (big, small)
        begin.append(first)
        end.append(last)
    return begin + end


def _axes(x: torch.Tensor, axes) -> list[int]:
    return [int(a) % x.dim() for a in axes]


def _pool(x, attrs, kind: str):
    k = list(attrs["kernel_shape"])
    s = list(attrs.get("strides", [1] * len(k)))
    d = list(attrs.get("dilations", [1] * len(k)))
    if int(attrs.get("ceil_mode", 0)):
        raise OnnxConversionError(f"{kind}: ceil_mode=1 is not supported")
    if kind == "AveragePool" and any(v != 1 for v in d):
        raise OnnxConversionError("AveragePool: dilations are not supported")
    tp = _pads_to_torch(_auto_pad(attrs, x.shape[2:], k, s, d))
    nd = len(k)
    if kind == "MaxPool":
        if any(tp):
            x = F.pad(x, tp, value=-math.inf)
        return (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1](x, k, s, dilation=d)
    avg = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
    if not any(tp):
        return avg(x, k, s)
    y = avg(F.pad(x, tp), k, s)
    if int(attrs.get("count_include_pad", 0)):
        return y
    ones = F.pad(torch.ones_like(x[:1, :1]), tp)  # divide by the real (unpadded) count
    return y / avg(ones, k, s)


def _op_clip(attrs, x, lo=None, hi=None):
    lo = attrs.get("min") if lo is None else float(lo.reshape(-1)[0])
    hi = attrs.get("max") if hi is None else float(hi.reshape(-1)[0])
    return torch.clamp(x, lo, hi)


def _op_gelu(attrs, x):
    return F.gelu(x, approximate=attrs.get("approximate", "none"))


def _op_reshape(attrs, x, shape):
    shape = [int(v) for v in shape.tolist()]
    if not int(attrs.get("allowzero", 0)):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    if shape and shape[0] == 1 and x.dim() and x.shape[0] != 1:
        shape[0] = x.shape[0]  # a graph exported with batch 1: keep the batch dimension
    return x.reshape(shape)


def _op_flatten(attrs, x):
    axis = int(attrs.get("axis", 1)) % max(1, x.dim())
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _op_transpose(attrs, x):
    perm = attrs.get("perm") or list(reversed(range(x.dim())))
    return x.permute(*[int(p) for p in perm])


def _op_squeeze(attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else axes.tolist()
    if axes is None:
        return x.squeeze()
    for a in sorted(_axes(x, axes), reverse=True):
        x = x.squeeze(a)
    return x


def _op_unsqueeze(attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else axes.tolist()
    n = x.dim() + len(axes)
    for a in sorted(int(v) % n for v in axes):
        x = x.unsqueeze(a)
    return x


def _op_reduce_mean(attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else axes.tolist()
    keep = bool(int(attrs.get("keepdims", 1)))
    dims = tuple(_axes(x, axes)) if axes else tuple(range(x.dim()))
    return x.mean(dim=dims, keepdim=keep)


def _op_pad(attrs, x, pads=None, value=None):
    mode = attrs.get("mode", "constant")
    tp = _pads_to_torch(attrs.get("pads") if pads is None else pads.tolist())
    while tp and tp[-1] == 0 and tp[-2] == 0:  # unpadded leading dims: F.pad needs fewer
        tp = tp[:-2]
    if mode != "constant":
        return F.pad(x, tp, mode=mode)
    v = float(value.reshape(-1)[0]) if value is not None and value.numel() else 0.0
    return F.pad(x, tp, value=v)


def _op_gemm(attrs, a, b, c=None):
    if int(attrs.get("transA", 0)):
        a = a.transpose(-1, -2)
    if int(attrs.get("transB", 0)):
        b = b.transpose(-1, -2)
    y = float(attrs.get("alpha", 1.0)) * (a @ b)
    return y if c is None else y + float(attrs.get("beta", 1.0)) * c


def _op_gather(attrs, x, idx):
    axis = int(attrs.get("axis", 0)) % x.dim()
    out = torch.index_select(x, axis, idx.reshape(-1).long() % x.shape[axis])
    return out.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


def _unary(fn):
    return lambda attrs, x: fn(x)


def _binary(fn):
    return lambda attrs, a, b: fn(a, b)


#: op type -> ``fn(attrs, *inputs) -> tensor`` for the ops that become an :class:`OnnxOp`.
_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "Relu": _unary(F.relu), "Sigmoid": _unary(torch.sigmoid), "Tanh": _unary(torch.tanh),
    "Erf": _unary(torch.erf), "Sqrt": _unary(torch.sqrt), "Exp": _unary(torch.exp),
    "Log": _unary(torch.log), "Neg": _unary(torch.neg), "Identity": _unary(lambda x: x),
    "LeakyRelu": lambda attrs, x: F.leaky_relu(x, float(attrs.get("alpha", 0.01))),
    "Clip": _op_clip, "Gelu": _op_gelu,
    "Softmax": lambda attrs, x: torch.softmax(x, dim=int(attrs.get("axis", -1))),
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul),
    "Div": _binary(torch.div), "Pow": _binary(torch.pow), "MatMul": _binary(torch.matmul),
    "Gemm": _op_gemm,
    "GlobalAveragePool": lambda attrs, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "GlobalMaxPool": lambda attrs, x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True),
    "MaxPool": lambda attrs, x: _pool(x, attrs, "MaxPool"),
    "AveragePool": lambda attrs, x: _pool(x, attrs, "AveragePool"),
    "Reshape": _op_reshape, "Flatten": _op_flatten, "Transpose": _op_transpose,
    "Squeeze": _op_squeeze, "Unsqueeze": _op_unsqueeze,
    "Concat": lambda attrs, *xs: torch.cat(xs, dim=int(attrs["axis"])),
    "ReduceMean": _op_reduce_mean, "Pad": _op_pad,
    "Shape": lambda attrs, x: torch.tensor(list(x.shape), dtype=torch.int64),
    "Gather": _op_gather,
}

#: Every op type the converter accepts.
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(
    set(_OPS) | {"Conv", "BatchNormalization", "QuantizeLinear", "DequantizeLinear",
                 "Constant"}))


# ------------------------------------------------------------------------ modules
def _conv_class(n: int) -> type[nn.Module]:
    base = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]

    class _Conv(base):  # type: ignore[misc, valid-type]
        """An ``nn.Conv{n}d`` that applies the ONNX node's explicit pads first."""

        def __init__(self, *args, onnx_pads: Sequence[int] = (), **kwargs):
            super().__init__(*args, **kwargs)
            self.onnx_pads = [int(p) for p in onnx_pads]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if any(self.onnx_pads):
                x = F.pad(x, _pads_to_torch(self.onnx_pads))
            return super().forward(x)

    _Conv.__name__ = _Conv.__qualname__ = f"OnnxConv{n}d"
    return _Conv


_CONV = {n: _conv_class(n) for n in (1, 2, 3)}


class OnnxOp(nn.Module):
    """One ONNX node run by a torch function; ``consts`` are its constant inputs (by position)."""

    def __init__(self, op_type: str, attrs: Mapping[str, Any], consts: Mapping[int, torch.Tensor],
                 n_inputs: int, fn: Callable[..., torch.Tensor] | None = None):
        super().__init__()
        self.op_type, self.attrs, self.n_inputs = op_type, dict(attrs), n_inputs
        self.fn = fn or _OPS[op_type]
        self.const_pos = sorted(consts)
        for i, t in consts.items():
            self.register_buffer(f"const{i}", t, persistent=False)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        it = iter(xs)
        args = [getattr(self, f"const{i}") if i in self.const_pos else next(it)
                for i in range(self.n_inputs)]
        return self.fn(self.attrs, *args)

    def extra_repr(self) -> str:
        return self.op_type


class _Quant(nn.Module):
    """``QuantizeLinear`` / ``DequantizeLinear`` / both (``fake``) / an identity (``off``)."""

    def __init__(self, kind: str, scale: torch.Tensor, zero_point: torch.Tensor,
                 qrange: tuple[int, int], axis: int):
        super().__init__()
        self.kind, self.qrange, self.axis = kind, qrange, axis
        self.register_buffer("scale", scale.float(), persistent=False)
        self.register_buffer("zero_point", zero_point.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "off":
            return x
        s, z, (lo, hi), a = self.scale, self.zero_point, self.qrange, self.axis
        if self.kind == "quantize":
            return quantize(x, s, z, lo, hi, a)
        if self.kind == "dequantize":
            return dequantize(x, s, z, a)
        return dequantize(quantize(x, s, z, lo, hi, a), s, z, a)

    def extra_repr(self) -> str:
        return self.kind


class OnnxModule(nn.Module):
    """A converted ONNX graph (see the module docstring).

    Attributes:
        input_names / output_names: the graph's (non-initialiser) inputs and its outputs.
        node_ops: dotted submodule name of every run-time node -> its ONNX op type, in graph
            order (folded nodes have no submodule).
        quantization: ``fake`` | ``weights`` | ``none``.
    """

    def __init__(self, steps, input_names, output_names, consts, quantization: str):
        super().__init__()
        self.input_names, self.output_names = list(input_names), list(output_names)
        self.quantization = quantization
        self._steps: list[tuple[str, list[str], str]] = []  # (path, input names, output name)
        self.node_ops: dict[str, str] = {}
        # graph outputs that folded to constants (nothing else: weights live in the modules)
        self._const_outputs = {k: v for k, v in consts.items() if k in self.output_names}
        for path, module, ins, outs, op_type in steps:
            _set_submodule(self, path, module)
            self._steps.append((path, list(ins), outs[0]))
            self.node_ops[path] = op_type
        self._modules_in_order: list[nn.Module] | None = None

    def consumers(self, path: str) -> list[str]:
        """Paths of the nodes that read the output of node ``path``."""
        out = next(o for p, _, o in self._steps if p == path)
        return [p for p, ins, _ in self._steps if out in ins]

    def is_graph_output(self, path: str) -> bool:
        """Whether node ``path`` writes a graph output."""
        return any(p == path and o in self.output_names for p, _, o in self._steps)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the graph: inputs in :attr:`input_names` order; one output, or a tuple."""
        if len(inputs) != len(self.input_names):
            raise TypeError(f"expected {len(self.input_names)} inputs "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        if self._modules_in_order is None:
            self._modules_in_order = [self.get_submodule(p) for p, _, _ in self._steps]
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for mod, (_, ins, out) in zip(self._modules_in_order, self._steps, strict=True):
            env[out] = mod(*[env[n] for n in ins])
        res = tuple(env[n] if n in env else self._const_outputs[n] for n in self.output_names)
        return res[0] if len(res) == 1 else res


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parts = path.split(".")
    parent = root
    for p in parts[:-1]:
        if p not in parent._modules:
            parent.add_module(p, nn.Module())
        parent = parent._modules[p]
    if parts[-1] in parent._modules:
        raise OnnxConversionError(f"two nodes map to the module name {path!r}")
    parent.add_module(parts[-1], module)


_SEG = re.compile(r"[^0-9A-Za-z_]+")


def node_path(name: str, op_type: str, index: int, taken: set[str]) -> str:
    """The dotted submodule name of a node: its ``/``-separated name without the trailing op
    segment (``/model/layer1/fused/conv/Conv`` -> ``model.layer1.fused.conv``), each segment
    reduced to ``[0-9A-Za-z_]``; ``node<index>_<op>`` when the name is empty; ``_2``, ``_3``...
    appended on a clash."""
    segs = [s for s in (name or "").split("/") if s]
    if len(segs) > 1 and re.sub(r"_\d+$", "", segs[-1]) == op_type:
        segs = segs[:-1]
    segs = [_SEG.sub("_", s).strip("_") or "_" for s in segs]
    segs = segs or [f"node{index}_{op_type.lower()}"]
    for i in range(1, len(segs)):  # an ancestor is a leaf already: branch off beside it
        if ".".join(segs[:i]) in taken:
            k, stem = 2, segs[i - 1]
            while ".".join(segs[:i - 1] + [f"{stem}_{k}"]) in taken:
                k += 1
            segs[i - 1] = f"{stem}_{k}"
    path = base = ".".join(segs)
    k = 2
    while path in taken or any(t.startswith(path + ".") for t in taken):  # taken, or a parent
        path = f"{base}_{k}"
        k += 1
    taken.add(path)
    return path


# ------------------------------------------------------------------------ conversion
def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _tensor(arr: np.ndarray) -> torch.Tensor:
    arr = np.asarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.kind in "ui" and arr.dtype != np.int64:
        arr = arr.astype(np.int64) if arr.dtype.itemsize >= 4 else arr.astype(np.float32)
    if arr.dtype == np.bool_:
        return torch.from_numpy(arr.copy())
    return torch.from_numpy(np.ascontiguousarray(arr).copy())


def load_onnx_module(path: str | os.PathLike, quantization: str = "fake") -> OnnxModule:
    """Read ``path`` (external data next to it is loaded) and convert it (module docstring).

    Raises:
        FileNotFoundError: no such file.
        ModuleNotFoundError: the ``onnx`` package is missing (with the install command).
        OnnxConversionError: unreadable file, unsupported op, or a constant the op needs is
            computed at run time (named).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"onnx: model file not found: {path}")
    try:
        import onnx
    except ImportError as exc:
        raise ModuleNotFoundError("the onnx adapter needs the onnx package: pip install onnx "
                                  "(the [describe] extra installs it)") from exc
    try:
        proto = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # noqa: BLE001 - protobuf / external data errors vary
        raise OnnxConversionError(f"onnx: cannot read {path}: {exc}") from exc
    return convert(proto, quantization, source=str(path))


def convert(proto, quantization: str = "fake", source: str = "<model>") -> OnnxModule:
    """Convert an ``onnx.ModelProto`` (see :func:`load_onnx_module`)."""
    from onnx import numpy_helper

    if quantization not in QUANTIZATION_MODES:
        raise ValueError(f"onnx: quantization must be one of {QUANTIZATION_MODES}, "
                         f"got {quantization!r}")
    g = proto.graph
    consts: dict[str, torch.Tensor] = {}
    int_dtype: dict[str, np.dtype] = {}  # constant name -> its integer numpy dtype
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind in "ui":
            int_dtype[init.name] = arr.dtype
        consts[init.name] = _tensor(arr)
    elem = {1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
            7: "int64", 10: "float16", 11: "double"}
    inputs = [i for i in g.input if i.name not in consts]
    input_type = {i.name: elem.get(i.type.tensor_type.elem_type, "?") for i in inputs}
    output_type = {o.name: elem.get(o.type.tensor_type.elem_type, "?") for o in g.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    steps = []
    taken: set[str] = set()
    for idx, n in enumerate(g.node):
        op, attrs = n.op_type, _attrs(n)
        where = f"{source}: node {n.name or idx!r} ({op})"
        if op not in SUPPORTED_OPS:
            raise OnnxConversionError(f"{where}: op not supported; supported: "
                                      f"{', '.join(SUPPORTED_OPS)}")
        ins = [name for name in n.input]
        present = [name for name in ins if name]
        if op == "Constant":
            for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
                if key in attrs:
                    v = attrs[key]
                    arr = numpy_helper.to_array(v) if key == "value" else np.asarray(v)
                    if arr.dtype.kind in "ui":
                        int_dtype[n.output[0]] = arr.dtype
                    consts[n.output[0]] = _tensor(arr)
                    break
            else:
                raise OnnxConversionError(f"{where}: unsupported Constant attribute")
            continue
        module = _make_module(n, op, attrs, ins, consts, int_dtype, quantization, input_type,
                              output_type, where)
        const_in = all(name in consts for name in present)
        if const_in and op not in ("Conv", "BatchNormalization") or module is None:
            # fold: evaluate once now
            if module is None:
                continue
            with torch.no_grad():
                args = [consts[name] for name in present if not _is_bound(module, name)]
                val = module(*args)
            consts[n.output[0]] = val
            if op == "QuantizeLinear":
                zp_name = ins[2] if len(ins) > 2 and ins[2] else None
                int_dtype[n.output[0]] = int_dtype.get(zp_name, np.dtype(np.uint8))
            continue
        path = node_path(n.name, op, idx, taken)
        run_ins = [name for name in present if not _is_bound(module, name)]
        missing = [name for name in run_ins if name in consts]
        if missing:
            raise OnnxConversionError(f"{where}: internal error, constant inputs {missing}")
        steps.append((path, module, run_ins, list(n.output[:1]), op))
    produced = {s[3][0] for s in steps} | set(consts) | {i.name for i in inputs}
    for o in g.output:
        if o.name not in produced:
            raise OnnxConversionError(f"{source}: graph output {o.name!r} is never computed")
    return OnnxModule(steps, [i.name for i in inputs], [o.name for o in g.output], consts,
                      quantization)


def _is_bound(module: nn.Module, name: str) -> bool:
    """Whether input ``name`` is held inside ``module`` (a constant), not passed at run time."""
    bound = getattr(module, "_bound_inputs", ())
    return name in bound


def _bind(module: nn.Module, names: Sequence[str]) -> nn.Module:
    module._bound_inputs = tuple(n for n in names if n)
    return module


def _make_module(n, op, attrs, ins, consts, int_dtype, quantization, input_type, output_type,
                 where) -> nn.Module | None:
    """The torch module of node ``n``; constant inputs it keeps are recorded with :func:`_bind`."""
    def const(i: int, what: str) -> torch.Tensor:
        if i >= len(ins) or not ins[i]:
            raise OnnxConversionError(f"{where}: missing {what}")
        if ins[i] not in consts:
            raise OnnxConversionError(f"{where}: {what} ({ins[i]!r}) must be a constant")
        return consts[ins[i]]

    if op in ("QuantizeLinear", "DequantizeLinear"):
        scale = const(1, "scale").float()
        zp_name = ins[2] if len(ins) > 2 and ins[2] else None
        if op == "QuantizeLinear":
            dtype = int_dtype.get(zp_name, np.dtype(np.uint8)) if zp_name else np.dtype(np.uint8)
        else:
            dtype = int_dtype.get(ins[0], int_dtype.get(zp_name, np.dtype(np.uint8)))
        zp = consts[zp_name].float() if zp_name else torch.zeros(())
        if dtype not in _INT_RANGE:
            raise OnnxConversionError(f"{where}: quantised type {dtype} not supported")
        axis = int(attrs.get("axis", 1))
        weight = ins[0] in consts
        if quantization == "none" or (quantization == "weights" and not weight):
            kind = "off"
        elif op == "DequantizeLinear" and input_type.get(ins[0], "float") not in ("float", "?") \
                and ins[0] in input_type:
            kind = "fake"  # float graph input, quantised here first
        elif op == "QuantizeLinear" and n.output[0] in output_type \
                and output_type[n.output[0]] not in ("float",):
            kind = "fake"  # integer graph output, returned dequantised
        else:
            kind = "quantize" if op == "QuantizeLinear" else "dequantize"
        return _bind(_Quant(kind, scale, zp, _INT_RANGE[dtype], axis), ins[1:])

    if op == "Conv":
        w = const(1, "weight").float()
        b = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
        if len(ins) > 2 and ins[2] and ins[2] not in consts:
            raise OnnxConversionError(f"{where}: bias must be a constant")
        nd = w.dim() - 2
        k = list(attrs.get("kernel_shape", w.shape[2:]))
        s = list(attrs.get("strides", [1] * nd))
        d = list(attrs.get("dilations", [1] * nd))
        if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise OnnxConversionError(f"{where}: auto_pad {attrs['auto_pad']} is not supported "
                                      "(re-export with explicit pads)")
        groups = int(attrs.get("group", 1))
        conv = _CONV[nd](w.shape[1] * groups, w.shape[0], k, stride=s, dilation=d,
                         groups=groups, bias=b is not None,
                         onnx_pads=attrs.get("pads", [0] * (2 * nd)))
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b.float())
        return _bind(conv.eval(), ins[1:])

    if op == "BatchNormalization":
        scale, bias, mean, var = (const(i, w).float() for i, w in
                                  ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
        bn = nn.BatchNorm1d(scale.numel(), eps=float(attrs.get("epsilon", 1e-5)))
        with torch.no_grad():
            bn.weight.copy_(scale), bn.bias.copy_(bias)
            bn.running_mean.copy_(mean), bn.running_var.copy_(var)
        return _bind(_AnyDimBatchNorm(bn).eval(), ins[1:])

    if op in ("Gemm", "MatMul") and len(ins) > 1 and ins[1] in consts and ins[0] not in consts \
            and consts[ins[1]].dim() == 2 and not int(attrs.get("transA", 0)):
        w = consts[ins[1]].float()
        w = w if int(attrs.get("transB", 0)) else w.T  # nn.Linear holds [out, in]
        w = w * float(attrs.get("alpha", 1.0))
        b = None
        if op == "Gemm" and len(ins) > 2 and ins[2]:
            if ins[2] not in consts:
                raise OnnxConversionError(f"{where}: bias must be a constant")
            b = consts[ins[2]].float() * float(attrs.get("beta", 1.0))
            if b.numel() == 1:
                b = b.reshape(1).expand(w.shape[0]).clone()
            if b.numel() != w.shape[0]:
                raise OnnxConversionError(f"{where}: bias of shape {tuple(b.shape)} does not "
                                          f"broadcast as a per-output bias")
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None:
                lin.bias.copy_(b.reshape(-1))
        return _bind(lin.eval(), ins[1:])

    # generic op: constants it reads (beyond the first input) are kept inside it
    present = [name for name in ins if name]
    const_pos = {i: consts[name] for i, name in enumerate(present)
                 if name in consts and i > 0}
    if not all(name in consts for name in present):
        mod = OnnxOp(op, attrs, const_pos, len(present))
        return _bind(mod, [present[i] for i in const_pos])
    return OnnxOp(op, attrs, {}, len(present))


class _AnyDimBatchNorm(nn.Module):
    """Inference batch norm over dim 1 of any rank (ONNX ``BatchNormalization``)."""

    def __init__(self, bn: nn.BatchNorm1d):
        super().__init__()
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        m, v = self.bn.running_mean.view(shape), self.bn.running_var.view(shape)
        w, b = self.bn.weight.view(shape), self.bn.bias.view(shape)
        return (x - m) / torch.sqrt(v + self.bn.eps) * w + b
