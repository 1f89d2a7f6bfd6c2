"""Train a TopK sparse autoencoder on a recorded layer's frames, and measure it.

The SAE is EleutherAI sparsify's ``SparseCoder`` (TopK; decoder rows kept at unit norm, the
gradient parallel to them removed; dead latents revived by its AuxK loss). sparsify's own
``Trainer`` drives a Hugging Face language model over token batches, so it is not used: the loop
here (:func:`fit`) reproduces its ``loss_fn="fvu"`` step on audio frames (``b_dec`` set to the
first batch's mean; per step: decoder normalised, ``dead_mask`` = latents that have not fired
for more than ``dead_frames`` frames, loss ``fvu + auxk_alpha * auxk_loss``, parallel gradient
removed, Adam step, fired latents' counters reset), without its 1000-step learning-rate warmup
(our runs have a few hundred steps) and with its Adam learning-rate rule
``2e-4 / sqrt(n_latents / 2**14)`` as the default.

Frames are streamed: the probe clips go through the model batch by batch on the one hook path
(:func:`~dissect.recording.hooks.run_sites`); each batch's *valid* frames of the layer are
appended to a float32 spool file on disk (:class:`FrameSpool`), so memory holds one batch of
the model and one minibatch of frames, never every frame. Clips are split (seeded) into
training clips and held-out clips; the reported figures (:func:`measure`) are on the held-out
clips only:

* ``fvu``: fraction of variance unexplained, ``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``
  over held-out frames (``mean`` over those frames);
* the splice (the layer's frames replaced by their reconstruction through ``Model.hooks``'
  path, :func:`~dissect.recording.hooks.frame_hooks`): for a model with a head, the logits'
  mean squared difference and top-1 agreement per clip; for every model, the mean cosine
  between the next site's frames with and without the splice (``next_layer``: the first site
  after the layer, in the adapter's order, hooked at another module; the input of the layer
  after it).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.fields import COUNT, COUNT_OR_NULL, Range, check, option
from dissect.models.base import Adapter, Site
from dissect.models.sae import SAE_PREFIX, Sae
from dissect.recording.hooks import SiteFrames, frame_hooks, run_sites
from dissect.recording.recorder import _batches

#: The library the SAE comes from (its version goes into each SAE's provenance).
LIBRARY = "eai-sparsify"


@dataclass
class FeaturesTrainConfig:
    """The settings of ``dissect features train`` (``key=value`` on the command line)."""

    run_dir: str = "???"
    """A run directory with clips.jsonl and config.yaml (its model and audio sections are
    used). Required."""
    layer: str = "???"
    """The layer (site name) whose frames the SAE is trained on, e.g. conv6. Required."""
    out: str | None = None
    """The SAE file to write (safetensors; <out>.json gets the config, provenance and
    figures); null: <run_dir>/features/<layer>.safetensors."""
    expansion: int = option(4, COUNT)
    """Latents per input unit: n_latents = expansion x the layer's width."""
    k: int = option(32, COUNT)
    """Latents kept per frame (TopK)."""
    seed: int = 0
    """Seed of the initialisation, the held-out split and the frame order."""
    epochs: int = option(20, COUNT)
    """Passes over the training frames."""
    batch_frames: int = option(1024, COUNT)
    """Frames per optimisation step."""
    lr: float | None = option(None, Range(0, low_open=True, none_ok=True))
    """Adam's learning rate; null: sparsify's rule 2e-4 / sqrt(n_latents / 2**14)."""
    auxk_alpha: float = option(1 / 32, Range(0))
    """Weight of the AuxK loss that revives dead latents (0 turns it off)."""
    dead_frames: int = option(10_000, COUNT)
    """A latent that has not fired for more than this many training frames is dead (AuxK
    trains it on the residual)."""
    heldout: float = option(0.1, Range(0, 1, high_open=True))
    """Fraction of the clips (seeded) kept out of training: FVU and splice figures are
    measured on them (at least one clip when there are two or more)."""
    max_clips: int | None = option(None, COUNT_OR_NULL)
    """Use only the first max_clips clips of clips.jsonl (null: all)."""
    batch_size: int = option(8, COUNT)
    """Clips per forward pass of the model."""
    device: str = "auto"
    """Where the model and the SAE run: auto (cuda if available), cpu, cuda, ..."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        check(type(self), self)


# --------------------------------------------------------------------------- frames
@dataclass
class FrameSpool:
    """Valid frames of one layer, float32 ``[n_frames, d]`` rows in a file (row-major).

    Attributes:
        path: the file; d: frame width (units); n_frames: rows written.
    """

    path: Path
    d: int
    n_frames: int = 0

    def array(self) -> np.ndarray:
        """A read-only memory map ``[n_frames, d]`` float32 (nothing is read until used)."""
        if self.n_frames == 0:
            return np.zeros((0, self.d), dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.n_frames, self.d))

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """The frames in order, ``size`` rows at a time (float32 tensors ``[<= size, d]``)."""
        a = self.array()
        for start in range(0, self.n_frames, size):
            yield torch.from_numpy(np.array(a[start : start + size]))


def spool_frames(adapter: Adapter, model: nn.Module, waves: Iterable[tuple[int, np.ndarray]],
                 site: Site, path: Path, *, batch_size: int = 8,
                 device: torch.device | str | None = None, total: int | None = None,
                 progress: bool = True, desc: str = "frames") -> FrameSpool:
    """Run ``model`` over ``waves`` (``(clip index, mono float32 wave)``) and append the valid
    frames of ``site`` (``[n, U]`` per batch) to ``path``; returns the spool.

    Memory holds one batch's frames; the file grows by ``4 * U`` bytes per valid frame.
    """
    from tqdm import tqdm

    spool = FrameSpool(Path(path), int(site.units))
    bar = tqdm(total=total, desc=desc, unit="clip", disable=not progress, file=sys.stderr)
    with open(path, "wb") as f, torch.inference_mode():
        for rows in _batches(waves, batch_size, not adapter.padding_safe, adapter.sample_rate,
                             None):

            def take(out: SiteFrames) -> None:
                x = out.frames[out.valid.to(out.frames.device)].float().cpu().numpy()
                f.write(np.ascontiguousarray(x, dtype=np.float32).tobytes())
                spool.n_frames += int(x.shape[0])

            run_sites(adapter, model, [r.wave for r in rows], [site], on_site=take,
                      device=device)
            bar.update(sum(r.last for r in rows))
    bar.close()
    return spool


# --------------------------------------------------------------------------- training
def _sparsify():
    """sparsify's ``SparseCoder`` and ``SparseCoderConfig``, with its eager (embedding-bag)
    decoder: its Triton kernel is for CUDA only and not deterministic, so it is switched off
    before the first import (``SPARSIFY_DISABLE_TRITON=1``)."""
    os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints which decoder it uses
        from sparsify import SparseCoder, SparseCoderConfig
    return SparseCoder, SparseCoderConfig


def library_version() -> str:
    """``eai-sparsify==<version>`` (the installed one)."""
    from importlib.metadata import version

    return f"{LIBRARY}=={version(LIBRARY)}"


def default_lr(n_latents: int) -> float:
    """sparsify's Adam learning rate for ``n_latents`` latents: ``2e-4 / sqrt(n / 2**14)``."""
    return 2e-4 / math.sqrt(n_latents / 2**14)


@dataclass
class FitLog:
    """What :func:`fit` did: ``steps``, ``frames`` seen, ``lr``, the mean training FVU of the
    last epoch, ``dead_fraction`` (latents dead at the end), ``seconds``."""

    steps: int
    frames: int
    lr: float
    train_fvu: float
    dead_fraction: float
    seconds: float


def fit(spool: FrameSpool, *, layer: str, expansion: int = 4, k: int = 32, seed: int = 0,
        epochs: int = 20, batch_frames: int = 1024, lr: float | None = None,
        auxk_alpha: float = 1 / 32, dead_frames: int = 10_000,
        device: torch.device | str = "cpu", progress: bool = True) -> tuple[Sae, FitLog]:
    """Train a TopK SAE (sparsify ``SparseCoder``) on the frames of ``spool``.

    Deterministic under ``seed`` on the CPU: the initialisation draws from
    ``torch.manual_seed(seed)``, each epoch's frame order from a generator seeded with
    ``seed``; the decoder is the eager one.

    Args:
        spool: the training frames ``[N, D]``.
        layer: the layer they come from (kept in the SAE).
        expansion: ``n_latents = expansion * D``. k: latents kept per frame.
        epochs / batch_frames: passes over the frames, frames per step (the last, smaller
            batch of an epoch is dropped unless it is the only one).
        lr: Adam's learning rate (None: :func:`default_lr`). auxk_alpha / dead_frames: AuxK.

    Returns:
        ``(sae, log)``: the SAE (decoder rows of unit norm) and a :class:`FitLog`.

    Raises:
        ValueError: no frames, or ``k`` above the number of latents.
    """
    from tqdm import tqdm

    SparseCoder, SparseCoderConfig = _sparsify()
    N, D = spool.n_frames, spool.d
    n_latents = expansion * D
    if N == 0:
        raise ValueError(f"layer {layer!r}: no training frames (no valid frames in the clips)")
    if k > n_latents:
        raise ValueError(f"k={k} is more than the SAE's {n_latents} latents (expansion "
                         f"{expansion} x width {D})")
    lr = default_lr(n_latents) if lr is None else float(lr)
    torch.manual_seed(seed)
    coder = SparseCoder(D, SparseCoderConfig(expansion_factor=expansion, k=k,
                                             normalize_decoder=True), device=device)
    opt = torch.optim.Adam(coder.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    frames = spool.array()
    size = min(batch_frames, N)
    per_epoch = max(1, N // size)
    since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)
    steps, seen, fvus, t0 = 0, 0, [], time.perf_counter()
    bar = tqdm(total=epochs * per_epoch, desc=f"train sae:{layer}", unit="step",
               disable=not progress, file=sys.stderr)
    for _ in range(epochs):
        order = torch.randperm(N, generator=gen)
        fvus = []
        for b in range(per_epoch):
            idx = np.sort(order[b * size : (b + 1) * size].numpy())
            x = torch.from_numpy(np.array(frames[idx])).to(device)
            if steps == 0:  # sparsify: b_dec starts at the first batch's mean
                coder.b_dec.data = x.mean(0).to(coder.dtype)
            coder.set_decoder_norm_to_unit_norm()
            dead = since_fired > dead_frames if auxk_alpha > 0 else None
            out = coder(x, dead_mask=dead)
            loss = out.fvu + auxk_alpha * out.auxk_loss
            loss.backward()
            coder.remove_gradient_parallel_to_decoder_directions()
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                fired = torch.zeros(n_latents, dtype=torch.bool, device=device)
                fired[out.latent_indices.flatten()] = True
                since_fired += x.shape[0]
                since_fired[fired] = 0
            fvus.append(float(out.fvu.detach()))
            steps += 1
            seen += int(x.shape[0])
            bar.update(1)
            bar.set_postfix(fvu=f"{fvus[-1]:.3f}")
    bar.close()
    coder.set_decoder_norm_to_unit_norm()
    dead_fraction = float((since_fired > dead_frames).float().mean())
    sae = Sae.from_sparse_coder(layer, coder)
    log = FitLog(steps, seen, lr, float(np.mean(fvus)), dead_fraction,
                 time.perf_counter() - t0)
    return sae, log


# --------------------------------------------------------------------------- measuring
def fvu(sae: Sae, spool: FrameSpool, chunk: int = 4096) -> dict[str, float]:
    """Reconstruction figures of ``sae`` on ``spool``'s frames: ``fvu`` (see the module
    docstring), ``cosine`` (mean per-frame cosine of frame and reconstruction), ``alive``
    (fraction of latents that fire on some frame), ``frames``."""
    n, err, s, s2, cos = 0, 0.0, None, 0.0, 0.0
    fired = torch.zeros(sae.n_latents, dtype=torch.bool)
    with torch.no_grad():
        for x in spool.chunks(chunk):
            x = x.to(sae.W_enc.device)
            z = sae.encode(x)
            r = sae.decode(z)
            xd = x.double()
            err += float((xd - r.double()).pow(2).sum())
            s = xd.sum(0) if s is None else s + xd.sum(0)
            s2 += float(xd.pow(2).sum())
            cos += float(torch.nn.functional.cosine_similarity(x, r, dim=-1).double().sum())
            fired |= (z > 0).any(0).cpu()
            n += int(x.shape[0])
    if n == 0:
        return {"fvu": float("nan"), "cosine": float("nan"), "alive": float("nan"), "frames": 0}
    total = s2 - float(s.pow(2).sum()) / n
    return {"fvu": err / total if total > 0 else float("nan"), "cosine": cos / n,
            "alive": float(fired.float().mean()), "frames": n}


def next_site(adapter: Adapter, model: nn.Module, layer: str) -> Site | None:
    """The first site after ``layer`` in the adapter's order that is hooked at another module
    (the next layer), or None (``layer`` is the last)."""
    sites = list(adapter.sites(model).values())
    names = [s.name for s in sites]
    if layer not in names:
        return None
    base = sites[names.index(layer)]
    return next((s for s in sites[names.index(layer) + 1 :] if s.module != base.module), None)


def splice(adapter: Adapter, model: nn.Module, sae: Sae, waves: Iterable[tuple[int, np.ndarray]],
           *, batch_size: int = 8, device: torch.device | str | None = None,
           progress: bool = True, total: int | None = None) -> dict[str, Any]:
    """The model with ``sae.layer``'s frames replaced by their SAE reconstruction (on the hook
    path) against the model as it is, over ``waves``.

    Returns:
        ``{"clips", "logit_mse", "top1_agreement", "next_layer", "next_cosine"}``: the
        logits' mean squared difference and the fraction of clips whose top logit is the same
        (None without a head); the next site's name and the mean cosine, over its valid
        frames, of its frames with and without the splice (None when the layer is the last).
    """
    from tqdm import tqdm

    base = adapter.resolve_layers(model, [sae.layer])[0]
    nxt = next_site(adapter, model, sae.layer)
    read = [nxt] if nxt is not None else []

    def reconstruct(frames: torch.Tensor, _layer: str) -> torch.Tensor:
        return sae.decode(sae.encode(frames)).to(frames.device)

    n, se, n_logit, agree, cos, n_frames = 0, 0.0, 0, 0, 0.0, 0
    bar = tqdm(total=total, desc=f"splice {base.name}", unit="clip", disable=not progress,
               file=sys.stderr)
    with torch.no_grad():
        for rows in _batches(waves, batch_size, not adapter.padding_safe, adapter.sample_rate,
                             None):
            w = [r.wave for r in rows]
            clean = run_sites(adapter, model, w, read, device=device)
            with frame_hooks(adapter, model, {base.name: reconstruct}):
                spliced = run_sites(adapter, model, w, read, device=device)
            if clean.logits is not None:
                a, b = clean.logits.double(), spliced.logits.double()
                se += float((a - b).pow(2).sum())
                n_logit += a.numel()
                agree += int((a.argmax(-1) == b.argmax(-1)).sum())
            if nxt is not None:
                fa, fb = clean.sites[nxt.name], spliced.sites[nxt.name]
                v = fa.valid
                c = torch.nn.functional.cosine_similarity(fa.frames[v], fb.frames[v], dim=-1)
                cos += float(c.double().sum())
                n_frames += int(v.sum())
            n += len(rows)
            bar.update(sum(r.last for r in rows))
    bar.close()
    head = n_logit > 0
    return {"clips": n, "logit_mse": se / n_logit if head else None,
            "top1_agreement": agree / n if head else None,
            "next_layer": nxt.name if nxt is not None else None,
            "next_cosine": cos / n_frames if n_frames else None}


# --------------------------------------------------------------------------- the whole job
def split_clips(n: int, heldout: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train, heldout)`` clip indices (sorted): ``round(heldout * n)`` clips drawn with
    ``seed`` (at least one when ``heldout > 0`` and ``n >= 2``), the rest train."""
    m = int(round(heldout * n))
    if heldout > 0 and n >= 2:
        m = min(max(m, 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[m:]), sorted(int(i) for i in perm[:m])


@dataclass
class Trained:
    """What :func:`train_sae` returns: the SAE (its :attr:`Sae.info` holds the sidecar) and
    where it was saved (None when not saved)."""

    sae: Sae
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)


def train_sae(adapter: Adapter, model: nn.Module, clip_ids: Sequence[str],
              wave: Callable[[int], np.ndarray], layer: str, *,
              expansion: int = 4, k: int = 32, seed: int = 0, epochs: int = 20,
              batch_frames: int = 1024, lr: float | None = None, auxk_alpha: float = 1 / 32,
              dead_frames: int = 10_000, heldout: float = 0.1, batch_size: int = 8,
              device: torch.device | str | None = None, out: str | Path | None = None,
              provenance: dict[str, Any] | None = None, progress: bool = True) -> Trained:
    """Train, measure and (with ``out``) save an SAE on ``layer`` of ``model``.

    Args:
        adapter / model: the loaded model.
        clip_ids: the probe clips' ids; ``wave(i)`` gives clip ``i``'s mono float32 waveform
            at ``adapter.sample_rate``.
        layer: a site of the adapter (not a derived one).
        out: the SAE file to write (safetensors, and ``<out>.json``).
        provenance: extra provenance for the sidecar (run dir, recording hash).
        other arguments: see :class:`FeaturesTrainConfig` and :func:`fit`.

    Returns:
        A :class:`Trained`; ``info`` (also in ``sae.info`` and the sidecar) holds ``config``,
        ``provenance`` (``clips_train``, ``clips_heldout`` ids, ``library``, ...), ``training``
        (:class:`FitLog`) and ``metrics`` (held-out :func:`fvu` and :func:`splice`).

    Raises:
        LayerNameError: an unknown layer (the message lists the valid ones).
        ValueError: a derived layer (``sae:...``), no clips, or no training frames.
    """
    if layer.startswith(SAE_PREFIX):
        raise ValueError(f"layer {layer!r}: train an SAE on a model layer, not on SAE latents")
    site = adapter.resolve_layers(model, [layer])[0]
    n = len(clip_ids)
    if n == 0:
        raise ValueError("no clips to train on")
    train_ix, held_ix = split_clips(n, heldout, seed)
    device = torch.device(device) if device is not None else None
    sae_device = device or torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="dissect-sae-") as tmp:
        tr = spool_frames(adapter, model, ((i, wave(i)) for i in train_ix), site,
                          Path(tmp) / "train.f32", batch_size=batch_size, device=device,
                          total=len(train_ix), progress=progress, desc="frames (train)")
        sae, log = fit(tr, layer=layer, expansion=expansion, k=k, seed=seed, epochs=epochs,
                       batch_frames=batch_frames, lr=lr, auxk_alpha=auxk_alpha,
                       dead_frames=dead_frames, device=sae_device, progress=progress)
        metrics: dict[str, Any] = {"train": fvu(sae, tr)}
        if held_ix:
            ho = spool_frames(adapter, model, ((i, wave(i)) for i in held_ix), site,
                              Path(tmp) / "heldout.f32", batch_size=batch_size, device=device,
                              total=len(held_ix), progress=progress, desc="frames (held out)")
            metrics["heldout"] = fvu(sae, ho)
            try:
                metrics["splice"] = splice(adapter, model, sae,
                                           ((i, wave(i)) for i in held_ix),
                                           batch_size=batch_size, device=device,
                                           progress=progress, total=len(held_ix))
            except NotImplementedError as exc:  # a base layer with an activation (ffn)
                metrics["splice"] = {"error": str(exc)}
    info = {
        "config": {"layer": layer, "d_in": sae.d_in, "n_latents": sae.n_latents, "k": k,
                   "expansion": expansion, "seed": seed, "epochs": epochs,
                   "steps": log.steps, "batch_frames": batch_frames, "lr": log.lr,
                   "auxk_alpha": auxk_alpha, "dead_frames": dead_frames, "heldout": heldout,
                   "activation": "topk", "normalize_decoder": True,
                   "library": library_version(), "torch": torch.__version__},
        "provenance": {**dict(provenance or {}), "adapter": adapter.name,
                       "source": str(adapter.source), "site_kind": adapter.site_kind,
                       "hop_ms": site.hop_ms, "clips_train": [clip_ids[i] for i in train_ix],
                       "clips_heldout": [clip_ids[i] for i in held_ix]},
        "training": asdict(log),
        "metrics": metrics,
    }
    sae.info = info
    path = sae.save(out) if out is not None else None
    return Trained(sae, Path(path) if path else None, info)


def _run_model_config(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``model`` and ``audio`` sections of ``run_dir/config.yaml`` (plain dicts)."""
    from omegaconf import OmegaConf

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no config.yaml)")
    plain = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    model = dict(plain.get("model") or {})
    if not model.get("name"):
        raise ValueError(f"{path}: no model.name")
    return model, dict(plain.get("audio") or {})


def train_run(c: FeaturesTrainConfig) -> Trained:
    """``dissect features train``: an SAE on ``c.layer`` of the run ``c.run_dir``'s model over
    its probe clips (``clips.jsonl``, decoded with the run's audio policy), saved to
    ``c.out`` (default ``<run_dir>/features/<layer>.safetensors``).

    Raises:
        FileNotFoundError: no config.yaml or clips.jsonl in ``run_dir``.
        LayerNameError / ValueError: see :func:`train_sae`.
    """
    from dissect import artifacts
    from dissect.audio import ClipPolicy, load_audio
    from dissect.models.load import load_from_config

    run_dir = Path(c.run_dir)
    model_cfg, audio_cfg = _run_model_config(run_dir)
    clips_path = run_dir / artifacts.CLIPS
    if not clips_path.is_file():
        raise FileNotFoundError(f"{clips_path}: missing (run the probe stage first)")
    rows = artifacts.read_jsonl(clips_path)
    if c.max_clips is not None:
        rows = rows[: c.max_clips]
    model_cfg["features"] = []  # an SAE is trained on the model's own layers
    adapter, model, device = load_from_config(model_cfg, device=c.device)
    fields = {f for f in ClipPolicy.__dataclass_fields__}
    policy = ClipPolicy(**{k: v for k, v in audio_cfg.items() if k in fields})
    artifacts.check_layer_name(c.layer)
    out = Path(c.out) if c.out else run_dir / "features" / f"{c.layer}.safetensors"
    record = artifacts.Manifest(run_dir).stages.get("record") or {}
    prov = {"run_dir": str(run_dir.resolve()), "record_config_hash": record.get("config_hash"),
            "clips_jsonl_sha256": artifacts.hash_file(clips_path)}

    def wave(i: int) -> np.ndarray:
        return load_audio(rows[i]["path"], adapter.sample_rate, policy).waveform

    return train_sae(adapter, model, [r["id"] for r in rows], wave, c.layer,
                     expansion=c.expansion, k=c.k, seed=c.seed, epochs=c.epochs,
                     batch_frames=c.batch_frames, lr=c.lr, auxk_alpha=c.auxk_alpha,
                     dead_frames=c.dead_frames, heldout=c.heldout, batch_size=c.batch_size,
                     device=device, out=out, provenance=prov, progress=c.progress)


def summary_line(t: Trained) -> str:
    """One line: steps, held-out FVU, splice figures, the file."""
    m, tr = t.info.get("metrics", {}), t.info.get("training", {})
    h, s = m.get("heldout") or {}, m.get("splice") or {}

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.4g}"

    return (f"[features] sae:{t.sae.layer}: {t.sae.n_latents} latents, k={t.sae.k}, "
            f"{tr.get('steps')} steps in {tr.get('seconds', 0):.1f} s; held-out FVU "
            f"{f(h.get('fvu'))} over {h.get('frames', 0)} frames; splice: logit MSE "
            f"{f(s.get('logit_mse'))}, top-1 agreement {f(s.get('top1_agreement'))}, "
            f"{s.get('next_layer')} cosine {f(s.get('next_cosine'))} -> {t.path}")


def dumps(info: dict[str, Any]) -> str:
    """``info`` as indented JSON (for printing)."""
    return json.dumps(info, indent=2)
