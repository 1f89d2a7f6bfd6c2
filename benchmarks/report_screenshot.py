"""Screenshot a run's HTML report in headless Chromium (for docs/report.png).

    python benchmarks/report_screenshot.py RUN_DIR [--out docs/report.png] [--section neurons]
        [--rebuild] [--max-audio-cards 12] [--width 1400] [--height 1300]

Builds ``RUN_DIR/report/index.html`` first when it is missing (or with ``--rebuild``). Needs a
Chromium binary (Debian ``chromium``; or ``DISSECT_CHROMIUM``); nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dissect.recording.traces import run_traces
from dissect.report import build_report
from dissect.report.browser import Chromium, find_chromium


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/report.png"))
    ap.add_argument("--section", default="neurons",
                    help="element id to scroll to: overview | layers | neurons | ...")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--max-audio-cards", type=int, default=12)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1300)
    args = ap.parse_args(argv)
    if not find_chromium():
        print("no Chromium binary: apt-get install chromium (or set DISSECT_CHROMIUM)",
              file=sys.stderr)
        return 2
    index = args.run_dir / "report" / "index.html"
    if args.rebuild or not index.is_file():
        index = build_report(args.run_dir, max_audio_cards=args.max_audio_cards, traces=run_traces)
    with Chromium(width=args.width, height=args.height) as b:
        b.goto(index.resolve().as_uri())
        # the neuron table and the first cards are built from the data shards after load
        b.wait_for("window.dissectReport && window.dissectReport.ready")
        b.evaluate(f"(document.getElementById({json.dumps(args.section)}) || document.body)"
                   ".scrollIntoView()")
        b.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))", await_promise=True)
        errors = b.errors()
        path = b.screenshot(args.out)
    for e in errors:
        print(f"console error: {e['text']}", file=sys.stderr)
    print(path)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
