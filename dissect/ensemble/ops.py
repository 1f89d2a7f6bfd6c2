"""Representation operators of the NTU-GURA HEAR 2021 entry, plus documented dimension matching.

Every tensor here is a timestamp embedding ``[B, T, D]`` (or a scene embedding ``[B, D]``; the
operators act on the last axis only).

Layer reducers (within one model):
    :func:`last`: the last hidden state;
    :func:`fusion`: the unweighted mean of all hidden states (GURA's "fusion": nothing learned).

Combiners (across models, after :mod:`dissect.ensemble.align` put them on one time grid):
    :func:`cat`: concatenation along the feature axis (``interleave=True`` gives GURA's order
    ``[a0, b0, c0, a1, ...]``, a fixed permutation of plain concatenation);
    :func:`avg`: element-wise mean, which needs equal dims, so every member is first mapped to
    a common width by :func:`match_dim`.

Dimension matching (:func:`match_dim`, default ``"orthogonal"``):
    ``"orthogonal"``: a fixed random map with orthonormal columns (``D_in <= D_out``: an
    isometric embedding, nothing lost) or rows (``D_in > D_out``: an orthogonal projection),
    drawn from ``torch.Generator().manual_seed(seed)`` by QR of a Gaussian matrix (sign-fixed,
    so it is the same on every platform). A member already at the target width is left as it
    is (identity), so the widest member keeps its own channels.
    ``"pad"``: zero-pad the channel axis to the target width (needs ``D_in <= D_out``).
    Neither ever interpolates across channel indices.

``gura_compat=True`` reproduces GURA's quirks exactly, for comparison only:
    * :func:`gura_interp_dim`: ``F.interpolate(x, size=D_out, mode="linear")`` on ``[B, T, D]``,
      which torch reads as ``(N, C, L)`` and so resamples the *feature* axis: unrelated
      neighbouring neurons are blended (1280 -> 1024 for HuBERT-XL, 2048 -> 1024 for CREPE);
    * :func:`gura_stretch_time`: time alignment by stretching frame *indices* to the reference
      frame count (permute, linear ``F.interpolate`` over time, permute back), ignoring each
      model's timestamps;
    * ``cat(..., interleave=True)``: GURA's ``merge()`` order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

GURA_DIM = 1024  # GURA's common width for avg / interleaved cat
PROJECTIONS = ("orthogonal", "pad")


# --------------------------------------------------------------------------- layer reducers
def last(hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """The last of a model's hidden states (GURA's "last": ``last_hidden_state``)."""
    if not hidden_states:
        raise ValueError("last: no hidden states")
    return hidden_states[-1]


def fusion(hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """GURA's fusion: the unweighted arithmetic mean of all hidden states (equal shapes)."""
    if not hidden_states:
        raise ValueError("fusion: no hidden states")
    shapes = {tuple(h.shape) for h in hidden_states}
    if len(shapes) != 1:
        raise ValueError(f"fusion: hidden states differ in shape {sorted(shapes)}; match their "
                         "widths first (match_dim)")
    out = hidden_states[0].float().clone()
    for h in hidden_states[1:]:
        out += h.float()
    return out / len(hidden_states)


# --------------------------------------------------------------------------- dims
def orthogonal_matrix(d_in: int, d_out: int, seed: int = 0) -> torch.Tensor:
    """A fixed ``[d_in, d_out]`` matrix with orthonormal columns (``d_in >= d_out``) or rows
    (``d_in < d_out``), from ``seed``; ``x @ Q`` maps ``d_in`` channels to ``d_out``."""
    g = torch.Generator().manual_seed(int(seed))
    big, small = max(d_in, d_out), min(d_in, d_out)
    a = torch.randn(big, small, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # q: [big, small], orthonormal columns
    sign = torch.sign(torch.diagonal(r))
    q = q * torch.where(sign == 0, torch.ones_like(sign), sign)[None]  # unique QR
    q = q if d_in >= d_out else q.T
    return q.float()


def match_dim(x: torch.Tensor, d_out: int, method: str = "orthogonal", seed: int = 0
              ) -> torch.Tensor:
    """Map the last axis of ``x`` to ``d_out`` channels (see the module docstring).

    Raises:
        ValueError: unknown method, or ``"pad"`` asked to shrink.
    """
    d_in = int(x.shape[-1])
    if d_in == d_out:
        return x
    if method == "pad":
        if d_in > d_out:
            raise ValueError(f"match_dim: 'pad' cannot shrink {d_in} -> {d_out} channels; "
                             "use 'orthogonal'")
        return F.pad(x, (0, d_out - d_in))
    if method == "orthogonal":
        q = orthogonal_matrix(d_in, d_out, seed).to(device=x.device, dtype=x.dtype)
        return x @ q
    raise ValueError(f"match_dim: unknown method {method!r}; choose one of {PROJECTIONS}")


def gura_interp_dim(x: torch.Tensor, d_out: int = GURA_DIM) -> torch.Tensor:
    """GURA's quirk: linear interpolation over *channel indices* to ``d_out`` channels.

    ``[B, T, D]`` is handed to ``F.interpolate`` as ``(N, C, L)`` = (B, T, D), exactly as GURA
    did; ``[B, D]`` scene vectors get a singleton time axis. For comparison only: it blends
    neighbouring neurons that have no natural order.
    """
    if x.shape[-1] == d_out:
        return x
    squeeze = x.dim() == 2
    y = x[:, None, :] if squeeze else x
    y = F.interpolate(y, size=d_out, mode="linear")
    return y[:, 0] if squeeze else y


def gura_stretch_time(x: torch.Tensor, n_frames: int) -> torch.Tensor:
    """GURA's quirk: stretch ``[B, T, D]`` to ``n_frames`` frames by frame *index* (linear,
    ``align_corners=False``), ignoring the timestamps of either model."""
    if x.shape[1] == n_frames:
        return x
    return F.interpolate(x.transpose(1, 2), size=n_frames, mode="linear").transpose(1, 2)


# --------------------------------------------------------------------------- combiners
def cat(xs: Sequence[torch.Tensor], interleave: bool = False) -> torch.Tensor:
    """Concatenate along the feature axis; ``interleave`` = GURA's ``[a0, b0, a1, b1, ...]``
    (equal widths only)."""
    if not xs:
        raise ValueError("cat: nothing to concatenate")
    if not interleave:
        return torch.cat(list(xs), dim=-1)
    widths = {int(x.shape[-1]) for x in xs}
    if len(widths) != 1:
        raise ValueError(f"cat(interleave=True) needs equal widths, got {sorted(widths)}")
    return torch.stack(list(xs), dim=-1).flatten(-2)


def avg_dim(widths: Sequence[int], gura_compat: bool = False, dim: int | None = None) -> int:
    """The common width :func:`avg` maps to: ``dim``, else 1024 (gura_compat), else the widest."""
    if dim is not None:
        return int(dim)
    return GURA_DIM if gura_compat else max(int(w) for w in widths)


def avg(xs: Sequence[torch.Tensor], dim: int | None = None, projection: str = "orthogonal",
        seed: int = 0, gura_compat: bool = False) -> torch.Tensor:
    """Element-wise mean of members mapped to one width.

    Args:
        xs: member embeddings with equal leading shapes (``[B, T, D_m]`` or ``[B, D_m]``).
        dim: the common width (default: :func:`avg_dim`).
        projection: :func:`match_dim` method; member ``m`` uses seed ``seed + m``.
        gura_compat: use :func:`gura_interp_dim` (channel-axis interpolation) instead.
    """
    if not xs:
        raise ValueError("avg: nothing to average")
    d = avg_dim([x.shape[-1] for x in xs], gura_compat, dim)
    if gura_compat:
        mapped = [gura_interp_dim(x, d) for x in xs]
    else:
        mapped = [match_dim(x, d, projection, seed + m) for m, x in enumerate(xs)]
    return torch.stack(mapped).mean(0)
