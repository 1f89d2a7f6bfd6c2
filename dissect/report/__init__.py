"""Static HTML report of a run (``report/index.html``): overview, per-layer plots, a searchable,
sortable neuron table whose cards (audio, activation spectrograms) render on demand from
per-layer data shards (``report/data/*.js``), and pruning/HEAR results when present."""

from dissect.report.build import build_report
from dissect.report.data import MissingArtifactError

__all__ = ["MissingArtifactError", "build_report"]
