"""Put the timestamp embeddings of several models on one common time grid.

Alignment is by *time*: each channel of a member is linearly interpolated between the two member
frames whose centres bracket the target time,

    ``out[g, c] = (1 - w) * emb[i, c] + w * emb[i + 1, c]``,  ``w = (g - t_i) / (t_{i+1} - t_i)``,

for grid time ``g`` with ``t_i <= g <= t_{i+1}`` (member frame-centre times ``t``, in ms). A grid
time before the member's first frame or after its last one takes that edge frame (no
extrapolation). Channels are never mixed: channel ``c`` of the output depends only on channel
``c`` of the input. (GURA instead stretched frame *indices*; that quirk lives in
:func:`dissect.ensemble.ops.gura_stretch_time`.)

The common grid (:func:`common_grid`) is by default the timestamps of the member with the
smallest hop (the finest grid; the first such member on ties), so no member is decimated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def align_to_grid(emb: torch.Tensor, timestamps: torch.Tensor, grid: torch.Tensor
                  ) -> torch.Tensor:
    """Interpolate ``emb`` ``[B, T, D]`` (frame centres ``timestamps`` ``[B, T]`` or ``[T]``, ms,
    increasing) in time onto ``grid`` ``[B, G]`` or ``[G]`` (ms). Returns ``[B, G, D]``."""
    if emb.dim() != 3:
        raise ValueError(f"align_to_grid: emb must be [B, T, D], got {tuple(emb.shape)}")
    b, t, _ = emb.shape
    if t == 0:
        raise ValueError("align_to_grid: no frames to interpolate")
    ts = timestamps.to(device=emb.device, dtype=torch.float64)
    ts = ts.expand(b, t) if ts.dim() == 1 else ts
    g = grid.to(device=emb.device, dtype=torch.float64)
    g = g.expand(b, g.shape[-1]) if g.dim() == 1 else g
    if tuple(ts.shape) != (b, t) or g.shape[0] != b:
        raise ValueError(f"align_to_grid: timestamps {tuple(ts.shape)} / grid {tuple(g.shape)} "
                         f"do not match emb {tuple(emb.shape)}")
    if t > 1 and bool((ts[:, 1:] <= ts[:, :-1]).any()):
        raise ValueError("align_to_grid: timestamps must be strictly increasing")
    right = torch.searchsorted(ts.contiguous(), g.contiguous(), right=False).clamp(0, t - 1)
    left = (right - 1).clamp(min=0)
    t_l, t_r = ts.gather(1, left), ts.gather(1, right)
    span = t_r - t_l
    w = torch.where(span > 0, (g - t_l) / torch.where(span > 0, span, 1.0), 0.0)
    w = torch.where(g >= t_r, 1.0, w.clamp(0.0, 1.0))  # past the last frame: the last frame
    w = torch.where(g <= ts[:, :1], 0.0, w)  # before the first frame: the first frame
    idx = lambda i: i[..., None].expand(-1, -1, emb.shape[2])
    e_l, e_r = emb.gather(1, idx(left)), emb.gather(1, idx(right))
    w = w.to(emb.dtype)[..., None]
    return (1 - w) * e_l + w * e_r


def common_grid(timestamps: Sequence[torch.Tensor], hops_ms: Sequence[float] | None = None,
                reference: int | None = None) -> tuple[int, torch.Tensor]:
    """``(index, grid)``: the reference member and its timestamps.

    Args:
        timestamps: each member's ``[B, T_m]`` frame centres (ms).
        hops_ms: each member's hop; default: measured from ``timestamps``.
        reference: force this member; default: the smallest hop (first on ties).
    """
    if not timestamps:
        raise ValueError("common_grid: no members")
    if reference is None:
        if hops_ms is None:
            hops_ms = [float((ts[0, -1] - ts[0, 0]) / max(ts.shape[1] - 1, 1))
                       if ts.shape[1] > 1 else float("inf") for ts in timestamps]
        reference = min(range(len(timestamps)), key=lambda m: (hops_ms[m], m))
    return reference, timestamps[reference]


def align_members(embs: Sequence[torch.Tensor], timestamps: Sequence[torch.Tensor],
                  hops_ms: Sequence[float] | None = None, reference: int | None = None
                  ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Align every member onto the common grid; returns ``(aligned [B, G, D_m] each, grid)``."""
    ref, grid = common_grid(timestamps, hops_ms, reference)
    out = [e if m == ref else align_to_grid(e, ts, grid)
           for m, (e, ts) in enumerate(zip(embs, timestamps, strict=True))]
    return out, grid
