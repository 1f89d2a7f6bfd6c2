"""The one hook path: forward hooks that read and may edit, and :func:`run_sites`.

:func:`hooks` is a context manager (handles removed in ``finally``) that calls
``fn(output, *, site)`` after each forward of the hooked modules. As in TransformerLens'
``HookPoint``, ``fn`` may return a replacement: ``None`` leaves the output as it is, a tensor
replaces it (for a tuple output, its first element). Recording, the report's activation traces,
HEAR embeddings and ablation all go through it.

:func:`run_sites` is the one "run the model and read its sites" loop: prepare waveforms with the
adapter, run its forward under :func:`hooks`, turn each hooked output into frames ``[B, T, U]``
with the valid-frame mask ``[B, T]`` and frame times. It either streams each site's frames to a
callback (the recorder pools them at once, so nothing per frame is kept) or returns them all.

:func:`frame_hooks` is :func:`hooks` in the recorder's layout: ``fn(frames, layer)`` sees a
site's neuron output as frames ``[B, T, U]`` (what :func:`run_sites` reads) and may return new
frames, which are mapped back onto the hooked module's output (:func:`unframe`). It is what
``dissect.Model.hooks``, ``dissect.ablated`` and ``dissect.steered`` run on; the batch it frames
with is the one :func:`run_sites` is running (:func:`current_batch`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.models.base import Adapter, Batch, Site, unwrap

# fn(output, *, site) -> None (read only) or a replacement tensor
HookFn = Callable[..., Any]


def _replace(output: Any, new: Any, site: str) -> Any:
    if new is None:
        return None
    if not torch.is_tensor(new):
        raise TypeError(f"hook for site {site!r} returned {type(new).__name__}; "
                        "return None (read only) or a tensor (replacement)")
    if torch.is_tensor(output):
        return new
    if isinstance(output, tuple) and output and torch.is_tensor(output[0]):
        return (new, *output[1:])
    raise TypeError(f"site {site!r}: cannot replace a module output of type "
                    f"{type(output).__name__}")


@contextlib.contextmanager
def hooks(model: nn.Module, sites: Mapping[str, str], fn: HookFn) -> Iterator[None]:
    """Call ``fn(output, site=name)`` after each forward of the modules named in ``sites``.

    Args:
        model: the network.
        sites: site name -> dotted module name inside ``model``.
        fn: receives the module's raw output and the site name. Returning ``None`` leaves the
            output unchanged; returning a tensor replaces it (the first element of a tuple
            output), so later hooks and the rest of the model see the replacement.

    Raises:
        LookupError: a module name that ``model`` does not have (nothing is hooked then).
        TypeError: (during the forward) ``fn`` returned something other than None or a tensor.
    """
    modules = {}
    for name, dotted in sites.items():
        try:
            modules[name] = model.get_submodule(dotted)
        except AttributeError as exc:
            raise LookupError(f"site {name!r}: model has no module {dotted!r}") from exc
    handles = []
    try:
        for name, module in modules.items():

            def hook(_mod: nn.Module, _inp: Any, output: Any, _name: str = name) -> Any:
                return _replace(output, fn(output, site=_name), _name)

            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class SiteFrames:
    """One site's output on one batch, framed.

    Attributes:
        site: the site.
        frames: float ``[B, T, U]`` (rows of the batch x frames x units), on the model's device.
        valid: bool ``[B, T]``, True for frames computed from real (unpadded) audio.
    """

    site: Site
    frames: torch.Tensor
    valid: torch.Tensor

    @property
    def times_ms(self) -> torch.Tensor:
        """Centre time of each frame in ms from the segment start, float64 ``[T]``."""
        return self.site.frame_times_ms(self.frames.shape[1])


@dataclass
class SiteRun:
    """What :func:`run_sites` returns.

    Attributes:
        batch: the prepared batch (on the model's device).
        logits: the head's logits ``[B, n_classes]`` when the adapter has a head, else None.
        sites: site name -> :class:`SiteFrames` (empty when a callback consumed them).
    """

    batch: Batch
    logits: torch.Tensor | None
    sites: dict[str, SiteFrames] = field(default_factory=dict)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter, else its first buffer, else cpu."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def site_frames(adapter: Adapter, site: Site, output: Any, batch: Batch | None
                ) -> torch.Tensor:
    """A site's frames float ``[B, T, U]`` from its hooked module's output: the adapter's
    framing, then, for a derived site (``site.derived``, e.g. ``sae:<layer>``), its
    ``encode`` of the base site's frames."""
    if site.derived is None:
        return adapter.frames(site, output, batch)
    base = site_frames(adapter, site.derived.base, output, batch)
    return site.derived.encode(base).float()


def site_valid(adapter: Adapter, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
    """Bool ``[B, T]`` valid frames of ``site`` (a derived site's are its base site's)."""
    while site.derived is not None:
        site = site.derived.base
    return adapter.valid_frames(site, batch, n_frames)


def run_sites(
    adapter: Adapter,
    model: nn.Module,
    waves: Sequence[np.ndarray] | Batch,
    sites: Sequence[Site],
    *,
    on_site: Callable[[SiteFrames], None] | None = None,
    device: torch.device | str | None = None,
) -> SiteRun:
    """One forward pass of ``model`` on ``waves`` with ``sites`` read as frames.

    Args:
        adapter: the model's adapter (preprocessing, framing, valid frames).
        model: the loaded model (eval mode).
        waves: mono float32 waveforms ``[n]`` at ``adapter.sample_rate`` (one batch row each),
            or an already prepared :class:`~dissect.models.base.Batch`.
        sites: the sites to read (``Adapter.resolve_layers``); may be empty (logits only).
        on_site: called with each site's :class:`SiteFrames` inside its hook, as soon as the
            module has run (streaming: the frames are not kept). When None they are collected
            into the returned :class:`SiteRun`.
        device: where the model runs (default: the device of its parameters).

    Returns:
        A :class:`SiteRun`. Runs under ``torch.no_grad``; edits made by other active
        :func:`hooks` (e.g. :func:`dissect.pruning.ablate.ablated`) are seen by the sites.
    """
    device = torch.device(device) if device is not None else model_device(model)
    batch = waves if isinstance(waves, Batch) else adapter.prepare(list(waves))
    batch = batch.to(device)
    by_name = {s.name: s for s in sites}
    collected: dict[str, SiteFrames] = {}

    def read(output: Any, *, site: str) -> None:
        s = by_name[site]
        frames = site_frames(adapter, s, output, batch)
        valid = site_valid(adapter, s, batch, frames.shape[1]).to(frames.device)
        out = SiteFrames(s, frames, valid)
        if on_site is None:
            collected[site] = out
        else:
            on_site(out)

    token = _BATCH.set(batch)
    try:
        with hooks(model, {s.name: s.module for s in sites}, read), torch.no_grad():
            logits = adapter.forward(model, batch)
    finally:
        _BATCH.reset(token)
    return SiteRun(batch, logits, collected)


# --------------------------------------------------------------------------- frame-level edits
#: The batch :func:`run_sites` is running (None outside it): :func:`frame_hooks` frames with it.
_BATCH: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("dissect_batch",
                                                                     default=None)

#: fn(frames [B, T, U] float32, layer) -> None (read only) or new frames [B, T, U]
FrameFn = Callable[[torch.Tensor, str], Any]


def current_batch() -> Batch | None:
    """The prepared batch of the :func:`run_sites` call now running, else None."""
    return _BATCH.get()


@contextlib.contextmanager
def frame_hooks(adapter: Adapter, model: nn.Module, fns: Mapping[str, FrameFn]
                ) -> Iterator[None]:
    """Call ``fns[layer](frames, layer)`` after each forward of the layers' hooked modules,
    with the site's neuron output as the recorder frames it: float32 ``[B, T, U]``
    (``adapter.frames``, padding frames included; a copy, which ``fn`` may edit in place);
    return None to leave it, or new frames of the same shape to replace it (mapped back onto
    the module's output by :func:`unframe`).

    Goes through :func:`hooks` (removed on exit, also when the block raises). The forward must
    run through :func:`run_sites` (``dissect.forward``, ``run_with_cache``, ``record`` ...): the
    adapter frames with that call's batch.

    Raises:
        LayerNameError: a layer the adapter does not know (the message lists the valid ones);
            nothing is hooked then.
        RuntimeError / NotImplementedError / ValueError: (during the forward) see
            :func:`unframe`, or a module run outside :func:`run_sites` whose adapter needs the
            batch to frame it.
    """
    sites = {s.name: s for s in adapter.resolve_layers(model, list(fns))}

    def edit(output: Any, *, site: str) -> torch.Tensor | None:
        s, batch = sites[site], current_batch()
        if s.derived is not None:
            return _edit_derived(adapter, s, output, batch, fns[site])
        try:
            old = adapter.frames(s, output, batch)
        except Exception as exc:
            if batch is not None:
                raise
            raise RuntimeError(f"layer {site!r} ran outside dissect's forward, and the "
                               f"{adapter.name} adapter needs the batch to frame it: run the "
                               "model with dissect.forward / Model.run_with_cache / record "
                               "inside the hooks") from exc
        new = fns[site](old.clone(), site)  # a copy: editing it in place is fine
        return None if new is None else unframe(adapter, s, output, batch, old, new)

    with hooks(model, {name: s.module for name, s in sites.items()}, edit):
        yield


def _edit_derived(adapter: Adapter, site: Site, output: Any, batch: Batch | None,
                  fn: FrameFn) -> torch.Tensor | None:
    """:func:`frame_hooks`' edit at a derived site: ``fn`` edits the units (e.g. SAE latents
    ``[B, T, n_latents]``); the edit is lifted onto the base site's frames
    (``site.derived.lift``: for an SAE, ``+ (new - old) @ W_dec``) and those onto the module's
    output by :func:`unframe` (so only bases without an activation take non-zero edits)."""
    base = site.derived.base
    base_old = site_frames(adapter, base, output, batch)
    old = site.derived.encode(base_old).float()
    new = fn(old.clone(), site.name)
    if new is None:
        return None
    if not torch.is_tensor(new) or tuple(new.shape) != tuple(old.shape):
        got = list(new.shape) if torch.is_tensor(new) else type(new).__name__
        raise ValueError(f"hook for layer {site.name!r} returned {got}, want frames of shape "
                         f"{list(old.shape)} (the frames it was given)")
    new = new.to(old.device, torch.float32)
    if not torch.isfinite(new).all():
        raise ValueError(f"hook for layer {site.name!r} returned NaN/Inf frames")
    if torch.equal(new, old):
        return None
    base_new = site.derived.lift(base_old, old, new)
    if base.transform is not None:
        raise NotImplementedError(
            f"layer {site.name!r}: its base layer {base.name!r} is an activation of the hooked "
            f"module's output ({base.module!r}), so an edit of its latents (a move along their "
            "decoder directions) cannot be made on that output; use a base layer without an "
            "activation (e.g. site kind block, or a conv layer)")
    return unframe(adapter, base, output, batch, base_old, base_new)


def unframe(adapter: Adapter, site: Site, output: Any, batch: Batch | None,
            old: torch.Tensor, new: Any) -> torch.Tensor | None:
    """The hooked module's output edited so that the site's frames become ``new``.

    ``old`` (float ``[B, T, U]``) is ``adapter.frames(site, output, batch)``; ``new`` the frames
    wanted. The framing without the site's activation (``site.transform``) is linear in the
    output: a copy, a crop (Whisper's padded tail), the mean of several positions (CREPE's
    positions within a frame, BEATs' frequency patches), rows packed per clip. So:

    * a frame value set to **0** zeroes every output position it is read from, and a unit set to
      0 in every frame of the batch is zeroed in the whole output (positions no frame reads,
      such as Whisper's padded tail, too): the same output as zeroing its channel
      (``dissect.ablated``, pruned weights). Exact also at sites whose neuron is an activation
      of the hooked output (``ffn``: ``act(fc1(x))``) when ``act(0) = 0``.
    * any **other** change ``new - old`` is made with the least change of the output (the
      pseudo-inverse of the framing): each position read by a frame moves by the same amount,
      so the frame's mean becomes exactly the new value. Not possible at sites with an
      activation (refused).
    * edits of frames that read no position (a clip's padding frames) are dropped.

    Returns None when ``new`` equals ``old`` (the output is left as it is), else the edited
    output tensor (the module output's first tensor, in its dtype; the original is not
    modified).

    Raises:
        ValueError: ``new`` is not a tensor of ``old``'s shape, or has NaN/Inf.
        NotImplementedError: a non-zero edit at a site with an activation, or a zero the
            activation does not keep (``act(0) != 0``).
        RuntimeError: the result's frames are not ``new`` (a framing that is not a crop, copy
            or pooling of disjoint positions).
    """
    if not torch.is_tensor(new):
        raise ValueError(f"hook for layer {site.name!r} returned {type(new).__name__}; return "
                         "None or frames [B, T, U] (a tensor)")
    if tuple(new.shape) != tuple(old.shape):
        raise ValueError(f"hook for layer {site.name!r} returned frames of shape "
                         f"{list(new.shape)}, want {list(old.shape)} (the frames it was given)")
    new = new.to(old.device, torch.float32)
    if not torch.isfinite(new).all():
        raise ValueError(f"hook for layer {site.name!r} returned NaN/Inf frames")
    changed = new != old
    if not bool(changed.any()):
        return None
    raw = unwrap(output)
    zero = changed & (new == 0)
    other = changed & ~zero
    if bool(other.any()) and site.transform is not None:
        raise NotImplementedError(
            f"layer {site.name!r}: its neurons are an activation of the hooked module's output "
            f"({site.module!r}), which cannot be set to a value other than 0 from the frames; "
            "only zeroing is exact there")
    adj = _adjoint(adapter, site, raw, batch)
    spread = adj(torch.ones_like(old))  # non-zero at the output positions some frame reads
    gain = _frames_of(adapter, site, spread, batch)  # the diagonal of J J^T, [B, T, U]
    live = gain > 0  # frames that read some position
    out = raw
    if bool(zero.any()):
        kill = adj(zero.float()) != 0
        U = old.shape[-1]
        whole = (new == 0).reshape(-1, U).all(0) & changed.reshape(-1, U).any(0)  # [U]
        if bool(whole.any()):
            axis = _unit_axis(adj, spread, old, raw.shape)
            if axis is not None:
                view = [1] * raw.dim()
                view[axis] = U
                kill = kill | whole.to(raw.device).view(view).expand(raw.shape)
        out = out.masked_fill(kill, 0)
    if bool(other.any()):
        delta = torch.where(other & live, (new - old) / gain.clamp_min(1e-30), 0.0)
        out = out + adj(delta).to(out.dtype)
    got = adapter.frames(site, _like(output, out), batch)
    want = torch.where(live, new, got)
    tol = 64 * torch.finfo(out.dtype if out.is_floating_point() else torch.float32).eps
    if not torch.allclose(got, want, rtol=tol, atol=tol * (1.0 + float(want.abs().max()))):
        bad = (got - want).abs().max()
        if site.transform is not None:
            raise NotImplementedError(
                f"layer {site.name!r}: zeroing the hooked output does not zero its neurons "
                f"(the site's activation maps 0 to a non-zero value; off by {float(bad):.3g})")
        raise RuntimeError(f"layer {site.name!r}: the edited output's frames differ from the "
                           f"hook's by {float(bad):.3g}: the {adapter.name} adapter's framing is "
                           "not a crop, copy or pooling of disjoint positions")
    return out


def _like(output: Any, tensor: torch.Tensor) -> Any:
    """``output`` with its first tensor replaced (for re-framing an edited output)."""
    if isinstance(output, tuple) and output and torch.is_tensor(output[0]):
        return (tensor, *output[1:])
    return tensor


def _frames_of(adapter: Adapter, site: Site, raw: torch.Tensor, batch: Batch | None
               ) -> torch.Tensor:
    """The linear part of the framing (no ``site.transform``) of an output-shaped tensor."""
    plain = dataclasses.replace(site, transform=None)
    with torch.no_grad():
        return adapter.frames(plain, raw, batch)


def _adjoint(adapter: Adapter, site: Site, raw: torch.Tensor, batch: Batch | None
             ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``g [B, T, U] -> J^T g`` (output-shaped, float32): the transpose of the linear framing
    ``J`` (:func:`_frames_of`), by autograd, so no adapter has to spell out its inverse."""
    plain = dataclasses.replace(site, transform=None)
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.zeros(raw.shape, dtype=torch.float32, device=raw.device, requires_grad=True)
        y = adapter.frames(plain, x, batch)

    def adj(g: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            (out,) = torch.autograd.grad(y, x, g.detach().clone().to(y.dtype),
                                         retain_graph=True, allow_unused=True)
        return torch.zeros(raw.shape, device=raw.device) if out is None else out.detach()

    return adj


def _unit_axis(adj: Callable[[torch.Tensor], torch.Tensor], spread: torch.Tensor,
               frames: torch.Tensor, shape: torch.Size) -> int | None:
    """The axis of the module output (``shape``) that indexes the site's units: the one along
    which every position read by a frame of unit ``u`` sits at index ``u`` (``spread``:
    ``adj`` of all-ones frames, non-zero where a frame reads); None when none does."""
    U = frames.shape[-1]
    index = torch.arange(1, U + 1, dtype=torch.float32, device=frames.device).expand(frames.shape)
    reads = spread != 0
    unit = torch.round(adj(index)[reads] / spread[reads])
    for axis, n in enumerate(shape):
        if n != U:
            continue
        view = [1] * len(shape)
        view[axis] = U
        at = torch.arange(1, U + 1, dtype=torch.float32, device=reads.device).view(view)
        if torch.equal(at.expand(shape)[reads], unit):
            return axis
    return None
