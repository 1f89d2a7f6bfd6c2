"""Map a head's class names onto a probe set's labels and measure the embedding rule.

Prints what :func:`dissect.evaluation.last_layer.map_names` makes of YAMNet's 521 AudioSet classes
against a label vocabulary (ESC-50's 50 categories by default, or the free sounds' categories),
every embedding match with its MiniLM cosine down to ``--floor``, and, for AudioSet -> ESC-50,
the precision of the embedding matches per cosine band against a hand judgement
(:data:`WRONG_ESC50`: the matches judged wrong; every other listed match was judged right).
That measurement is where :data:`~dissect.evaluation.last_layer.MAP_THRESHOLD` comes from.

    .venv/bin/python benchmarks/head_label_mapping.py                   # AudioSet -> ESC-50
    .venv/bin/python benchmarks/head_label_mapping.py --labels free_sounds
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

#: AudioSet class -> ESC-50 category matches (embedding rule, cosine >= 0.65) judged wrong by
#: hand: a broader class (Alarm, Clicking, Door, Water), another sound (Keyboard (musical),
#: Mouse, Crack, Firecracker, Typewriter), another alarm (Car alarm, Fire alarm).
WRONG_ESC50 = {
    ("Alarm", "clock_alarm"), ("Clicking", "mouse_click"), ("Keyboard (musical)",
                                                          "keyboard_typing"),
    ("Mouse", "mouse_click"), ("Crack", "crackling_fire"), ("Car alarm", "clock_alarm"),
    ("Fire alarm", "clock_alarm"), ("Firecracker", "crackling_fire"),
    ("Typewriter", "keyboard_typing"), ("Door", "door_wood_knock"), ("Water", "water_drops"),
}
#: Bands of the precision table (cosine lower edges).
BANDS = (0.85, 0.80, 0.75, 0.70, 0.65)


def _labels(name: str) -> list[str]:
    from dissect.description.concepts import load_concept_set

    if name == "free_sounds":
        root = Path(__file__).resolve().parents[1] / "data" / "free_sounds.csv"
        lines = [ln for ln in root.read_text(encoding="utf-8").splitlines()
                 if ln and not ln.startswith("#")]
        return sorted({r["category"] for r in csv.DictReader(lines)})
    return list(load_concept_set(name).ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", default="audioset", help="concept set of the head's classes")
    ap.add_argument("--labels", default="esc50", help="esc50 | free_sounds | a concept set")
    ap.add_argument("--floor", type=float, default=0.65, help="lowest cosine listed")
    args = ap.parse_args()

    from dissect.description.concepts import load_concept_set
    from dissect.description.embed import default_embedder
    from dissect.evaluation.last_layer import MAP_THRESHOLD, map_names

    classes = list(load_concept_set(args.classes).concepts)
    labels = _labels(args.labels)
    listed = map_names(classes, labels, default_embedder(), threshold=args.floor)
    named = [(c, m) for c, m in zip(classes, listed, strict=True)
             if m is not None and m["how"] != "embedding"]
    emb = sorted(((m["cos"], c, m["label"]) for c, m in zip(classes, listed, strict=True)
                  if m is not None and m["how"] == "embedding"), reverse=True)
    print(f"{len(classes)} classes ({args.classes}) onto {len(labels)} labels ({args.labels})")
    print(f"exact / normalised: {len(named)}")
    for c, m in named:
        print(f"  {m['how']:10} {c} -> {m['label']}")
    judged = args.classes == "audioset" and args.labels == "esc50"
    print(f"embedding (cosine >= {args.floor}; kept at >= {MAP_THRESHOLD}):")
    for cos, c, lab in emb:
        mark = ("wrong" if (c, lab) in WRONG_ESC50 else "right") if judged else ""
        print(f"  {cos:.3f} {c} -> {lab} {mark}")
    if judged:
        print("precision of the embedding matches per band (hand judgement):")
        hi = 1.01
        for lo in BANDS:
            band = [(c, lab) for cos, c, lab in emb if lo <= cos < hi]
            ok = sum((c, lab) not in WRONG_ESC50 for c, lab in band)
            print(f"  [{lo:.2f}, {min(hi, 1.0):.2f}): {ok} / {len(band)} right")
            hi = lo
        kept = [(c, lab) for cos, c, lab in emb if cos >= MAP_THRESHOLD]
        ok = sum(p not in WRONG_ESC50 for p in kept)
        print(f"  >= {MAP_THRESHOLD}: {ok} / {len(kept)} right")


if __name__ == "__main__":
    main()
