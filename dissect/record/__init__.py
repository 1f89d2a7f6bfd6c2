"""Recording: hooks, pooling over valid frames, streaming reducers, artifacts."""

from dissect.record.hooks import SiteFrames, SiteRun, hooks, run_sites
from dissect.record.pooling import pool
from dissect.record.recorder import LayerState, RecordResult, record
from dissect.record.reducers import LogHistogram, Moments, TopK

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
