"""dissect: explain what the individual neurons of audio models respond to.

The public Python API (:mod:`dissect.api`) is available from the package::

    import dissect
    model = dissect.load("crepe_tiny")
    clips = dissect.probe_set("synth", n_clips=20)
    rec = dissect.record(model, clips, layers=["classifier"])
    desc = dissect.describe(rec, llm="rules")
    with dissect.ablated(model, [("classifier", 200)]):   # or model.hooks(fn, layers=[...])
        logits, cache = model.run_with_cache(clips, layers=["conv6"])

``dissect.record``, ``dissect.describe``, ``dissect.evaluate`` and ``dissect.prune`` are plain
functions, one signature per name. The library's subpackages behind those steps are
``dissect.recording``, ``dissect.description``, ``dissect.evaluation`` and ``dissect.pruning``.
"""

from __future__ import annotations

from dissect import api
from dissect.api import (
    Captions,
    Description,
    Descriptions,
    Model,
    Recording,
    RecordingMismatch,
    ablated,
    caption,
    describe,
    evaluate,
    forward,
    load,
    probe_set,
    prune,
    record,
    run,
    steered,
)
from dissect.artifacts import RunDirRefused

__version__ = "0.1.0"

__all__ = [
    "Captions",
    "Description",
    "Descriptions",
    "Model",
    "Recording",
    "RecordingMismatch",
    "RunDirRefused",
    "ablated",
    "api",
    "caption",
    "describe",
    "evaluate",
    "forward",
    "load",
    "probe_set",
    "prune",
    "record",
    "run",
    "steered",
]
