"""Reduce a site's frames to one value per (clip, unit), over valid frames only."""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "max")


def pool(
    frames: torch.Tensor, valid: torch.Tensor, how: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pool ``frames`` ``[B, T, U]`` over the frames where ``valid`` ``[B, T]`` is True.

    Args:
        frames: activations, any float dtype.
        valid: bool mask; every row must have at least one True.
        how: ``"mean"`` or ``"max"``.

    Returns:
        ``(values, peak)``: float32 ``[B, U]``; for ``max`` also the int64 ``[B, U]`` frame index
        of the peak (first one on ties), else None.

    Raises:
        ValueError: unknown reduction, mismatched shapes, or a clip with no valid frame.
    """
    if how not in REDUCTIONS:
        raise ValueError(f"unknown reduction {how!r}; choose one of {REDUCTIONS}")
    if frames.dim() != 3 or valid.shape != frames.shape[:2]:
        raise ValueError(f"frames {tuple(frames.shape)} and valid {tuple(valid.shape)} disagree")
    valid = valid.to(frames.device)
    if not bool(valid.any(1).all()):
        raise ValueError("a clip has no valid frame")
    x = frames.float()
    m = valid[:, :, None]
    if how == "mean":
        total = torch.where(m, x, torch.zeros((), device=x.device)).sum(1)
        return total / valid.sum(1, keepdim=True).to(x.dtype), None
    masked = torch.where(m, x, torch.full((), -torch.inf, device=x.device))
    values, peak = masked.max(1)
    return values, peak
