"""Sparse-autoencoder latents as sites: ``sae:<layer>``, whose units are a TopK SAE's latents.

A saved SAE (``dissect features train``, :mod:`dissect.features`) is a safetensors file with
the tensors of EleutherAI sparsify's ``SparseCoder`` (``encoder.weight [n, D]``,
``encoder.bias [n]``, ``W_dec [n, D]``, ``b_dec [D]``) and a JSON sidecar (``<file>.json``:
``config`` with ``layer``, ``d_in``, ``n_latents``, ``k``; ``provenance``; ``metrics``).

This module is the model-agnostic part that lives beside the adapters (so every model loader,
:func:`dissect.models.load.load_from_config` with ``model.features=[FILE]`` included, gets the
sites): :class:`Sae` computes the latents in plain torch, exactly as sparsify's encoder does
(``relu(W_enc (x - b_dec) + b_enc)``, then the ``k`` largest kept, the rest 0), and
:func:`sae_site` makes the derived :class:`~dissect.models.base.Site`: framed like its base
layer, its units are the latents, and an edit of the latents moves the base layer's frames by
``(new - old) @ W_dec`` (zeroing latent ``i`` removes exactly ``z_i * W_dec[i]``; the SAE's
reconstruction error stays in). Training lives in :mod:`dissect.features` (it needs the
recorder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dissect.models.base import Adapter, Derived, Site

#: Site kind and name prefix of SAE latents: ``sae:<layer>``.
SAE_KIND = "sae"
SAE_PREFIX = "sae:"
#: The tensors of a saved SAE (sparsify's ``SparseCoder`` state dict names).
TENSORS = ("encoder.weight", "encoder.bias", "W_dec", "b_dec")


def sidecar(path: str | Path) -> Path:
    """The JSON sidecar of an SAE file: ``<path>.json`` (``conv6.safetensors.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


@dataclass
class Sae:
    """A TopK sparse autoencoder over one layer's frames (float32, on the CPU or a device).

    Attributes:
        layer: the base layer (site name) it was trained on.
        W_enc: encoder weight ``[n_latents, d_in]``; b_enc: encoder bias ``[n_latents]``.
        W_dec: decoder weight ``[n_latents, d_in]`` (rows of unit norm after training);
        b_dec: decoder bias ``[d_in]`` (subtracted before encoding, added after decoding).
        k: latents kept per frame.
        info: the JSON sidecar (config, provenance, metrics); ``{}`` when built in memory.
    """

    layer: str
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    k: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def n_latents(self) -> int:
        return int(self.W_enc.shape[0])

    def to(self, device: torch.device | str) -> Sae:
        return Sae(self.layer, *(t.to(device) for t in (self.W_enc, self.b_enc, self.W_dec,
                                                         self.b_dec)), self.k, self.info)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense latents ``[..., n_latents]`` of frames ``x [..., d_in]``: the ``k`` largest of
        ``relu((x - b_dec) @ W_enc.T + b_enc)`` kept, every other latent 0."""
        x = x.to(self.W_enc.device, torch.float32)
        pre = torch.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)
        values, index = pre.topk(min(self.k, self.n_latents), dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, index, values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``z @ W_dec + b_dec`` ``[..., d_in]`` of latents ``[..., n]``."""
        return z.to(self.W_dec.device, torch.float32) @ self.W_dec + self.b_dec

    def lift(self, base: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        """Base frames ``[..., d_in]`` moved by the latents' edit: ``base + (new - old) @
        W_dec`` (each latent's change times its decoder direction; the bias and the
        reconstruction error are untouched)."""
        delta = (new - old).to(self.W_dec.device, torch.float32) @ self.W_dec
        return base + delta.to(base.device)

    # ----------------------------------------------------------------- files
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors under sparsify's names (:data:`TENSORS`), contiguous float32 CPU."""
        return {name: t.detach().float().cpu().contiguous() for name, t in
                zip(TENSORS, (self.W_enc, self.b_enc, self.W_dec, self.b_dec), strict=True)}

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (safetensors) and its sidecar ``<path>.json`` (:attr:`info`, with
        ``config.layer``, ``d_in``, ``n_latents`` and ``k`` set from this SAE); returns
        ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = json.loads(json.dumps(self.info))
        info.setdefault("config", {}).update(layer=self.layer, d_in=self.d_in,
                                             n_latents=self.n_latents, k=self.k)
        save_file(self.state_dict(), str(path), metadata={"layer": self.layer})
        sidecar(path).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Sae:
        """Read an SAE saved by :meth:`save`.

        Raises:
            FileNotFoundError: no such file, or no sidecar ``<path>.json``.
            ValueError: a tensor missing or of the wrong shape, or a sidecar without
                ``config.layer`` / ``config.k`` (the message names the file and the field).
        """
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such SAE file")
        side = sidecar(path)
        if not side.is_file():
            raise FileNotFoundError(f"{side}: missing (the SAE's config; written beside the "
                                    "weights by dissect features train)")
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{side}: not JSON ({exc})") from exc
        cfg = info.get("config") if isinstance(info, dict) else None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layer"), str) \
                or not isinstance(cfg.get("k"), int) or cfg["k"] < 1:
            raise ValueError(f"{side}: want config.layer (a layer name) and config.k (an "
                             "integer >= 1)")
        tensors = load_file(str(path))
        missing = [t for t in TENSORS if t not in tensors]
        if missing:
            raise ValueError(f"{path}: not an SAE file (missing tensors {missing}; want "
                             f"{list(TENSORS)})")
        W_enc, b_enc, W_dec, b_dec = (tensors[t].float() for t in TENSORS)
        n, d = W_enc.shape if W_enc.dim() == 2 else (0, 0)
        if W_enc.dim() != 2 or tuple(b_enc.shape) != (n,) or tuple(W_dec.shape) != (n, d) \
                or tuple(b_dec.shape) != (d,):
            raise ValueError(f"{path}: inconsistent shapes encoder.weight {list(W_enc.shape)}, "
                             f"encoder.bias {list(b_enc.shape)}, W_dec {list(W_dec.shape)}, "
                             f"b_dec {list(b_dec.shape)} (want [n, D], [n], [n, D], [D])")
        for key, want in (("d_in", d), ("n_latents", n)):
            if key in cfg and cfg[key] != want:
                raise ValueError(f"{side}: config.{key}={cfg[key]} but the weights in {path} "
                                 f"have {want}")
        return cls(cfg["layer"], W_enc, b_enc, W_dec, b_dec, int(cfg["k"]), info)

    @classmethod
    def from_sparse_coder(cls, layer: str, coder: nn.Module, info: dict[str, Any] | None = None
                          ) -> Sae:
        """An :class:`Sae` with a sparsify ``SparseCoder``'s weights (copied, float32)."""
        return cls(layer, coder.encoder.weight.detach().float().clone(),
                   coder.encoder.bias.detach().float().clone(),
                   coder.W_dec.detach().float().clone(), coder.b_dec.detach().float().clone(),
                   int(coder.cfg.k), dict(info or {}))


def sae_site(base: Site, sae: Sae, source: str | Path | None = None) -> Site:
    """The site ``sae:<base.name>`` whose units are ``sae``'s latents (framed as ``base``).

    Raises:
        ValueError: ``sae`` was trained on another layer, or its width is not the layer's
            (the message names ``source``, the file, when given).
    """
    where = f"{source}: " if source is not None else ""
    if base.derived is not None:
        raise ValueError(f"{where}an SAE over {base.name!r}, itself a derived site, is not "
                         "supported; train it on the base layer")
    if sae.layer != base.name:
        raise ValueError(f"{where}the SAE was trained on layer {sae.layer!r}, not {base.name!r}")
    if sae.d_in != base.units:
        raise ValueError(f"{where}the SAE's input width d_in={sae.d_in} does not match layer "
                         f"{base.name!r}, which has {base.units} units")
    derived = Derived(base=base, encode=sae.encode, lift=sae.lift)
    return Site(f"{SAE_PREFIX}{base.name}", base.module, sae.n_latents, SAE_KIND, base.hop_ms,
                base.offset_ms, transform=None, derived=derived)


def attach(adapter: Adapter, model: nn.Module, sae: Sae | str | Path,
           device: torch.device | str | None = None) -> Site:
    """Add the site ``sae:<layer>`` (the latents of ``sae``, a :class:`Sae` or an SAE file) to
    ``adapter`` (this instance), so it can be recorded, hooked, ablated and steered as any
    layer; returns the site.

    Raises:
        LayerNameError: the SAE's layer is not a site of the model (the message lists them).
        ValueError / FileNotFoundError: see :meth:`Sae.load` and :func:`sae_site`.
    """
    source = None
    if not isinstance(sae, Sae):
        source, sae = sae, Sae.load(sae)
    if device is not None:
        sae = sae.to(device)
    base = adapter.resolve_layers(model, [sae.layer])[0]
    return adapter.add_site(sae_site(base, sae, source))
