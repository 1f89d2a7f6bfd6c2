"""The adapter ("bundle") protocol: everything model-specific lives in one adapter per family.

An adapter declares its name, sample rate, how to load weights (Hugging Face id or local path),
its preprocessing, its recordable *sites* (module outputs whose channels are neurons), the default
layers, how to find the valid frames of each site, and its classifier head with class names.

The recorder (:mod:`dissect.recording`) only talks to this protocol. Shapes used throughout:
``B`` clips per batch, ``T`` frames of a site, ``U`` units (neurons) of a site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

# Site kinds for transformer blocks (configurable with model.site=...):
#   ffn      - FFN intermediate output after the activation (the default neuron)
#   ffn_pre  - FFN intermediate output before the activation
#   attention - the self-attention block's output projection
#   block    - the whole block's output (residual stream)
#   and      - AND's preset (Audio Network Dissection, ICML 2024): every output unit of the
#              block's Linears AND dissected, each a site of its own, pre-activation (AST:
#              attention output dense, intermediate dense, output dense; BEATs: fc1, fc2), plus
#              the head. Only adapters with ``and_preset = True`` accept it.
# and for other modules:
#   conv     - a conv layer's channels;  output - a classifier head's logits;  module - generic
AND_SITE_KIND = "and"
TRANSFORMER_SITE_KINDS = ("ffn", "ffn_pre", "attention", "block", AND_SITE_KIND)


@dataclass(frozen=True)
class Site:
    """A recordable module output whose channels are neurons.

    Attributes:
        name: the layer name users write (a dotted module name, e.g. ``encoder.layers.3.fc1``).
        module: dotted name of the module that is hooked (usually equal to ``name``).
        units: number of neurons ``U``.
        kind: see ``TRANSFORMER_SITE_KINDS``; ``conv``, ``output`` or ``module`` otherwise.
        transform: applied to the hooked output before framing (e.g. the FFN activation for
            ``ffn``); ``None`` for identity.
        hop_ms: time between consecutive frames of this site, in ms.
        offset_ms: centre time of frame 0, in ms.
        derived: for a site whose units are computed from another site's frames (kind
            ``sae``: a sparse autoencoder's latents, :mod:`dissect.models.sae`), how; None
            for a module's own channels. ``module``, ``hop_ms`` and ``offset_ms`` are then the
            base site's, and ``transform`` is None.
    """

    name: str
    module: str
    units: int
    kind: str
    hop_ms: float
    offset_ms: float = 0.0
    transform: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, compare=False)
    derived: Derived | None = field(default=None, compare=False)

    def frame_times_ms(self, n_frames: int) -> torch.Tensor:
        """Centre time of each of ``n_frames`` frames, in ms, shape ``[T]``."""
        return self.offset_ms + self.hop_ms * torch.arange(n_frames, dtype=torch.float64)


@dataclass(frozen=True)
class Derived:
    """Units computed from a base site's frames, model-agnostically (a sparse autoencoder's
    latents). The hook path (:mod:`dissect.recording.hooks`) frames the base site, then
    ``encode``s; an edit of the units is ``lift``-ed to an edit of the base site's frames.

    Attributes:
        base: the site whose frames ``[B, T, D]`` the units are computed from.
        encode: base frames float ``[..., D]`` -> units float ``[..., U]``.
        lift: ``(base frames [B, T, D], old units [B, T, U], new units [B, T, U])`` -> the
            base frames ``[B, T, D]`` that carry the edit (for an SAE: the base frames plus
            ``(new - old) @ W_dec``, so zeroing a latent removes exactly its decoder
            contribution).
    """

    base: Site
    encode: Callable[[torch.Tensor], torch.Tensor]
    lift: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Batch:
    """A preprocessed batch of clips.

    Attributes:
        inputs: keyword arguments for the adapter's forward (tensors).
        lengths: valid samples per clip at the adapter's sample rate, int64 ``[B]``.
        extra: adapter-private bookkeeping (e.g. frames per clip).
    """

    inputs: dict[str, torch.Tensor]
    lengths: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.lengths.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in self.inputs.items()}
        return Batch(moved, self.lengths, self.extra)


@dataclass(frozen=True)
class PitchHead:
    """A classifier head whose outputs are pitch bins (multi-label, sigmoid scores).

    Attributes:
        bin_hz: centre frequency in Hz of each output, float64 ``[n_classes]``.
        note_name: Hz -> the nearest note's name (``440.0 -> "A4"``).
    """

    bin_hz: np.ndarray
    note_name: Callable[[float], str]


class WeightsUnavailableError(RuntimeError):
    """Weights could not be loaded; the message names the id and how to pass a local path."""


class LayerNameError(ValueError):
    """A requested layer is not a recordable site; the message lists the valid names."""


def unwrap(output: Any) -> torch.Tensor:
    """The tensor in a module output (first element of a tuple/list, ``last_hidden_state``)."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        return output[0]
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    raise TypeError(f"cannot find a tensor in module output of type {type(output).__name__}")


class Adapter:
    """Base class of model adapters. Subclasses set the class attributes and override hooks.

    Class attributes:
        name: registry name.
        sample_rate: Hz the model consumes.
        default_source: Hugging Face id (or asset name) used when no source is given.
        padding_safe: whether zero-padding a clip inside a batch leaves its valid frames
            unchanged. When False the recorder batches only clips of equal length.
        has_hidden_states: a Hugging Face encoder whose :meth:`hidden_states` returns every
            layer's output (HEAR's ``last`` / ``fusion`` / ``hidden_states.K`` layers).
        and_preset: the adapter implements site kind ``and`` (AND's neurons); any other
            adapter refuses ``site_kind="and"`` when constructed.
    """

    name: ClassVar[str] = ""
    sample_rate: ClassVar[int] = 16000
    default_source: ClassVar[str | None] = None
    padding_safe: ClassVar[bool] = True
    has_hidden_states: ClassVar[bool] = False
    and_preset: ClassVar[bool] = False

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options: Any):
        if site_kind == AND_SITE_KIND and not self.and_preset:
            others = ", ".join(k for k in TRANSFORMER_SITE_KINDS if k != AND_SITE_KIND)
            raise ValueError(
                f"{self.name or type(self).__name__}: site kind 'and' (AND's every-Linear "
                f"preset) is implemented only for the ast and beats adapters. Valid site kinds "
                f"for transformer adapters: {others}; adapters without transformer blocks "
                f"(crepe, yamnet, generic, ...) record conv channels / named modules whatever "
                f"model.site says."
            )
        self.source = source or self.default_source
        self.site_kind = site_kind
        self.options = options

    # ----------------------------------------------------------------- loading
    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        """Load the model (eval mode, on ``device``). Raises WeightsUnavailableError."""
        raise NotImplementedError

    # ----------------------------------------------------------------- sites
    def sites(self, model: nn.Module) -> dict[str, Site]:
        """Every recordable site of ``model`` for this adapter's ``site_kind``, by name."""
        raise NotImplementedError

    def default_layers(self, model: nn.Module) -> list[str]:
        """Layer names recorded when the user names none (default: every site)."""
        return list(self.sites(model))

    @property
    def derived_sites(self) -> dict[str, Site]:
        """Sites added to this adapter instance (:meth:`add_site`; e.g. ``sae:<layer>``), by
        name. They are valid layers (:meth:`all_sites`, :meth:`resolve_layers`) and are
        recorded by default after :meth:`default_layers`."""
        return self.__dict__.setdefault("_derived_sites", {})

    def add_site(self, site: Site) -> Site:
        """Make ``site`` (one with ``derived`` set) a valid layer of this adapter instance.

        Raises:
            ValueError: a site without ``derived``, or one named as a module's own site.
        """
        if site.derived is None:
            raise ValueError(f"add_site({site.name!r}): only derived sites (e.g. sae:<layer>) "
                             "can be added; a module's own sites come from the adapter")
        self.derived_sites[site.name] = site
        return site

    def all_sites(self, model: nn.Module) -> dict[str, Site]:
        """:meth:`sites` plus the :attr:`derived_sites`."""
        return {**self.sites(model), **self.derived_sites}

    def resolve_layers(self, model: nn.Module, layers: Sequence[str] | None) -> list[Site]:
        """Validate ``layers`` up front; raise LayerNameError listing the valid names."""
        available = self.all_sites(model)
        names = (list(layers) if layers
                 else [*self.default_layers(model), *self.derived_sites])
        bad = [n for n in names if n not in available]
        if bad:
            raise LayerNameError(
                f"{self.name}: unknown layer(s) {bad}. Valid layers for site kind "
                f"{self.site_kind!r}: {', '.join(available)}"
            )
        return [available[n] for n in names]

    # ----------------------------------------------------------------- running
    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """Turn mono float32 waveforms at ``sample_rate`` into a model batch."""
        raise NotImplementedError

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        """Run the model; return the head's logits ``[B, n_classes]`` when there is a head."""
        raise NotImplementedError

    def frames(self, site: Site, output: Any, batch: Batch) -> torch.Tensor:
        """A hooked module output as float ``[B, T, U]`` (frames x units)."""
        x = unwrap(output)
        if site.transform is not None:
            x = site.transform(x)
        if x.dim() == 2:  # [B, U]: one frame per clip
            x = x[:, None, :]
        return x.float()

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        """Bool ``[B, T]``: True for frames computed from real (unpadded) audio."""
        raise NotImplementedError

    # ----------------------------------------------------------------- head
    def class_names(self, model: nn.Module) -> list[str] | None:
        """Names of the classifier head's outputs, or None when the model has no head."""
        return None

    def head_layer(self, model: nn.Module) -> str | None:
        """The site name of the classifier head, or None."""
        return None

    def pitch_head(self, model: nn.Module) -> PitchHead | None:
        """The head as pitch bins (scored per clip against its f0), or None for a class head."""
        return None

    # ----------------------------------------------------------------- hidden states
    def hidden_states(self, model: nn.Module, batch: Batch) -> list[torch.Tensor]:
        """Every hidden state of a Hugging Face encoder, each ``[B, T, D]`` (embeddings first).

        Raises:
            NotImplementedError: the model is not an encoder with ``output_hidden_states``.
        """
        out = model(**batch.inputs, output_hidden_states=True)
        if getattr(out, "hidden_states", None) is None:
            raise NotImplementedError(f"{self.name}: the model returns no hidden states")
        return list(out.hidden_states)


def unpack_frames(x: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Rows of clips packed one after another (``x [sum(counts), U]``, clip ``b`` owning
    ``counts[b]`` consecutive rows) as a zero-padded ``[B, max(counts), U]``."""
    out = x.new_zeros(len(counts), max(counts), x.shape[1])
    for b, chunk in enumerate(x.split(list(counts))):
        out[b, : len(chunk)] = chunk
    return out


def frames_from_lengths(n_valid: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Bool mask ``[B, T]`` with the first ``n_valid[b]`` frames True."""
    n_valid = n_valid.to(torch.long).clamp(min=1, max=n_frames)
    return torch.arange(n_frames)[None, :] < n_valid[:, None]


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else cuda when available, else cpu. Never hard-coded."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
