"""Concept-specific pruning for unlearning (AND Table 4): choose a concept's neurons
(:mod:`~dissect.prune.select`), zero them reversibly or permanently
(:mod:`~dissect.prune.ablate`), and measure what the model forgets
(:mod:`~dissect.prune.unlearn`), with AND's Table 4 chosen on one half of the held-out clips
and reported on the other (:mod:`~dissect.prune.protocol`, :mod:`~dissect.prune.table4`).
Entry points: :func:`prune_table` (several concepts and methods, ``dissect prune``) and
:func:`prune_run` (one concept, with its whole curve)."""

from dissect.prune.ablate import ablated, apply_masks, export_masks, load_masks, save_masks
from dissect.prune.select import (
    Selection,
    random_like,
    select_by_concept,
    select_by_embedding,
    select_by_keyword,
    select_neurons,
)
from dissect.prune.table4 import ConceptSpec, prune_table
from dissect.prune.unlearn import NoHeldOutClips, prune_run, unlearning_report

__all__ = ["ConceptSpec", "NoHeldOutClips", "Selection", "ablated", "apply_masks",
           "export_masks", "load_masks", "prune_run", "prune_table", "random_like",
           "save_masks", "select_by_concept", "select_by_embedding", "select_by_keyword",
           "select_neurons", "unlearning_report"]
