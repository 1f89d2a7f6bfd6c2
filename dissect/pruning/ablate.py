"""Zero or steer neurons: reversibly through forward hooks, or permanently by editing weights.

A neuron is ``(layer, unit)`` where ``layer`` names one of the adapter's sites
(:meth:`~dissect.models.base.Adapter.sites`). Ablation zeroes channel ``unit`` of the output of
the site's hooked module (``Site.module``):

* ``conv`` sites (CREPE ``conv{i}_BN``, output ``[N, C, H, W]``): channel dim 1;
* every other kind (transformer ``[B, T, U]``, heads ``[B, U]``): the last dim.

For ``ffn`` sites the hooked module is the FFN's first Linear and the recorded neuron is
``act(fc1(x))``. Zeroing ``fc1``'s unit zeroes the neuron exactly when ``act(0) = 0`` (GELU,
ReLU, SiLU: yes); :func:`zeroed`, :func:`ablated` and :func:`apply_masks` check
``site.transform`` on zeros and raise ``NotImplementedError`` otherwise.

Three reversible forms, all on the one hook path (:mod:`dissect.recording.hooks`):

* :func:`ablated` ``(model, neurons)`` and :func:`steered` ``(model, scales, direction=)``
  take a :class:`dissect.Model` and run on ``Model.hooks`` (frame-level edits, mapped back onto
  the module output by :func:`dissect.recording.hooks.unframe`): the public ones, also
  ``dissect.ablated`` / ``dissect.steered``;
* :func:`zeroed` ``(module, adapter, neurons)`` zeroes the raw output's channels directly, for
  the pipeline's pruning evaluation, which holds a module and its adapter. Same outputs as
  :func:`ablated`.

:func:`apply_masks` gives the same outputs as hook ablation by editing the hooked module:

* ``BatchNorm1d/2d/3d`` (CREPE): weight and bias of the channel set to 0, so the BN output is
  ``0 * x_hat + 0 = 0`` for any finite input, in eval and train mode;
* ``Linear`` (transformer fc1 / attention out-proj / heads): the weight row and bias set to 0;
* ``Conv1d/2d/3d``: the output channel's filter and bias set to 0.

Any other hooked module type raises ``NotImplementedError`` (e.g. a whole transformer block,
whose output is a residual sum that no weight row controls).

**SAE latents** (``sae:<layer>``, :mod:`dissect.models.sae`, attached with
:func:`dissect.features.attach` or a run's ``model.features``) are units too: ablating latent
``i`` removes its decoder contribution ``z_i * W_dec[i]`` from the base layer's hooked output
(the SAE's reconstruction error and the other latents stay in). :func:`zeroed` and
:func:`ablated` both do it through :func:`dissect.recording.hooks.frame_hooks` with the same
frame edit (the latents' frames set to 0, lifted onto the base layer by the SAE's decoder), so
concept pruning of latents (:mod:`dissect.pruning.table4`) runs on the same hook path as
``dissect.ablated``. Latents are not weights of the model (which latents fire depends on the
input, TopK), so :func:`apply_masks` refuses them. The base layer must have no activation on
its hooked output (``site.transform`` None: conv, block and head sites; not ``ffn``), or the
move along the decoder directions cannot be made there (``NotImplementedError``, before
anything is hooked).

Masks are ``{layer: bool [U]}`` (True = pruned), saved as JSON (lists of unit indices per layer,
plus unit counts) and as safetensors (one uint8 tensor per layer).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect import artifacts
from dissect.models.base import Site, unwrap
from dissect.recording.hooks import frame_hooks, hooks

Neuron = tuple[str, int]


def group_neurons(neurons: Iterable[Neuron] | Mapping[str, Iterable[int]]
                  ) -> dict[str, list[int]]:
    """``{layer: sorted unique units}`` from ``(layer, unit)`` pairs or a layer -> units map."""
    out: dict[str, set[int]] = {}
    if isinstance(neurons, Mapping):
        for layer, units in neurons.items():
            u = np.asarray(units)
            idx = np.flatnonzero(u) if u.dtype == bool else u.astype(int).ravel()
            out.setdefault(str(layer), set()).update(int(i) for i in idx)
    else:
        for layer, unit in neurons:
            out.setdefault(str(layer), set()).add(int(unit))
    return {k: sorted(v) for k, v in out.items() if v}


def channel_dim(site: Site) -> int:
    """Dimension of the hooked output that indexes units: 1 for conv sites, else -1."""
    return 1 if site.kind == "conv" else -1


def _check_sites(sites: Mapping[str, Site], groups: Mapping[str, list[int]]) -> None:
    for layer, units in groups.items():
        if layer not in sites:
            raise KeyError(f"unknown layer {layer!r}; sites: {', '.join(sites)}")
        bad = [u for u in units if not 0 <= u < sites[layer].units]
        if bad:
            raise IndexError(f"{layer}: units {bad[:5]} out of range 0..{sites[layer].units - 1}")
        _check_transform(sites[layer])
        _check_derived(sites[layer])


def _check_derived(site: Site) -> None:
    """A derived site's units (SAE latents) are removed by moving its base layer's frames along
    the decoder directions, which needs a base without an activation on the hooked output."""
    if site.derived is None:
        return
    base = site.derived.base
    if base.transform is not None:
        raise NotImplementedError(
            f"{site.name}: its base layer {base.name!r} is an activation of the hooked module's "
            f"output ({base.module!r}), so removing a latent's decoder contribution cannot be "
            "made on that output; train the SAE on a layer without an activation (a conv or "
            "block site)")


def _check_transform(site: Site) -> None:
    """Zeroing the hooked output must zero the recorded neuron: ``transform(0) == 0``."""
    if site.transform is None:
        return
    shapes = [(2, site.units), (1, 1, site.units), (1, 14, site.units), (1, 1214, site.units)]
    for shape in shapes:
        try:
            with torch.no_grad():
                y = site.transform(torch.zeros(shape))
        except Exception:  # a transform that needs another shape
            continue
        y = y[0] if isinstance(y, (tuple, list)) else y
        if torch.is_tensor(y) and bool((y == 0).all()):
            return
        raise NotImplementedError(
            f"{site.name}: the site's activation maps 0 to a non-zero value, so zeroing the "
            f"hooked module {site.module!r} does not zero the neuron")
    raise NotImplementedError(f"{site.name}: cannot check that the site's activation maps 0 to 0")


def _zero_channels(x: torch.Tensor, dim: int, units: torch.Tensor) -> torch.Tensor:
    idx = units.to(x.device)
    return x.index_fill(dim if dim >= 0 else x.dim() + dim, idx, 0)


def _frame_zeroers(groups: Mapping[str, list[int]]) -> dict[str, Any]:
    """``{layer: fn(frames, layer)}`` for :func:`~dissect.recording.hooks.frame_hooks` that
    sets the units' frames ``[B, T, U]`` to 0: the edit of :func:`ablated` (through
    ``Model.hooks``) and of :func:`zeroed` at derived sites (SAE latents)."""
    units = {layer: torch.tensor(u, dtype=torch.long) for layer, u in groups.items()}

    def zero(frames: torch.Tensor, layer: str) -> torch.Tensor:
        return _zero_channels(frames, -1, units[layer])

    return {layer: zero for layer in groups}


@contextlib.contextmanager
def zeroed(model: nn.Module, adapter, neurons: Iterable[Neuron] | Mapping[str, Iterable[int]]
           ) -> Iterator[dict[str, list[int]]]:
    """Zero the given neurons' channels of the hooked modules' raw outputs while the block runs
    (along :func:`channel_dim`); the model is untouched afterwards. The pipeline's pruning
    evaluation runs on it (an ``nn.Module`` and its adapter, no :class:`dissect.Model`);
    :func:`ablated` gives the same outputs through ``Model.hooks``.

    Hooks (:func:`dissect.recording.hooks.hooks`, the one hook path) replace each hooked module's
    output by a copy with the units zeroed (the original tensor is never modified in place).
    Units of a derived site (SAE latents ``sae:<layer>``, attached to ``adapter``) are removed
    as :func:`ablated` removes them, through :func:`~dissect.recording.hooks.frame_hooks`: each
    latent's decoder contribution ``z_i * W_dec[i]`` leaves the base layer's hooked output
    (this needs the forward to run through :func:`~dissect.recording.hooks.run_sites`, as the
    pruning evaluation's does). Plain layers' hooks run before the latents' ones on a module
    both hook. The hooks are removed on exit, also when the block raises. Yields the
    ``{layer: units}`` actually ablated.

    Raises:
        KeyError / IndexError: unknown layer or unit (nothing is hooked then).
        NotImplementedError: a site whose activation does not map 0 to 0, or latents over such
            a site.
    """
    sites = adapter.all_sites(model)
    groups = group_neurons(neurons)
    _check_sites(sites, groups)
    plain = {layer: u for layer, u in groups.items() if sites[layer].derived is None}
    derived = {layer: u for layer, u in groups.items() if sites[layer].derived is not None}
    plan = {layer: (channel_dim(sites[layer]), torch.tensor(units, dtype=torch.long))
            for layer, units in plain.items()}

    def zero(output, *, site: str) -> torch.Tensor:
        dim, idx = plan[site]
        return _zero_channels(unwrap(output), dim, idx)

    with contextlib.ExitStack() as stack:
        if plain:
            stack.enter_context(hooks(model, {layer: sites[layer].module for layer in plain},
                                      zero))
        if derived:
            stack.enter_context(frame_hooks(adapter, model, _frame_zeroers(derived)))
        yield groups


@contextlib.contextmanager
def ablated(model, neurons: Iterable[Neuron] | Mapping[str, Iterable[int]]
            ) -> Iterator[dict[str, list[int]]]:
    """Zero ``neurons`` (``(layer, unit)`` pairs or ``{layer: units}``, or bool masks
    ``{layer: [U]}``) of ``model`` (a :class:`dissect.Model`) inside the block; the model is
    untouched afterwards. Runs on ``model.hooks`` (a hook that sets the units' frames to 0,
    which zeroes them in the whole hooked output: the outputs of :func:`zeroed` and of
    :func:`apply_masks`; for SAE latents, their decoder contributions leave the base layer's
    output). Yields ``{layer: units}``.

    Raises:
        KeyError / IndexError: unknown layer or unit (nothing is hooked then).
        NotImplementedError: a site whose activation does not map 0 to 0, or latents over such
            a site.
    """
    sites = model.sites()
    groups = group_neurons(neurons)
    _check_sites(sites, groups)
    with model.hooks(_frame_zeroers(groups)):
        yield groups


@contextlib.contextmanager
def steered(model, scales: Mapping[Neuron, float] | None = None, *,
            direction: Mapping[str, Any] | None = None, alpha: float = 1.0
            ) -> Iterator[list[str]]:
    """Steer neurons of ``model`` (a :class:`dissect.Model`) inside the block, on
    ``model.hooks``; the model is untouched afterwards.

    Args:
        scales: ``{(layer, unit): s}``: the unit's frames times ``s`` (``s = 0`` ablates it,
            exactly as :func:`ablated`; ``s = 2`` doubles each frame's value).
        direction: ``{layer: d}``, ``d`` a vector ``[U]`` (numpy or torch): ``alpha * d`` is
            added to every frame of the layer (before ``scales`` of the same layer).
        alpha: the direction's factor.

    At sites whose frames pool several positions of the module's output (CREPE's conv layers)
    a non-zero edit moves each pooled position by the same amount (see
    :func:`dissect.recording.hooks.unframe`): the frame values are as said.

    Yields the steered layers.

    Raises:
        KeyError / IndexError: unknown layer or unit. ValueError: a direction that is not
            ``[U]`` or not finite, a non-finite scale or alpha.
        NotImplementedError: a non-zero scale or a direction at a site whose neurons are an
            activation of the hooked output (``ffn``): only zeroing is exact there.
    """
    import math

    sites = model.sites()
    scales, direction = dict(scales or {}), dict(direction or {})
    if not math.isfinite(float(alpha)):
        raise ValueError(f"steered(): alpha must be finite, got {alpha!r}")
    by_layer: dict[str, dict[int, float]] = {}
    for (layer, unit), s in scales.items():
        if not math.isfinite(float(s)):
            raise ValueError(f"steered(): scale of {(layer, unit)} must be finite, got {s!r}")
        by_layer.setdefault(str(layer), {})[int(unit)] = float(s)
    _check_sites(sites, {layer: sorted(u) for layer, u in by_layer.items()})
    shift: dict[str, torch.Tensor] = {}
    for layer, d in direction.items():
        if layer not in sites:
            raise KeyError(f"unknown layer {layer!r}; sites: {', '.join(sites)}")
        v = torch.as_tensor(np.asarray(d, dtype=np.float32))
        if tuple(v.shape) != (sites[layer].units,) or not bool(torch.isfinite(v).all()):
            raise ValueError(f"steered(): direction for {layer!r} must be a finite vector "
                             f"[{sites[layer].units}], got shape {list(v.shape)}")
        shift[layer] = float(alpha) * v
    for layer in set(shift) | {k for k, u in by_layer.items() if any(u.values())}:
        if sites[layer].transform is not None:
            raise NotImplementedError(
                f"steered(): layer {layer!r}'s neurons are an activation of the hooked output "
                f"({sites[layer].module!r}): only scale 0 (ablation) is exact there")
    factor = {}
    for layer, units in by_layer.items():
        f = torch.ones(sites[layer].units)
        f[list(units)] = torch.tensor(list(units.values()))
        factor[layer] = f

    def steer(frames: torch.Tensor, layer: str) -> torch.Tensor:
        out = frames
        if layer in shift:
            out = out + shift[layer].to(out.device)
        if layer in factor:
            out = out * factor[layer].to(out.device)
        return out

    layers = list(dict.fromkeys([*shift, *factor]))
    with model.hooks({layer: steer for layer in layers}):
        yield layers


# --------------------------------------------------------------------------- masks


def export_masks(neurons: Iterable[Neuron] | Mapping[str, Iterable[int]],
                 sites: Mapping[str, Site]) -> dict[str, np.ndarray]:
    """``{layer: bool [U]}`` (True = pruned) for the layers that have pruned units."""
    groups = group_neurons(neurons)
    out = {}
    for layer, units in groups.items():
        if layer not in sites:
            raise KeyError(f"unknown layer {layer!r}; sites: {', '.join(sites)}")
        m = np.zeros(sites[layer].units, dtype=bool)
        m[units] = True
        out[layer] = m
    return out


def masks_to_json(masks: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """JSON form: ``{"format": 1, "layers": {layer: {"units": U, "pruned": [indices]}}}``."""
    return {"format": 1, "layers": {
        layer: {"units": int(len(m)), "pruned": [int(i) for i in np.flatnonzero(m)]}
        for layer, m in masks.items()}}


def masks_from_json(obj: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for layer, d in obj["layers"].items():
        m = np.zeros(int(d["units"]), dtype=bool)
        m[list(d["pruned"])] = True
        out[layer] = m
    return out


def save_masks(masks: Mapping[str, np.ndarray], path: str | Path) -> tuple[Path, Path]:
    """Write ``<path>.json`` and ``<path>.safetensors`` atomically; return both paths.

    ``path`` is a stem: ``prune/brass.masks`` -> ``prune/brass.masks.json`` and
    ``prune/brass.masks.safetensors`` (a ``.json``/``.safetensors`` suffix is dropped first).
    """
    from safetensors.numpy import save_file

    base = Path(path)
    if base.suffix in (".json", ".safetensors"):
        base = base.with_suffix("")
    pj, ps = base.parent / f"{base.name}.json", base.parent / f"{base.name}.safetensors"
    artifacts.write_json(pj, masks_to_json(masks))
    with artifacts.atomic_path(ps) as tmp:
        save_file({k: np.ascontiguousarray(v.astype(np.uint8)) for k, v in masks.items()},
                  str(tmp), metadata={"format": "1", "meaning": "1 = unit pruned"})
    return pj, ps


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read masks from a ``.json`` or ``.safetensors`` file written by :func:`save_masks`."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return {k: v.astype(bool) for k, v in load_file(str(path)).items()}
    return masks_from_json(json.loads(path.read_text(encoding="utf-8")))


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def apply_masks(model: nn.Module, adapter, masks: Mapping[str, Any]) -> nn.Module:
    """Permanently zero the masked units by editing weights (in place; returns ``model``).

    See the module docstring for the module types handled; the outputs equal those of
    :func:`ablated` with the same neurons.

    Raises:
        NotImplementedError: the site's hooked module is of another type, its activation
            does not map 0 to 0, or it is a derived site (SAE latents, which are not weights of
            the model: use :func:`ablated` / :func:`zeroed`); checked before anything is edited.
    """
    sites = adapter.all_sites(model)
    groups = group_neurons(masks)
    _check_sites(sites, groups)
    plan = []
    for layer, units in groups.items():
        site = sites[layer]
        if site.derived is not None:
            raise NotImplementedError(
                f"{layer}: latents of an SAE are not weights of the model (which latents fire "
                "depends on the input), so they cannot be pruned by editing weights; use "
                "dissect.ablated() or zeroed() (hooks) instead")
        module = model.get_submodule(site.module)
        if isinstance(module, _BN):
            if not module.affine:
                raise NotImplementedError(f"{layer}: BatchNorm without affine parameters")
        elif isinstance(module, nn.Linear):
            if channel_dim(site) != -1:
                raise NotImplementedError(f"{layer}: Linear module at a conv site")
        elif isinstance(module, _CONV):
            if channel_dim(site) != 1:
                raise NotImplementedError(f"{layer}: conv module at a non-conv site")
        else:
            raise NotImplementedError(
                f"{layer}: cannot zero units of a {type(module).__name__} ({site.module}) by "
                "editing weights; use ablated() (hooks) instead")
        plan.append((module, torch.tensor(units, dtype=torch.long)))
    for module, idx in plan:
        idx = idx.to(module.weight.device)
        module.weight.index_fill_(0, idx, 0.0)
        if module.bias is not None:
            module.bias.index_fill_(0, idx, 0.0)
    return model
