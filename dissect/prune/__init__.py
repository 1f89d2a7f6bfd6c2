"""Concept-specific pruning for unlearning (AND Table 4): choose a concept's neurons
(:mod:`~dissect.prune.select`), zero them reversibly or permanently
(:mod:`~dissect.prune.ablate`), and measure what the model forgets
(:mod:`~dissect.prune.unlearn`). Entry point: :func:`prune_run`."""

from dissect.prune.ablate import ablated, apply_masks, export_masks, load_masks, save_masks
from dissect.prune.select import (
    Selection,
    random_like,
    select_by_concept,
    select_by_embedding,
    select_by_keyword,
    select_neurons,
)
from dissect.prune.unlearn import prune_run, unlearning_report

__all__ = ["Selection", "ablated", "apply_masks", "export_masks", "load_masks", "prune_run",
           "random_like", "save_masks", "select_by_concept", "select_by_embedding",
           "select_by_keyword", "select_neurons", "unlearning_report"]
