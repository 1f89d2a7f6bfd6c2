"""Fit a linear head on the probe set's classes for an ONNX classifier (YAMNet by default).

AND's classifiers were fine-tuned on their probe set (AST on ESC-50); YAMNet's AudioSet head is
not right on the free sounds (docs/real-audio.md). This fits the head-only counterpart:
logistic regressions on the model's head input (YAMNet: the 1,024-d embedding, averaged over a
clip's patches), on the clips the dissection keeps (``probe.holdout`` leaves the rest out, with
the same rule and seed as the probe stage), one unit per class with at least ``--min-clips``
clips (``--kind ovr``, default: each class against every other kept clip, unlabelled ones
included, as YAMNet's own sigmoid head; ``softmax``: one multinomial regression). The
held-out clips are used for the accuracy printed at the end only.

    .venv/bin/python scripts/fit_head.py --out data/heads/yamnet_free_sounds.safetensors
    .venv/bin/dissect run recipe=yamnet_free_sounds \\
        model.options.head=data/heads/yamnet_free_sounds.safetensors run_dir=runs/yamnet_ft

Writes the head file (:mod:`dissect.models.head`) and ``<out>.json`` with the fit's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import dissect
from dissect.models.head import fit_linear_head, save_head


def head_inputs(model, clips) -> np.ndarray:
    """``[N, D]``: the input of the model's classifier Linear, averaged over each clip's frames
    (patches), one clip at a time."""
    ad, net = model.adapter, model.module
    head = ad.sites(net)[ad.head_layer(net)]
    got: list[torch.Tensor] = []
    hook = net.get_submodule(head.module).register_forward_pre_hook(
        lambda _m, args: got.append(args[0].detach().reshape(args[0].shape[0], -1)))
    rows = []
    try:
        for clip in tqdm(clips, desc="head inputs", unit="clip", file=sys.stderr):
            got.clear()
            dissect.forward(model, [str(clip.path)])
            rows.append(torch.cat(got).double().mean(0).numpy())
    finally:
        hook.remove()
    return np.stack(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yamnet", help="an ONNX adapter (yamnet, onnx)")
    ap.add_argument("--source", default=None)
    ap.add_argument("--root", default="data/free_sounds")
    ap.add_argument("--metadata", default="metadata.csv")
    ap.add_argument("--label-column", default="audioset")
    ap.add_argument("--holdout", type=float, default=0.3, help="as the recipe's probe.holdout")
    ap.add_argument("--holdout-seed", type=int, default=0)
    ap.add_argument("--min-clips", type=int, default=5)
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    ap.add_argument("--kind", default="ovr", choices=("ovr", "softmax"),
                    help="ovr: per class against every other clip (YAMNet's own sigmoid head); "
                         "softmax: one multinomial regression over the classes' clips")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    ps = dissect.probe_set("folder", root=a.root, metadata=a.metadata,
                           label_columns=[a.label_column], progress=False)
    kept, held = ps.split_holdout(a.holdout, a.holdout_seed)
    model = dissect.load(a.model, a.source, site="conv", device="cpu")
    label = lambda c: c.labels.get(a.label_column) or None  # noqa: E731
    x = head_inputs(model, kept)
    head = fit_linear_head(x, [label(c) for c in kept], a.min_clips, a.C, kind=a.kind, info={
        "model": a.model, "source": a.source or model.adapter.default_source,
        "probe": str(a.root), "label_column": a.label_column, "holdout": a.holdout,
        "holdout_seed": a.holdout_seed, "fitted_on": "the clips the dissection keeps"})
    test = [c for c in held if label(c) in set(head.classes)]
    xt = head_inputs(model, test) if test else np.zeros((0, x.shape[1]))
    pred = head.logits(xt).argmax(1) if test else np.zeros(0, int)
    acc = float(np.mean([head.classes[p] == label(c) for p, c in zip(pred, test,
                                                                      strict=True)]))
    head.info["heldout_clips"], head.info["heldout_accuracy"] = len(test), acc
    out = save_head(head, a.out)
    Path(str(out) + ".json").write_text(json.dumps(head.info, indent=1, sort_keys=True) + "\n")
    print(f"[fit_head] {a.kind}: {len(head.classes)} classes, {head.info['clips']} clips, "
          f"train accuracy {head.info['train_accuracy']:.3f}, held-out accuracy {acc:.3f} on "
          f"{len(test)} clips -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
