"""Scores for neuron descriptions: last-layer accuracy (AND Table 2), activation-concept
agreement and detection on held-out clips, and AND's layer statistics. Entry point:
:func:`evaluate_run` (writes ``scores.json``)."""

from dissect.evaluation.agreement import agreement_metrics, holdout_mask
from dissect.evaluation.detection import detection_auroc
from dissect.evaluation.last_layer import last_layer_accuracy
from dissect.evaluation.layer_stats import interpretable_fraction
from dissect.evaluation.scores import evaluate_run

__all__ = ["agreement_metrics", "detection_auroc", "evaluate_run", "holdout_mask",
           "interpretable_fraction", "last_layer_accuracy"]
