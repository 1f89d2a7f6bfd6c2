""":class:`EnsembleModel`: several HEAR models combined by ``cat`` or ``avg``, a HEAR model itself.

Per-model layer reduction (GURA's ``last`` / ``fusion``) is each member's layer choice
(:class:`dissect.hear.api.EmbeddingModel`); GURA's "Fuse Cat H+w+C" is ``cat`` over members
built with ``layer="fusion"``.

Timestamp embeddings: every member runs on the same audio; the members are put on the common
grid (the timestamps of the member with the smallest hop, or ``reference``) by linear
interpolation in time (:mod:`dissect.ensemble.align`), then combined with
:func:`dissect.ensemble.ops.cat` or :func:`~dissect.ensemble.ops.avg` (documented projection).
Scene embeddings: the same operator applied to the members' own scene embeddings (each the mean
over that member's valid frames; no interpolation needed, and ``cat``/``avg`` are linear, so
this equals the mean over time of the combined frames up to edge effects of the alignment).

``gura_compat=True`` reproduces GURA exactly as described in ``hear-protocol.md`` (comparison
only): members are stretched by frame index onto the reference frame count, every member whose
width is not 1024 is interpolated over its channel axis to 1024, ``cat`` interleaves, and the
scene embedding is the mean over time of the combined timestamp embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.ensemble import ops
from dissect.ensemble.align import align_members

OPS = ("cat", "avg")


class EnsembleModel(nn.Module):
    """Combine HEAR models (anything with ``timestamp_embeddings`` / ``scene_embeddings`` and the
    HEAR attributes, e.g. :class:`~dissect.hear.api.EmbeddingModel`).

    Args:
        members: the models (all at one sample rate).
        op: ``cat`` or ``avg``.
        projection: width matching for ``avg`` (:func:`dissect.ensemble.ops.match_dim`).
        dim: common width for ``avg`` (default: the widest member; 1024 with gura_compat).
        seed: projection seed (member ``m`` uses ``seed + m``).
        gura_compat: reproduce GURA's quirks (module docstring).
        reference: index of the member whose timestamps are the common grid (default: the
            smallest hop, first on ties).
        name: a label.
    """

    def __init__(self, members: Sequence[nn.Module], op: str = "cat", *,
                 projection: str = "orthogonal", dim: int | None = None, seed: int = 0,
                 gura_compat: bool = False, reference: int | None = None,
                 name: str | None = None):
        super().__init__()
        if op not in OPS:
            raise ValueError(f"ensemble op must be one of {OPS}, got {op!r}")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        rates = {int(m.sample_rate) for m in members}
        if len(rates) != 1:
            raise ValueError(f"ensemble members run at different sample rates {sorted(rates)}; "
                             "HEAR feeds one rate")
        self.members = nn.ModuleList(members)
        self.op, self.projection, self.seed = op, projection, int(seed)
        self.gura_compat = bool(gura_compat)
        self.sample_rate = rates.pop()
        hops = [float(m.hop_ms) for m in members]
        self.reference = (min(range(len(hops)), key=lambda i: (hops[i], i))
                          if reference is None else int(reference))
        self.hop_ms = hops[self.reference]
        widths = [int(m.timestamp_embedding_size) for m in members]
        if op == "avg":
            self.dim = ops.avg_dim(widths, self.gura_compat, dim)
            size = self.dim
        else:
            self.dim = None
            size = ops.GURA_DIM * len(widths) if self.gura_compat else sum(widths)
        self.timestamp_embedding_size = int(size)
        self.scene_embedding_size = int(size)
        self.name = name or f"{op}(" + ",".join(getattr(m, "name", "?") for m in members) + ")"

    def combine(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Apply the ensemble operator to members' embeddings (equal leading shapes)."""
        if self.op == "avg":
            return ops.avg(xs, self.dim, self.projection, self.seed, self.gura_compat)
        if self.gura_compat:
            return ops.cat([ops.gura_interp_dim(x) for x in xs], interleave=True)
        return ops.cat(xs)

    def timestamp_embeddings(self, audio: torch.Tensor | np.ndarray
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [m.timestamp_embeddings(audio) for m in self.members]
        embs = [e for e, _ in outs]
        stamps = [t for _, t in outs]
        grid = stamps[self.reference]
        if self.gura_compat:  # GURA's order: channel interpolation, then index stretching
            n, d = embs[self.reference].shape[1], self.dim or ops.GURA_DIM
            aligned = [ops.gura_stretch_time(ops.gura_interp_dim(e, d), n) for e in embs]
        else:
            aligned, grid = align_members(embs, stamps, reference=self.reference)
        return self.combine(aligned).float(), grid.float()

    def scene_embeddings(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        if self.gura_compat:
            return self.timestamp_embeddings(audio)[0].mean(dim=1)
        return self.combine([m.scene_embeddings(audio) for m in self.members]).float()

    def forward(self, audio: torch.Tensor) -> Any:
        return self.timestamp_embeddings(audio)

    def extra_repr(self) -> str:
        return (f"op={self.op!r}, gura_compat={self.gura_compat}, "
                f"dim={self.timestamp_embedding_size}, hop_ms={self.hop_ms}")
