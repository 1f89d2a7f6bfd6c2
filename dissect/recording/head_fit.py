"""Fit a linear head on a folder probe set's classes for a classifier (``dissect fit-head``).

AND's classifiers were fine-tuned on their probe set (AST on ESC-50); YAMNet's AudioSet head is
not right on the free sounds (docs/real-audio.md). :func:`fit_probe_head` fits the head-only
counterpart: logistic regressions on the model's head input (YAMNet: the 1,024-d embedding,
averaged over a clip's patches), on the clips the dissection keeps (``holdout`` leaves the rest
out, with the same rule and seed as the probe stage's ``probe.holdout``), one unit per class
with at least ``min_clips`` clips (``kind=ovr``, default: each class against every other kept
clip, unlabelled ones included, as YAMNet's own sigmoid head; ``softmax``: one multinomial
regression). The held-out clips are used for the accuracy it reports only.

    dissect fit-head out=data/heads/yamnet_free_sounds.safetensors
    dissect run recipe=yamnet_free_sounds \\
        model.options.head=data/heads/yamnet_free_sounds.safetensors run_dir=runs/yamnet_ft

Writes the head file (:mod:`dissect.models.head`) and ``<out>.json`` with the fit's figures.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dissect.datasets.base import Clip
from dissect.fields import COUNT, POSITIVE, Range, check, option
from dissect.models.base import Adapter
from dissect.models.head import HEAD_KINDS, LinearHead, fit_linear_head, save_head


@dataclass
class FitHeadConfig:
    """The settings of ``dissect fit-head`` (``key=value`` on the command line)."""

    out: str
    """The head file to write (safetensors); <out>.json gets the fit's figures. Required."""
    model: str = "yamnet"
    """A model bundle or adapter with a classifier Linear (yamnet, onnx)."""
    source: str | None = None
    """Its weights; null: the bundle's, else the adapter's default."""
    root: str = "data/free_sounds"
    """The folder probe set (layout folder)."""
    metadata: str = "metadata.csv"
    """Its metadata table, relative to root."""
    label_column: str = "audioset"
    """The metadata column holding each clip's class (empty or missing: unlabelled)."""
    holdout: float = option(0.3, Range(0, 1, high_open=True))
    """As the recipe's probe.holdout and its seed: these clips are left out of the fit and
    give the held-out accuracy only.
    """
    holdout_seed: int = 0
    """Seed of the held-out split (as the recipe's probe.holdout_seed)."""
    min_clips: int = option(5, COUNT)
    """Classes with fewer kept clips get no unit."""
    C: float = option(1.0, POSITIVE)
    """Inverse L2 strength (sklearn's C)."""
    kind: str = option("ovr", HEAD_KINDS)
    """ovr: per class against every other clip (YAMNet's own sigmoid head); softmax: one
    multinomial regression over the classes' clips.
    """

    def __post_init__(self) -> None:
        check(type(self), self)


def head_inputs(adapter: Adapter, module: nn.Module, clips: Sequence[Clip],
                device: torch.device | str | None = None, progress: bool = True) -> np.ndarray:
    """``[N, D]``: the input of the model's classifier Linear (its head layer), averaged over
    each clip's frames (patches), one clip at a time."""
    from dissect.audio import ClipPolicy, load_audio
    from dissect.recording.hooks import run_sites

    head = adapter.head_layer(module)
    if head is None:
        raise ValueError(f"model {adapter.name!r} has no classifier head to fit")
    got: list[torch.Tensor] = []
    hook = module.get_submodule(adapter.sites(module)[head].module).register_forward_pre_hook(
        lambda _m, args: got.append(args[0].detach().reshape(args[0].shape[0], -1)))
    rows = []
    try:
        for clip in tqdm(clips, desc="head inputs", unit="clip", file=sys.stderr,
                         disable=not progress):
            got.clear()
            wave = load_audio(str(clip.path), int(adapter.sample_rate), ClipPolicy()).waveform
            run_sites(adapter, module, [wave], [], device=device)
            rows.append(torch.cat(got).double().mean(0).numpy())
    finally:
        hook.remove()
    return np.stack(rows)


def _load_model(cfg: FitHeadConfig) -> tuple[Adapter, nn.Module, torch.device]:
    """The model as ``dissect.load(model, source, site="conv", device="cpu")`` loads it."""
    from dissect.models.bundles import BUNDLES, config_node
    from dissect.models.load import load_from_config

    if cfg.model in BUNDLES:
        node = config_node(BUNDLES.get(cfg.model))
        node["source"] = node["source"] if cfg.source is None else cfg.source
    else:
        node = {"name": cfg.model, "source": cfg.source}
    node["site"] = "conv"
    return load_from_config(node, device="cpu")


def fit_probe_head(cfg: FitHeadConfig, progress: bool = True) -> tuple[LinearHead, Path]:
    """Fit the head ``cfg`` describes and write it (``cfg.out``, plus ``<out>.json`` with
    :attr:`LinearHead.info`: the fit's figures, ``heldout_clips`` and ``heldout_accuracy``).

    Returns:
        The head and the path of its file.

    Raises:
        ValueError: a model without a head layer, or no class with ``min_clips`` clips.
        FileNotFoundError: no probe set (or metadata table) at ``cfg.root``.
    """
    from dissect.datasets.folder import load_folder

    ps = load_folder(Path(cfg.root).expanduser(), metadata=cfg.metadata,
                     label_columns=[cfg.label_column])
    kept, held = ps.split_holdout(cfg.holdout, cfg.holdout_seed)
    adapter, module, device = _load_model(cfg)
    label = lambda c: c.labels.get(cfg.label_column) or None  # noqa: E731
    x = head_inputs(adapter, module, kept, device, progress)
    head = fit_linear_head(x, [label(c) for c in kept], cfg.min_clips, cfg.C, kind=cfg.kind,
                           info={"model": cfg.model,
                                 "source": cfg.source or adapter.default_source,
                                 "probe": str(cfg.root), "label_column": cfg.label_column,
                                 "holdout": cfg.holdout, "holdout_seed": cfg.holdout_seed,
                                 "fitted_on": "the clips the dissection keeps"})
    test = [c for c in held if label(c) in set(head.classes)]
    xt = head_inputs(adapter, module, test, device, progress) if test else None
    pred = head.logits(xt).argmax(1) if test else np.zeros(0, int)
    acc = (float(np.mean([head.classes[p] == label(c) for p, c in zip(pred, test, strict=True)]))
           if test else float("nan"))
    head.info["heldout_clips"], head.info["heldout_accuracy"] = len(test), acc
    out = save_head(head, cfg.out)
    Path(str(out) + ".json").write_text(json.dumps(head.info, indent=1, sort_keys=True) + "\n")
    return head, out
