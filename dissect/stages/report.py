"""Stage ``report``: the static HTML report, with activation overlays from the run's model.

The report layer only renders artifacts; re-running the model for the per-frame overlays is the
record layer's :func:`~dissect.recording.traces.run_traces`, passed in here.
"""

from __future__ import annotations

from pathlib import Path

from dissect.recording.traces import run_traces
from dissect.report import build_report


def write_report(run_dir: Path, report_cfg, progress: bool = True) -> dict[str, str]:
    """Build ``report/index.html``; returns ``{"index": path}`` for the manifest."""
    index = build_report(run_dir, max_cards=report_cfg.max_cards,
                         max_audio_cards=report_cfg.max_audio_cards, progress=progress,
                         traces=run_traces)
    return {"index": str(index)}
