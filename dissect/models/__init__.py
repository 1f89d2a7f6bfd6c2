"""Model adapters: one file per family, all model-specific code lives there."""

from dissect.models.base import (
    Adapter,
    Batch,
    LayerNameError,
    Site,
    WeightsUnavailableError,
    pick_device,
)
from dissect.models.registry import available, get_adapter, register

__all__ = [
    "Adapter",
    "Batch",
    "LayerNameError",
    "Site",
    "WeightsUnavailableError",
    "available",
    "get_adapter",
    "pick_device",
    "register",
]
