"""Static HTML report of a run (``report/index.html``): overview, per-layer plots, neuron cards
with audio and activation spectrograms, a filter box, and pruning/HEAR results when present."""

from dissect.report.build import build_report
from dissect.report.data import MissingArtifactError

__all__ = ["MissingArtifactError", "build_report"]
