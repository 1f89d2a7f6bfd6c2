"""Any ``nn.Module``: bring a module, a preprocessing callable and dotted layer names.

Programmatic use::

    adapter = GenericAdapter(module=my_net, layers=["encoder.2", "head"], sample_rate=16000,
                             preprocess=lambda batch, lengths: {"x": batch})

From a recipe, ``model.name=generic model.source=my_pkg.models:build`` imports ``build()`` (it
must return the module) and ``model.options.preprocess=my_pkg.models:prep`` the preprocessing.

Frames: a site output of shape ``[B, U]`` is one frame; ``[B, T, U]`` (``layout="btc"``, the
default) or ``[B, U, T]`` (``layout="bct"``) has a time axis; ``[B, U, H, W]`` (conv2d) takes
``time_axis`` (2 or 3) as time and averages the other spatial axis. Valid frames are estimated
proportionally, ``ceil(T * n_i / n_max)``, because a generic module's downsampling is unknown;
adapters for known families compute them exactly. Units and the frame hop are measured with one
dry run on one second of silence.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.audio.batch import pad_batch
from dissect.models.base import (
    Adapter,
    Batch,
    LayerNameError,
    Site,
    WeightsUnavailableError,
    unwrap,
)
from dissect.models.registry import register


def import_object(spec: str) -> Any:
    """Import ``"package.module:attribute"``."""
    mod, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"expected 'package.module:attribute', got {spec!r}")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise WeightsUnavailableError(f"generic: cannot import {spec!r}: {exc}") from exc


def _default_preprocess(batch: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"x": batch}


@register
class GenericAdapter(Adapter):
    """Wrap any ``nn.Module`` (see the module docstring)."""

    name = "generic"

    def __init__(
        self,
        source: str | None = None,
        site_kind: str = "module",
        module: nn.Module | None = None,
        preprocess: Callable | str | None = None,
        layers: Sequence[str] | None = None,
        sample_rate: int = 16000,
        layout: str = "btc",
        time_axis: int = 2,
        padding_safe: bool = True,
        **options: Any,
    ):
        super().__init__(source, site_kind, **options)
        if module is None and source is None:
            raise ValueError("generic adapter needs module=<nn.Module> or source='pkg.mod:factory'")
        if layout not in ("btc", "bct"):
            raise ValueError(f"generic: layout must be 'btc' or 'bct', got {layout!r}")
        self.module = module
        self.preprocess = import_object(preprocess) if isinstance(preprocess, str) else preprocess
        self.preprocess = self.preprocess or _default_preprocess
        self.layers = list(layers or [])
        self.sample_rate = int(sample_rate)  # instance attribute shadows the class default
        self.layout, self.time_axis = layout, time_axis
        self.padding_safe = bool(padding_safe)
        self._sites: dict[str, Site] | None = None

    def load(self, device="cpu") -> nn.Module:
        model = self.module if self.module is not None else import_object(self.source)()
        if not isinstance(model, nn.Module):
            raise WeightsUnavailableError(f"generic: {self.source!r} did not return an nn.Module")
        return model.to(device).eval()

    def _to_btu(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x[:, None, :]
        if x.dim() == 3:
            return x if self.layout == "btc" else x.transpose(1, 2)
        if x.dim() == 4:  # [B, U, H, W]
            other = 5 - self.time_axis
            return x.mean(dim=other).transpose(1, 2)
        raise ValueError(f"generic: cannot frame an output of shape {tuple(x.shape)}")

    def sites(self, model: nn.Module) -> dict[str, Site]:
        if self._sites is not None:
            return self._sites
        names = self.layers or [n for n, m in model.named_children()]
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            valid = [n for n in modules if n][:50]
            raise LayerNameError(f"generic: no module(s) {missing}; modules include: {valid}")
        shapes: dict[str, torch.Size] = {}
        hooks = [modules[n].register_forward_hook(
            lambda _m, _i, o, n=n: shapes.__setitem__(n, self._to_btu(unwrap(o)).shape))
            for n in names]
        try:
            with torch.inference_mode():
                device = next(model.parameters(), torch.zeros(())).device
                silence = np.zeros(self.sample_rate, dtype=np.float32)
                self.forward(model, self.prepare([silence]).to(device))
        finally:
            for h in hooks:
                h.remove()
        self._sites = {
            n: Site(n, n, int(shapes[n][2]), "module", 1000.0 / shapes[n][1],
                    500.0 / shapes[n][1])
            for n in names
        }
        return self._sites

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        batch, lengths, _ = pad_batch(list(waveforms))
        b, n = torch.from_numpy(batch), torch.from_numpy(lengths)
        inputs = self.preprocess(b, n)
        if torch.is_tensor(inputs):
            inputs = {"x": inputs}
        return Batch(dict(inputs), n, {"max_len": int(batch.shape[1])})

    def forward(self, model: nn.Module, batch: Batch):
        out = model(**batch.inputs)
        return unwrap(out) if out is not None else None

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        return self._to_btu(unwrap(output)).float()

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        max_len = max(batch.extra["max_len"], 1)
        n_valid = [math.ceil(n_frames * int(n) / max_len) for n in batch.lengths]
        return torch.arange(n_frames)[None, :] < torch.tensor(n_valid).clamp(min=1)[:, None]
