"""Representation ensembles (NTU-GURA HEAR 2021 operators, time alignment, description-guided).

:mod:`~dissect.ensemble.ops` (last / fusion / avg / cat and dimension matching),
:mod:`~dissect.ensemble.align` (time alignment), :mod:`~dissect.ensemble.model`
(:class:`EnsembleModel`, usable through the HEAR API) and :mod:`~dissect.ensemble.guided`
(keep only the units whose descriptions match chosen concepts). This package sits below
:mod:`dissect.hear`: the guided HEAR models built from a selection are
:mod:`dissect.hear.guided`.
"""

from dissect.ensemble.align import align_to_grid
from dissect.ensemble.guided import UnitSelection, random_units, select_units
from dissect.ensemble.model import EnsembleModel

__all__ = ["EnsembleModel", "UnitSelection", "align_to_grid", "random_units", "select_units"]
