"""Figures of docs/descriptions.md from a finished run directory.

    python benchmarks/description_figures.py RUN_DIR [--label digit] [--examples 5]

Prints, for the run's shown descriptions (``explanations.jsonl``):

* CREPE runs (a ``classifier`` layer of 360 pitch bins): the fraction of all 360 bins whose
  shown text names a note within a semitone of the bin's centre frequency, naming at most three
  notes;
* ``--label KEY`` (e.g. ``digit``): among neurons whose best one-vs-rest AUROC for a value of
  that label (over all clips) is >= 0.85, the fraction whose shown text names that value (and
  at most one other value of the label);
* ``--label audioset --ontology``: the label values are AudioSet class names (the free sounds'
  hand-made ``audioset`` column); the shown text names the class, or names its direct parent
  in the AudioSet ontology (both counted, and reported apart);
* ``--min-clips N``: only label values with at least N clips count (a value with one clip has
  a one-vs-rest AUROC of 1.0 by chance for some neuron);
* over the same selective neurons (or, without ``--label``, neurons whose strongest evidence
  term has AUROC >= 0.85), the mean test-split detection AUROC of the shown description and of
  AND's module-B summary, per layer;
* how often the LLM phrasing was rejected, and example descriptions.

``--text and`` scores AND's module-B summaries instead of the shown descriptions (the naming
figures "before": those summaries were what ``descriptions.csv`` showed).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

NOTE = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def note_midi(name: str) -> int:
    m = re.fullmatch(r"([A-G]#?)(-?\d)", name)
    return NOTE.index(m.group(1)) + 12 * (int(m.group(2)) + 1)


def crepe_bins(ex: list[dict]) -> tuple[int, int]:
    ok = tot = 0
    for r in ex:
        if r["layer"] != "classifier":
            continue
        tot += 1
        hz = 10 * 2 ** ((1997.3794084376191 + 20 * r["unit"]) / 1200)
        target = 69 + 12 * math.log2(hz / 440)
        notes = set(re.findall(r"(?<![\w#])([A-G]#?-?\d)(?![\w#])", r["description"]))
        ok += bool(notes) and len(notes) <= 3 and any(abs(note_midi(n) - target) <= 1.0
                                                      for n in notes)
    return ok, tot


def names_value(text: str, value: str) -> bool:
    forms = {value.lower()}
    if value.isdigit() and int(value) < 10:
        forms.add(WORDS[int(value)])
    return any(re.search(rf"(?<![\w#]){re.escape(f)}(?![\w#])", text.lower()) for f in forms)


def names_phoneme(text: str, value: str) -> bool:
    """The text names a phone of the digit's word (``/aɪ/`` for 5: five), as the phoneme
    evidence terms render them (``phone /aɪ/``)."""
    from dissect.description.phonemes import phones

    word = WORDS[int(value)] if value.isdigit() and int(value) < 10 else value
    return any(f"/{p}/" in text for p in phones(word)[0])


def selective_by_label(run: Path, key: str, thr: float = 0.85, min_clips: int = 1
                       ) -> dict[tuple[str, int], str]:
    from safetensors.numpy import load_file
    from sklearn.metrics import roc_auc_score

    clips = read_jsonl(run / "clips.jsonl")
    labels = np.array([str((c.get("labels") or {}).get(key)) for c in clips])
    counts = Counter(labels)
    values = sorted(v for v in set(labels) - {"None", ""} if counts[v] >= min_clips)
    out = {}
    for f in sorted((run / "activations").glob("*.safetensors")):
        A = load_file(str(f))["values"].astype(np.float64)
        layer = f.stem
        best = np.full(A.shape[1], -1.0)
        arg = np.empty(A.shape[1], dtype=object)
        for v in values:
            y = labels == v
            if y.all() or not y.any():
                continue
            for u in range(A.shape[1]):
                a = roc_auc_score(y, A[:, u])
                if a > best[u]:
                    best[u], arg[u] = a, v
        for u in np.flatnonzero(best >= thr):
            out[(layer, int(u))] = arg[u]
    return out


def ontology_naming(by: dict, sel: dict[tuple[str, int], str], key: str) -> None:
    """Among neurons selective for one AudioSet class: the share whose shown text names the
    class, and the share that names the class or its direct ontology parent."""
    from dissect.description.ontology import ancestors

    exact = parent = 0
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for k, v in sel.items():
        text = by[k]["description"]
        e = names_value(text, v)
        p = e or any(names_value(text, a) for a in ancestors(v, levels=1))
        exact += e
        parent += p
        per[v][0] += 1
        per[v][1] += e
        per[v][2] += p
    n = max(1, len(sel))
    print(f"selective for one {key} (one-vs-rest AUROC >= 0.85): {len(sel)} neurons; shown text "
          f"names it: {exact}/{len(sel)} = {exact / n:.1%}; names it or its ontology parent: "
          f"{parent}/{len(sel)} = {parent / n:.1%}")
    for v, (m, e, p) in sorted(per.items(), key=lambda x: -x[1][0]):
        print(f"  {v:24s} selective {m:4d}  names it {e:4d}  or its parent {p:4d}")


def oracle(run: Path, key: str, sel: dict[tuple[str, int], str]) -> None:
    """The true label value as the description (a 0/1 prediction), scored on the test split:
    what a one-label description can reach under each metric."""
    import yaml
    from safetensors.numpy import load_file

    from dissect.artifacts import config_setting
    from dissect.explain.scoring import score_prediction
    from dissect.explain.splits import assign_splits, split_keys

    clips = read_jsonl(run / "clips.jsonl")
    cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    splits = config_setting(cfg, "explain", "splits", (0.6, 0.2, 0.2))
    seed = int(config_setting(cfg, "explain", "split_seed", 0))
    # the run's own split (stratified and grouped, as the explain stage made it)
    test = assign_splits([c["id"] for c in clips], tuple(splits), seed,
                         *split_keys(clips)) == "test"
    labels = np.array([str((c.get("labels") or {}).get(key)) for c in clips])[test]
    got = defaultdict(list)
    for f in sorted((run / "activations").glob("*.safetensors")):
        A = load_file(str(f))["values"].astype(np.float64)[test]
        for (layer, u), v in sel.items():
            if layer == f.stem:
                sc = score_prediction((labels == v).astype(float), A[:, u])
                for m in ("detection", "detection_top"):
                    got[m].append(0.5 if sc[m] is None else sc[m])
    print(f"the true {key} as the description (test split, all its clips): detection "
          f"{np.mean(got['detection']):.3f}, detection_top {np.mean(got['detection_top']):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--label", default=None)
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--ontology", action="store_true",
                    help="label values are AudioSet classes: naming the direct parent counts")
    ap.add_argument("--min-clips", type=int, default=1)
    ap.add_argument("--text", choices=("shown", "and"), default="shown",
                    help="score the shown descriptions, or AND's module-B summaries (the text "
                         "dissect showed before the explain stage)")
    args = ap.parse_args()
    run = args.run_dir
    ex = read_jsonl(run / "explanations.jsonl")
    if args.text == "and":
        for r in ex:
            c = next((c for c in r["candidates"] if c["kind"] == "and"), None)
            r["description"] = c["text"] if c else ""
    ev = {(r["layer"], r["unit"]): r for r in read_jsonl(run / "evidence.jsonl")}
    by = {(r["layer"], r["unit"]): r for r in ex}
    print(f"run: {run}  neurons: {len(ex)}")
    print("shown kinds:", dict(Counter(r["kind"] for r in ex)))
    ok, tot = crepe_bins(ex)
    if tot:
        print(f"CREPE classifier bins named with the right note (within a semitone, <= 3 notes): "
              f"{ok}/{tot} = {ok / tot:.1%}")
    if args.label and args.ontology:
        sel = selective_by_label(run, args.label, min_clips=args.min_clips)
        ontology_naming(by, sel, args.label)
    elif args.label:
        sel = selective_by_label(run, args.label, min_clips=args.min_clips)
        values = {str((c.get("labels") or {}).get(args.label))
                  for c in read_jsonl(run / "clips.jsonl")} - {"None"}
        hit = phon = 0
        for key, v in sel.items():
            text = by[key]["description"]
            others = [w for w in values if w != v and names_value(text, w)]
            named = names_value(text, v) and len(others) <= 1
            hit += named
            phon += named or names_phoneme(text, v)
        print(f"selective for one {args.label} (one-vs-rest AUROC >= 0.85): {len(sel)} neurons; "
              f"shown text names it: {hit}/{len(sel)} = {hit / max(1, len(sel)):.1%}; "
              f"names it or a phoneme of it: {phon}/{len(sel)} = {phon / max(1, len(sel)):.1%}")
    else:
        sel = {k: None for k, r in ev.items()
               if r["evidence"] and r["evidence"][0]["auroc"] >= 0.85}
        print(f"selective (strongest evidence term AUROC >= 0.85): {len(sel)} neurons")
    def test_score(scores, metric):
        v = ((scores or {}).get("test") or {}).get(metric)
        return 0.5 if v is None else v

    for metric, what in (("detection", "detection AUROC (concordance: the activation separating "
                          "the clips the text matches)"),
                         ("detection_top", "detection_top AUROC (the prediction against the "
                          "activation's top 10 %)")):
        shown, andd = defaultdict(list), defaultdict(list)
        for key in sel:
            r = by[key]
            shown[key[0]].append(test_score({"test": r.get("test")}, metric))
            a = next((c for c in r["candidates"] if c["kind"] == "and"), None)
            andd[key[0]].append(test_score((a or {}).get("scores"), metric))
        print(f"mean test {what} over selective neurons (no clear concept / unscorable = 0.5):")
        allv, alla = [], []
        for layer in shown:
            allv += shown[layer]
            alla += andd[layer]
            print(f"  {layer:28s} n={len(shown[layer]):5d}  shown {np.mean(shown[layer]):.3f}  "
                  f"AND summary {np.mean(andd[layer]):.3f}")
        if allv:
            print(f"  {'all':28s} n={len(allv):5d}  shown {np.mean(allv):.3f}  "
                  f"AND summary {np.mean(alla):.3f}")
    if args.label and sel:
        oracle(run, args.label, sel)
    llm = [c for r in ex for c in r["candidates"] if c["kind"] == "llm"]
    rej = [c for c in llm if c["note"].startswith("rejected")]
    print(f"LLM phrasings: {len(llm)}, rejected by the check: {len(rej)}")
    for c in rej[: args.examples]:
        print(f"  rejected: {c['text']!r} ({c['note']})")
    for c in [c for c in llm if not c["note"].startswith("rejected")][: args.examples]:
        print(f"  accepted: {c['text']!r}")
    good = sorted((r for r in ex if r["kind"] != "none" and r["test"].get("detection")),
                  key=lambda r: -r["test"]["detection"])
    print("best shown (test detection):")
    for r in good[: args.examples]:
        print(f"  {r['layer']}:{r['unit']} [{r['kind']}] {r['description'][:110]!r} "
              f"{r['test']['detection']:.2f}")
    print("worst shown:")
    for r in good[::-1][: args.examples]:
        print(f"  {r['layer']}:{r['unit']} [{r['kind']}] {r['description'][:110]!r} "
              f"{r['test']['detection']:.2f}")


if __name__ == "__main__":
    main()
