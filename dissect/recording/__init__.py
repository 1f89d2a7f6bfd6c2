"""Recording: hooks, pooling over valid frames, streaming reducers, artifacts."""

from dissect.recording.hooks import SiteFrames, SiteRun, hooks, run_sites
from dissect.recording.pooling import pool
from dissect.recording.recorder import LayerState, RecordResult, record
from dissect.recording.reducers import LogHistogram, Moments, TopK

__all__ = [
    "LayerState",
    "LogHistogram",
    "Moments",
    "RecordResult",
    "TopK",
    "SiteFrames",
    "SiteRun",
    "hooks",
    "run_sites",
    "pool",
    "record",
]
