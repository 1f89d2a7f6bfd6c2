"""Benchmark closed-set scoring against recording: all units of a model vs a 50-concept set.

Usage:
    python benchmarks/bench_concepts.py --clips 200 800 --concept-set esc50

For each N in ``--clips``, the same N deterministic clips (harmonic tones + noise) are recorded
with CREPE tiny, every default layer, with the dense store on (:func:`dissect.recording.record`,
in this process, ``--threads`` torch threads). Then every unit of every layer is scored against
the concept set (ESC-50: 50 concepts) with each similarity function of
:mod:`dissect.description.similarity` through :func:`dissect.description.concepts.label_neurons`
(similarity matrix + top-5 concepts per unit), as the concepts stage does, on the dense
activations converted to float32. The clip-by-concept matrix ``P [N, 50]`` is a seeded
row-softmax (a DB-like matrix): the scoring cost does not depend on its values, and building the
real DB matrix (caption and concept embeddings) belongs to the caption/embedding cost, not to
scoring. Each scoring time is the median of ``--repeats`` runs. The target: every similarity
under 10% of the recording time. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_record import make_clips  # noqa: E402

from dissect.description.concepts import label_neurons, load_concept_set  # noqa: E402
from dissect.description.similarity import SIMILARITIES  # noqa: E402
from dissect.models import get_adapter  # noqa: E402
from dissect.recording.recorder import record  # noqa: E402


def one_size(n: int, args, adapter, model, sites, cset) -> dict:
    clips = make_clips(n, adapter.sample_rate, args.seconds, seed=n)
    t0 = time.perf_counter()
    res = record(adapter, model, enumerate(clips), sites, k=10, batch_size=args.batch_size,
                 dense_rows=n, progress=False)
    record_s = time.perf_counter() - t0
    U = {name: st.dense.float() for name, st in res.layers.items()}
    g = torch.Generator().manual_seed(0)
    P = torch.softmax(torch.randn(n, len(cset.concepts), generator=g) * 3, dim=1)
    scores = {}
    for sim in SIMILARITIES:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for layer_u in U.values():
                label_neurons(layer_u, P, cset, sim, k=5)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        scores[sim] = {"s": round(med, 4), "fraction_of_record": round(med / record_s, 4)}
    total = sum(v["s"] for v in scores.values())
    row = {"clips": n, "units": sum(s.units for s in sites), "record_s": round(record_s, 3),
           "scoring": scores, "all_five_s": round(total, 4),
           "all_five_fraction_of_record": round(total / record_s, 4),
           "max_fraction": max(v["fraction_of_record"] for v in scores.values())}
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="crepe")
    p.add_argument("--source", default="tiny")
    p.add_argument("--hop-ms", type=float, default=40.0)
    p.add_argument("--clips", type=int, nargs="+", default=[200, 800])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--concept-set", default="esc50")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cset = load_concept_set(args.concept_set)
    adapter = get_adapter(args.model, source=args.source, hop_ms=args.hop_ms)
    model = adapter.load("cpu")
    sites = adapter.resolve_layers(model, None)
    record(adapter, model, enumerate(make_clips(4, adapter.sample_rate, args.seconds)), sites,
           progress=False)  # warm-up
    rows = [one_size(n, args, adapter, model, sites, cset) for n in args.clips]
    print(json.dumps({
        "model": f"{args.model}:{args.source}", "layers": len(sites),
        "concept_set": cset.name, "concepts": len(cset.concepts), "threads": args.threads,
        "seconds_per_clip": args.seconds, "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "sizes": rows,
        "target_fraction": 0.10,
        "meets_target": all(r["max_fraction"] < 0.10 for r in rows),
    }))


if __name__ == "__main__":
    main()
