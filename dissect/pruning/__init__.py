"""Concept-specific pruning for unlearning (AND Table 4): choose a concept's neurons
(:mod:`~dissect.pruning.select`), zero them reversibly or permanently
(:mod:`~dissect.pruning.ablate`), and measure what the model forgets
(:mod:`~dissect.pruning.unlearn`), with AND's Table 4 chosen on one half of the held-out clips
and reported on the other (:mod:`~dissect.pruning.protocol`, :mod:`~dissect.pruning.table4`).
Entry points: :func:`prune_table` (several concepts and methods, ``dissect prune``) and
:func:`prune_run` (one concept, with its whole curve)."""

from dissect.pruning.ablate import (
    ablated,
    apply_masks,
    export_masks,
    load_masks,
    save_masks,
    steered,
    zeroed,
)
from dissect.pruning.select import (
    Selection,
    random_like,
    select_by_concept,
    select_by_embedding,
    select_by_keyword,
    select_neurons,
)
from dissect.pruning.table4 import ConceptSpec, prune_table
from dissect.pruning.unlearn import (
    NoDescriptions,
    NoHeldOutClips,
    prune_run,
    unlearning_report,
)

__all__ = ["ConceptSpec", "NoDescriptions", "NoHeldOutClips", "Selection", "ablated", "apply_masks",
           "export_masks", "load_masks", "prune_run", "prune_table", "random_like",
           "save_masks", "select_by_concept", "select_by_embedding", "select_by_keyword",
           "select_neurons", "steered", "unlearning_report", "zeroed"]
