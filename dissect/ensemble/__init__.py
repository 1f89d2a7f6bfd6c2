"""Representation ensembles (NTU-GURA HEAR 2021 operators, time alignment, description-guided).

:mod:`~dissect.ensemble.ops` (last / fusion / avg / cat and dimension matching),
:mod:`~dissect.ensemble.align` (time alignment), :mod:`~dissect.ensemble.model`
(:class:`EnsembleModel`, usable through the HEAR API) and :mod:`~dissect.ensemble.guided`
(keep only the units whose descriptions match chosen concepts). Names below import lazily, so
``dissect.hear.api`` can use the operators without a circular import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EnsembleModel": "dissect.ensemble.model",
    "UnitSelection": "dissect.ensemble.guided",
    "select_units": "dissect.ensemble.guided",
    "random_units": "dissect.ensemble.guided",
    "guided_member": "dissect.ensemble.guided",
    "guided_ensemble": "dissect.ensemble.guided",
    "align_to_grid": "dissect.ensemble.align",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dissect.ensemble' has no attribute {name!r}")
