"""Recording: hooks, pooling over valid frames, streaming reducers, artifacts."""

from dissect.record.hooks import capture
from dissect.record.pooling import pool
from dissect.record.recorder import LayerState, RecordResult, record
from dissect.record.reducers import LogHistogram, Moments, TopK

__all__ = [
    "LayerState",
    "LogHistogram",
    "Moments",
    "RecordResult",
    "TopK",
    "capture",
    "pool",
    "record",
]
