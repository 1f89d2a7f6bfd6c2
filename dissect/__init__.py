"""dissect: explain what the individual neurons of audio models respond to.

The public Python API (:mod:`dissect.api`) is available from the package::

    import dissect
    model = dissect.load("crepe", source="tiny")
    rec = dissect.record(model, dissect.probe_set("synth", n_clips=20), layers=["classifier"])
    desc = dissect.describe(rec, llm="rules")
    with dissect.ablated(model, [("classifier", 200)]):
        ...

``dissect.record``, ``dissect.describe``, ``dissect.evaluate`` and ``dissect.prune`` are both
the library's subpackages (``dissect.record.recorder``, ...) and, when called, the API functions
of the same names (:func:`dissect.api.record`, ...): the package makes those four modules
callable, so ``import dissect.record.store`` and ``dissect.record(model, clips)`` both work.
"""

from __future__ import annotations

import sys
import types

import dissect.describe  # noqa: F401  (made callable below)
import dissect.evaluate  # noqa: F401
import dissect.prune  # noqa: F401
import dissect.record  # noqa: F401  (made callable below)
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
    forward,
    load,
    probe_set,
    run,
)
from dissect.artifacts import RunDirRefused

__version__ = "0.1.0"


def _callable(name: str) -> None:
    """Make the subpackage ``dissect.<name>`` callable as :func:`dissect.api.<name>`."""
    fn = getattr(api, name)

    def __call__(self, *args, **kwargs):
        return fn(*args, **kwargs)

    __call__.__doc__ = fn.__doc__
    mod = sys.modules[f"dissect.{name}"]
    mod.__class__ = type(f"{name}_module", (types.ModuleType,), {"__call__": __call__})


for _name in ("record", "describe", "evaluate", "prune"):
    _callable(_name)

__all__ = [
    "Captions",
    "Description",
    "Descriptions",
    "Model",
    "Recording",
    "RecordingMismatch",
    "RunDirRefused",
    "ablated",
    "caption",
    "describe",
    "evaluate",
    "forward",
    "load",
    "probe_set",
    "prune",
    "record",
    "run",
]
