"""Features as well as neurons: sparse-autoencoder latents dissected like neurons.

::

    import dissect, dissect.features
    model = dissect.load("crepe_tiny")
    rec = dissect.record(model, dissect.probe_set("synth", n_clips=40), layers=["conv6"])
    t = dissect.features.train(rec, "conv6", model=model, expansion=4, k=32, out="conv6.sae")
    dissect.features.attach(model, t.path)          # adds the layer "sae:conv6"
    rec2 = dissect.record(model, clips, layers=["sae:conv6"])   # latents are units
    with dissect.ablated(model, [("sae:conv6", 7)]):  # subtracts z_7 * W_dec[7] at conv6
        ...

Training (:mod:`dissect.features.train`) uses EleutherAI sparsify's TopK ``SparseCoder``; the
latents as a site (``sae:<layer>``) are :mod:`dissect.models.sae`, so every model loader gets
them (``model.features=[FILE]`` in a run's config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dissect.features.train import (
    FeaturesTrainConfig,
    Trained,
    fit,
    fvu,
    splice,
    train_run,
    train_sae,
)
from dissect.models.sae import Sae, sae_site

__all__ = ["FeaturesTrainConfig", "Sae", "Trained", "attach", "fit", "fvu", "sae_site",
           "splice", "train", "train_run", "train_sae"]


def attach(model: Any, sae: Sae | str | Path):
    """Add the layer ``sae:<layer>`` (``sae``'s latents; a :class:`Sae` or an SAE file) to
    ``model`` (a :class:`dissect.Model`), so :func:`dissect.record`, ``model.hooks``,
    :func:`dissect.ablated` and :func:`dissect.steered` take it; returns the site.

    Raises:
        LayerNameError: the SAE's layer is not one of the model's (the message lists them).
        ValueError / FileNotFoundError: the SAE file does not fit the layer (width) or is not
            an SAE file (the message names the file).
    """
    from dissect.models.sae import attach as _attach

    return _attach(model.adapter, model.module, sae, device=model.device)


def train(rec: Any, layer: str, *, model: Any = None, out: str | Path | None = None,
          expansion: int = 4, k: int = 32, seed: int = 0, epochs: int = 20,
          batch_frames: int = 1024, lr: float | None = None, auxk_alpha: float = 1 / 32,
          dead_frames: int = 10_000, heldout: float = 0.1, batch_size: int = 8,
          progress: bool = True) -> Trained:
    """Train a TopK SAE on ``layer``'s frames over the clips of ``rec``.

    Args:
        rec: a :class:`dissect.Recording` (its clips: files, or the arrays it holds) or a run
            directory (as ``dissect features train run_dir=...``).
        layer: the layer (a site of the model, not ``sae:...``).
        model: the :class:`dissect.Model` to run (None: loaded from ``rec.model``).
        out: where to save it (safetensors + ``<out>.json``); None keeps it in memory.
        other arguments: see :class:`FeaturesTrainConfig`.

    Returns:
        A :class:`Trained` (``.sae``, ``.path``, ``.info`` with held-out FVU and splice).

    Raises:
        ConfigValueError: a setting out of range (named with its value).
        LayerNameError: an unknown layer (the message lists the valid ones).
    """
    settings = dict(layer=layer, expansion=expansion, k=k, seed=seed, epochs=epochs,
                    batch_frames=batch_frames, lr=lr, auxk_alpha=auxk_alpha,
                    dead_frames=dead_frames, heldout=heldout, batch_size=batch_size,
                    progress=progress)
    if isinstance(rec, (str, Path)):
        return train_run(FeaturesTrainConfig(run_dir=str(rec), out=None if out is None
                                             else str(out), **settings))
    FeaturesTrainConfig(run_dir="-", **settings)  # checks the values
    if model is None:
        from dissect.models.load import load_from_config

        cfg = {**dict(rec.model), "features": []}
        adapter, module, device = load_from_config(cfg)
    else:
        adapter, module, device = model.adapter, model.module, model.device
    from dissect.audio import ClipPolicy, audio_from_array, load_audio

    sr = adapter.sample_rate

    def wave(i: int):
        row = rec.clips[i]
        if row.get("path"):
            return load_audio(row["path"], sr, ClipPolicy()).waveform
        if rec.waves is None or rec.waves[i] is None:
            raise ValueError(f"clip {row['id']}: no file and no waveform in the recording "
                             "(a loaded recording of arrays has no audio)")
        return audio_from_array(rec.waves[i], int(rec.wave_rate), sr, ClipPolicy(),
                                name=row["id"]).waveform

    del settings["progress"]
    return train_sae(adapter, module, [c["id"] for c in rec.clips], wave, device=device,
                     out=out, provenance={"recording": repr(rec)}, progress=progress,
                     **settings)

