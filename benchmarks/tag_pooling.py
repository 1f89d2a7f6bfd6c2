"""How well YAMNet's clip tags name a labelled folder's classes, per patch pooling.

    python benchmarks/tag_pooling.py [ROOT] [--label audioset]

For each clip of a folder probe set (default: data/free_sounds of scripts/get_free_sounds.sh,
its hand-made ``audioset`` column), the tagger's 0.96-s patch probabilities are pooled over the
clip (``mean``, YAMNet's own clip score; ``max``; ``top3``: the mean of the 3 best patches) and
the pooled top tags are compared with the clip's label:

* top-1 exact: the best tag is the label;
* top-1 in family: the best tag is the label, one of its ontology ancestors or descendants;
* top-3 exact: the label is among the 3 best tags (the tagger captioner keeps 3);
* "Silence" first: clips whose best tag is Silence (a short event in a long clip).

This bounds what tag evidence can say about these classes. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="data/free_sounds", type=Path)
    ap.add_argument("--label", default="audioset")
    args = ap.parse_args()

    from dissect.audio import ClipPolicy, load_audio
    from dissect.description.captioners.tagger import POOLINGS, YamnetTagger, pool
    from dissect.description.ontology import ancestors

    rows = [r for r in csv.DictReader(open(args.root / "metadata.csv", encoding="utf-8"))
            if r.get(args.label)]
    tagger = YamnetTagger()
    names = tagger.class_names
    probs = []
    for r in rows:
        audio = load_audio(args.root / r["filename"], 16000, ClipPolicy(max_seconds=10.0))
        probs.append(tagger.patch_scores(audio))
    labels = [r[args.label] for r in rows]
    print(f"{len(rows)} labelled clips of {args.root} ({len(set(labels))} classes), "
          f"label column {args.label!r}\n")
    print("| pooling | top-1 exact | top-1 in family | top-3 exact | 'Silence' first |")
    print("|---|---|---|---|---|")
    for how in POOLINGS:
        exact = fam = top3 = silence = 0
        for p, lab in zip(probs, labels, strict=True):
            order = np.argsort(-pool(p, how), kind="stable")
            best = names[order[0]]
            exact += best == lab
            fam += best == lab or lab in ancestors(best) or best in ancestors(lab)
            top3 += lab in [names[i] for i in order[:3]]
            silence += best == "Silence"
        n = len(probs)
        print(f"| {how} | {exact / n:.1%} | {fam / n:.1%} | {top3 / n:.1%} | {silence} |")


if __name__ == "__main__":
    main()
