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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.models.base import Adapter, Batch, Site

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
        frames = adapter.frames(s, output, batch)
        valid = adapter.valid_frames(s, batch, frames.shape[1]).to(frames.device)
        out = SiteFrames(s, frames, valid)
        if on_site is None:
            collected[site] = out
        else:
            on_site(out)

    with hooks(model, {s.name: s.module for s in sites}, read), torch.no_grad():
        logits = adapter.forward(model, batch)
    return SiteRun(batch, logits, collected)
