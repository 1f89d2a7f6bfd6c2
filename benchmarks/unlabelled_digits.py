"""Descriptions of spoken-digit neurons with the labels hidden: words, words + phonemes, labels.

    python benchmarks/unlabelled_digits.py RUN_DIR OUT_DIR

``RUN_DIR``: a finished ``dissect run recipe=whisper_tiny_unlabelled`` (captions: acoustic
descriptors and the Whisper tiny.en transcript, whose confident words give ``word=`` terms and
their phonemes ``phone=/.../``, ``nucleus=/.../``). The same recording and caption texts are
described three times in memory (``dissect.describe``, the pipeline's own steps), changing only
the evidence terms:

* ``words``: the transcript's words and the acoustic terms (labels hidden, no phonemes: the
  evidence before phonemes);
* ``phonemes``: the same plus the words' phonemes (labels hidden);
* ``labels``: ``words`` plus the clips' label columns as terms (``digit=5``, ``speaker=...``,
  what the ``labels`` captioner adds): the labelled reference.

Each variant is saved to ``OUT_DIR/<variant>`` and scored by ``description_figures.py --label
digit``: among neurons selective for one digit (one-vs-rest AUROC >= 0.85 over all clips), the
share whose shown description names the digit, and the share that names the digit or a phoneme
of its word.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PHONEME_ATTRS = ("phone=", "nucleus=")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--variants", default="words,phonemes,labels")
    args = ap.parse_args()

    import dissect
    from dissect.config import ConceptsConfig, DescribeConfig
    from dissect.description.captioners.base import term
    from dissect.description.captions import captions_by_clip, terms_by_clip

    rec = dissect.Recording.load(args.run_dir)
    texts = captions_by_clip(args.run_dir)
    plain = captions_by_clip(args.run_dir, named=False)
    terms = terms_by_clip(args.run_dir)
    words = {c: [t for t in ts if not t.startswith(PHONEME_ATTRS)] for c, ts in terms.items()}
    labels = {row["id"]: [term(k, v) for k, v in (row.get("labels") or {}).items()]
              for row in rec.clips}
    variants = {"words": words, "phonemes": terms,
                "labels": {c: words.get(c, []) + labels.get(c, []) for c in rec.clip_ids}}
    cfg = DescribeConfig(concepts=ConceptsConfig(concept_set="spoken_digit", keywords=False))
    here = Path(__file__).resolve().parent
    for name in args.variants.split(","):
        caps = dissect.Captions(texts, variants[name], plain)
        desc = dissect.describe(rec, caps, llm="rules", config=cfg, progress=True)
        out = args.out_dir / name
        rec.save(out)
        desc.save(out)
        shutil.copy(args.run_dir / "config.yaml", out / "config.yaml")  # the run's split
        print(f"## {name}", flush=True)
        subprocess.run([sys.executable, str(here / "description_figures.py"), str(out),
                        "--label", "digit", "--examples", "0"], check=True)


if __name__ == "__main__":
    main()
