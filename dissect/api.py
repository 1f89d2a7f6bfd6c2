"""The Python API: dissect a model from a notebook in a few lines, no hydra, no run directory.

::

    import dissect
    model = dissect.load("crepe", source="tiny")
    clips = dissect.probe_set("synth", n_clips=20)
    rec = dissect.record(model, clips, layers=["classifier"], k=5)
    rec.exemplars("classifier", 200)["top"]          # the neuron's most activating clips
    desc = dissect.describe(rec, llm="rules")
    desc["classifier", 200].text
    with dissect.ablated(model, [("classifier", 200)]):
        ...                                          # the neuron is zero in here
    with model.hooks(lambda frames, layer: frames * 2, layers=["conv6"]):
        logits, cache = model.run_with_cache(waves, ["conv6"], sample_rate=16000)
    rec.save("runs/mine")                            # only now is anything written

Everything here runs the same library code as ``dissect run``: the pipeline's stages are thin
wrappers that read the run directory, call these functions' building blocks
(:func:`dissect.recording.record`, :mod:`dissect.description.neurons`) and save the artifacts. So a
:class:`Recording` saved with :meth:`Recording.save` is a run directory the CLI's later stages
(``dissect report``, ``dissect evaluate``, ``dissect prune``) can read.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dissect import artifacts
from dissect.rows import NeuronRow, neuron_row

if TYPE_CHECKING:
    from dissect.audio import Audio

Neuron = tuple[str, int]


# --------------------------------------------------------------------------- models
@dataclass
class Model:
    """A loaded model with its adapter.

    Attributes:
        adapter: the family's adapter (preprocessing, sites, valid frames, head).
        module: the ``nn.Module`` (eval mode).
        device: where it runs.
    """

    adapter: Any
    module: nn.Module
    device: torch.device

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def sample_rate(self) -> int:
        """Hz the model consumes."""
        return int(self.adapter.sample_rate)

    def sites(self) -> dict[str, Any]:
        """Every recordable layer (site) by name, for the adapter's site kind, and the
        derived sites attached to it (``sae:<layer>``, :func:`dissect.features.attach`)."""
        return self.adapter.all_sites(self.module)

    def default_layers(self) -> list[str]:
        """The layers :func:`record` uses when none are named."""
        return self.adapter.default_layers(self.module)

    @contextlib.contextmanager
    def hooks(self, fn: Callable[[torch.Tensor, str], Any] | Mapping[str, Callable],
              layers: str | Sequence[str] | None = None) -> Iterator[Model]:
        """Read or edit layers while the block runs (reversible: removed on exit, also when
        the block raises), as TransformerLens' ``run_with_hooks``.

        ``with model.hooks(fn, layers=["conv6"]):`` or ``with model.hooks({"conv6": fn}):``;
        ``fn(frames, layer)`` gets the layer's neurons as the recorder frames them, float32
        ``[B, T, U]`` (clips x frames x units, padding frames included), after each forward
        run through dissect (:func:`forward`, :meth:`run_with_cache`, :func:`record`, ...),
        and returns None (read only) or new frames of the same shape, which the rest of the
        model then sees (a value set to 0 zeroes the neuron's output; other changes move the
        output by the least amount that gives the new frames; see
        :func:`dissect.recording.hooks.unframe`). Yields the model.

        Raises:
            TypeError: a callable without ``layers``, or ``layers`` with a mapping.
            LayerNameError: an unknown layer (the message lists the valid ones).
        """
        from dissect.recording.hooks import frame_hooks

        if isinstance(fn, Mapping):
            if layers is not None:
                raise TypeError("model.hooks({layer: fn}) takes no layers=")
            fns = {str(k): v for k, v in fn.items()}
        else:
            if layers is None:
                raise TypeError("model.hooks(fn) needs layers=[...] (or pass {layer: fn})")
            fns = {str(name): fn for name in ([layers] if isinstance(layers, str) else layers)}
        bad = [k for k, v in fns.items() if not callable(v)]
        if bad:
            raise TypeError(f"model.hooks: the hooks of {bad} are not callable")
        with frame_hooks(self.adapter, self.module, fns):
            yield self

    def run_with_cache(self, clips: Any, layers: Sequence[str] = (), *,
                       sample_rate: int | None = None
                       ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """One forward pass on ``clips`` (as :func:`record` takes them): ``(logits, cache)``,
        logits ``[B, C]`` (None without a head) and ``cache = {layer: frames [B, T, U]}``
        float32 (padding frames zero). Sees active :meth:`hooks` / :func:`ablated` /
        :func:`steered` edits. The same pass as :func:`forward`."""
        out = forward(self, clips, layers, sample_rate=sample_rate)
        logits = out.pop("logits")
        return logits, out

    def __repr__(self) -> str:
        return (f"Model({self.adapter.name!r}, source={self.adapter.source!r}, "
                f"site={self.adapter.site_kind!r}, {len(self.sites())} layers, {self.device})")


def load(model: str | nn.Module, source: str | None = None, *, site: str | None = None,
         device: str = "auto", **options: Any) -> Model:
    """Load a model to dissect.

    Args:
        model: a checkpoint bundle name (``crepe_tiny``, ``whisper_tiny``, ``yamnet``,
            ``ast_esc50``, ... the ``model=<name>`` entries of ``dissect run``, see
            :func:`dissect.models.bundles.bundles`: its adapter, weights, site and options),
            an adapter name (``crepe``, ``whisper``, ``hubert``, ... see
            :func:`dissect.models.available`) or any ``nn.Module`` (wrapped by the ``generic``
            adapter: pass ``layers=[...]``, ``preprocess=``, ``sample_rate=`` as options).
        source: weights (Hugging Face id, local path, or an adapter-specific name such as
            CREPE's ``tiny``); None uses the bundle's, else the adapter's default.
        site: which output of a transformer block is a neuron (``ffn``, ``ffn_pre``,
            ``attention``, ``block``; ``and`` for ast / beats: AND's every-Linear preset);
            None: the bundle's, else ``ffn``.
        device: ``auto`` (cuda when available), ``cpu``, ``cuda``, ...
        options: adapter options (e.g. ``hop_ms=20`` for CREPE).

    Raises:
        KeyError: an unknown adapter name (the message lists the registered ones).
        WeightsUnavailableError: weights that cannot be found (the message says how to pass
            a local path).
    """
    from dissect.models.bundles import BUNDLES
    from dissect.models.load import load_from_config

    if isinstance(model, nn.Module):
        cfg = {"name": "generic", "source": source, "site": "module",
               "options": {"module": model, **options}}
    elif model in BUNDLES:  # a checkpoint name: its adapter, weights, site and options
        b = BUNDLES.get(model)
        cfg = {"name": b.adapter, "source": b.source if source is None else source,
               "site": site or b.site, "options": {**dict(b.options), **options}}
    else:
        cfg = {"name": model, "source": source, "site": site or "ffn", "options": options}
    adapter, module, dev = load_from_config(cfg, device=device)
    return Model(adapter, module, dev)


# --------------------------------------------------------------------------- clips
def probe_set(layout: str = "synth", root: str | Path | None = None, *, limit: int | None = None,
              progress: bool = True, **options: Any):
    """A probe set (:class:`~dissect.datasets.ProbeSet`) by layout, as ``probe.*`` would.

    ``options`` are the ``probe.*`` fields (``folds=``, ``metadata=``, ``holdout=``, ...) and,
    for the generated layouts, their own section's fields: ``probe.synth.*`` for ``synth``
    (``n_clips=``, ``seed=``, ...), ``probe.espeak_digits.*`` for ``espeak_digits``
    (``n_clips=``, ``voices=``, ...).

    Raises:
        TypeError: an option that is neither a ``probe`` field nor one of the layout's own.
    """
    from dataclasses import fields as dc_fields

    from dissect.config import EspeakDigitsConfig, ProbeConfig, SynthConfig
    from dissect.datasets import build_probe_set

    nested = {"synth": SynthConfig, "espeak_digits": EspeakDigitsConfig}
    top = {f.name for f in dc_fields(ProbeConfig)} - set(nested)
    own_cls = nested.get(layout)
    own = {f.name for f in dc_fields(own_cls)} if own_cls else set()
    unknown = sorted(set(options) - top - own)
    if unknown:
        raise TypeError(f"probe_set({layout!r}): unknown option(s) {unknown}; probe fields: "
                        f"{sorted(top)}" + (f"; {layout} fields: {sorted(own)}" if own else ""))
    kw = {k: v for k, v in options.items() if k in top and k not in own}
    if own_cls is not None:
        kw[layout] = own_cls(**{k: v for k, v in options.items() if k in own})
    cfg = ProbeConfig(layout=layout, root=str(root) if root else None, limit=limit, **kw)
    return build_probe_set(cfg, progress=progress)


@dataclass
class _Clips:
    """Normalised clips: rows (as in ``clips.jsonl``) and a loader of each waveform."""

    rows: list[dict[str, Any]]
    waves: list[np.ndarray | None]  # in memory (arrays given), else None (load from path)
    rate: int | None  # the in-memory arrays' sample rate

    def waveform(self, i: int, sample_rate: int, policy) -> np.ndarray:
        from dissect.audio import load_audio
        from dissect.audio.load import resample

        if self.waves[i] is None:
            return load_audio(self.rows[i]["path"], sample_rate, policy).waveform
        w = np.asarray(self.waves[i], dtype=np.float32)
        return w if self.rate == sample_rate else resample(w, self.rate, sample_rate)


def _as_clips(clips: Any, sample_rate: int | None) -> _Clips:
    """A probe set, a list of audio paths, arrays with ``sample_rate``, or ``(array, rate)``
    pairs (one rate for all) -> :class:`_Clips`."""
    from dissect.datasets import ProbeSet

    if isinstance(clips, ProbeSet):
        rows = [{"id": c.id, "path": str(c.path), "labels": dict(c.labels),
                 "concepts": dict(c.concepts), "metadata": dict(c.metadata)} for c in clips]
        return _Clips(rows, [None] * len(rows), None)
    items = list(clips)
    if not items:
        raise ValueError("no clips given")
    if all(isinstance(x, (str, Path)) for x in items):
        rows = [{"id": Path(p).stem if len({Path(q).stem for q in items}) == len(items)
                 else str(p), "path": str(p), "labels": {}, "concepts": {}} for p in items]
        return _Clips(rows, [None] * len(rows), None)
    if all(isinstance(x, tuple) and len(x) == 2 for x in items):
        rates = {int(r) for _, r in items}
        if len(rates) != 1:
            raise ValueError(f"(array, rate) clips must share one rate, got {sorted(rates)}")
        sample_rate, items = rates.pop(), [a for a, _ in items]
    if sample_rate is None:
        raise ValueError("arrays need sample_rate=<Hz> (or give (array, rate) pairs)")
    waves = []
    for i, a in enumerate(items):
        a = np.asarray(a, dtype=np.float32)
        if a.ndim != 1 or not len(a):
            raise ValueError(f"clip {i}: want a non-empty mono array [n], got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"clip {i}: non-finite samples (NaN/Inf)")
        waves.append(a)
    rows = [{"id": f"clip{i:05d}", "path": None, "labels": {}, "concepts": {}}
            for i in range(len(waves))]
    return _Clips(rows, waves, int(sample_rate))


# --------------------------------------------------------------------------- recording
@dataclass
class Recording:
    """Every neuron of some layers over some clips, in memory.

    Attributes:
        layers: layer name -> :class:`~dissect.recording.LayerState` (top/bottom-k, moments,
            histogram, and the dense ``[clips, U]`` store when recorded with ``dense=True``).
        clips: one row per clip (``id``, ``path``, ``labels``, ``concepts``), row ``i`` =
            clip index ``i`` of the states.
        reduction: ``mean`` or ``max`` over valid frames.
        model: ``{name, source, site, options}`` of the recorded model (JSON-able).
        head_layer / class_names: the model's classifier head, if any.
        waves / wave_rate: the clips' waveforms (mono float32 ``[n]``) and their rate in Hz
            when they were given to :func:`record` as arrays (row ``i`` = clip ``i``), so
            :func:`caption` can hear them; None for clips read from files (their ``path``).
            :meth:`save` does not write them: a loaded recording of arrays has no audio, and
            :meth:`audio` and :func:`caption` say so.
    """

    layers: dict[str, Any]
    clips: list[dict[str, Any]]
    reduction: str = "mean"
    model: dict[str, Any] = field(default_factory=dict)
    head_layer: str | None = None
    class_names: list[str] | None = None
    waves: list[np.ndarray] | None = field(default=None, repr=False, compare=False)
    wave_rate: int | None = None

    @property
    def clip_ids(self) -> list[str]:
        return [c["id"] for c in self.clips]

    def __repr__(self) -> str:
        units = sum(int(st.site.units) for st in self.layers.values())
        name = self.model.get("name", "?") if self.model else "?"
        return (f"Recording({name!r}: {len(self.clips)} clips, {units} neurons in "
                f"{len(self.layers)} layer(s) [{', '.join(list(self.layers)[:4])}"
                f"{', ...' if len(self.layers) > 4 else ''}], reduction={self.reduction!r})")

    def has_audio(self, i: int) -> bool:
        """Whether clip ``i``'s audio can be had: a file path, or its array kept in memory."""
        return bool(self.clips[i].get("path")) or (self.waves is not None
                                                   and self.waves[i] is not None)

    def audio(self, clip: int | str, sample_rate: int | None = None, policy: Any = None
              ) -> Audio:
        """Clip ``clip``'s (index or id) audio as an :class:`~dissect.audio.Audio`: mono
        float32 ``waveform [n]`` at ``sample_rate`` Hz (None: as recorded), read from its file
        (``policy``: the long-clip policy, default :class:`~dissect.audio.ClipPolicy`) or, for
        clips given as arrays, resampled from the array kept in :attr:`waves` (never cropped,
        as :func:`record` fed it to the model).

        Raises:
            KeyError / IndexError: no such clip id / index.
            AudioMissingError: a clip given as an array whose waveform this recording does
                not hold (a recording read back with :meth:`load`: :meth:`save` writes no
                audio); an unreadable file raises its :class:`~dissect.audio.AudioError`.
        """
        from dissect.audio import AudioMissingError, audio_from_array, load_audio

        i = self.clip_ids.index(clip) if isinstance(clip, str) else int(clip)
        if not 0 <= i < len(self.clips):
            raise IndexError(f"clip {clip} out of range 0..{len(self.clips) - 1}")
        row = self.clips[i]
        if row.get("path"):
            return load_audio(row["path"], sample_rate, policy)
        if self.waves is None or self.waves[i] is None:
            raise AudioMissingError(
                f"<array {row['id']}>", "given as an in-memory array, and this Recording holds "
                "no waveforms (Recording.save does not write them, so a loaded recording of "
                "arrays has no audio): use the Recording that record() returned, or give "
                "describe() captions=")
        return audio_from_array(self.waves[i], int(self.wave_rate), sample_rate, policy,
                                name=f"<array {row['id']}>")

    def neurons(self) -> list[dict[str, Any]]:
        """One row per neuron, as in ``exemplars.jsonl`` (top/bottom clips, mean, std)."""
        from dissect.recording.store import exemplar_rows

        return list(exemplar_rows(self.layers, self.clip_ids))

    def exemplars(self, layer: str, unit: int) -> dict[str, Any]:
        """The neuron's exemplars: ``{"top": [{clip, value, peak_ms}], "bottom": [...],
        "mean", "std"}``, top clips by decreasing activation."""
        if layer not in self.layers:
            raise KeyError(f"layer {layer!r} was not recorded; recorded: {list(self.layers)}")
        st = self.layers[layer]
        if not 0 <= int(unit) < st.site.units:
            raise IndexError(f"{layer}: unit {unit} out of range 0..{st.site.units - 1}")
        from dissect.recording.store import exemplar_rows

        row = next(r for r in exemplar_rows({layer: st}, self.clip_ids) if r["unit"] == unit)
        return {k: row[k] for k in ("top", "bottom", "mean", "std")}

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """layer -> per-unit ``mean``, ``std``, ``min``, ``max`` ``[U]`` and ``quantiles``
        ``[U, levels]`` at ``quantile_levels``."""
        from dissect.recording.recorder import QUANTILE_LEVELS

        q = torch.tensor(QUANTILE_LEVELS, dtype=torch.float64)
        return {name: {"mean": st.moments.mean.numpy(), "std": st.moments.std.numpy(),
                       "min": st.moments.min.numpy(), "max": st.moments.max.numpy(),
                       "quantile_levels": q.numpy(), "quantiles": st.hist.quantiles(q).numpy()}
                for name, st in self.layers.items()}

    def activations(self, layer: str) -> np.ndarray:
        """Dense pooled activations ``[clips, U]`` float32 (needs ``record(..., dense=True)``)."""
        st = self.layers[layer]
        if st.dense is None:
            raise ValueError(f"{layer}: recorded without dense=True")
        return st.dense.float().numpy()

    def save(self, run_dir: str | Path) -> Path:
        """Write ``clips.jsonl``, ``stats/``, ``exemplars.jsonl``, ``activations/`` (when dense)
        and ``recording.json`` (with the sha256 of every per-layer file, which :meth:`load`
        checks) into ``run_dir``; returns it. The waveforms of clips given as arrays
        (:attr:`waves`) are not written: the loaded recording cannot be captioned again.

        Raises:
            RunDirRefused: ``run_dir`` is a non-empty directory dissect did not make, a file,
                the filesystem root or the home directory
                (:func:`~dissect.artifacts.claim_run_dir`); nothing is written.
        """
        from dissect.recording.store import save_layer, write_exemplars

        run_dir = artifacts.claim_run_dir(run_dir)
        artifacts.mark_run_dir(run_dir)
        artifacts.write_jsonl(run_dir / artifacts.CLIPS, self.clips)
        files: dict[str, str] = {}
        for st in self.layers.values():
            for rel in save_layer(run_dir, st, self.reduction):
                files[Path(rel).as_posix()] = artifacts.hash_file(run_dir / rel)
        write_exemplars(run_dir, self.layers, self.clip_ids)
        artifacts.write_json(run_dir / RECORDING, {
            "layers": list(self.layers), "reduction": self.reduction, "model": self.model,
            "head_layer": self.head_layer, "class_names": self.class_names, "files": files})
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path) -> Recording:
        """A recording saved by :meth:`save` or written by ``dissect run`` (record stage).

        Nothing in the directory is trusted: every layer name must be a plain name (it becomes
        a file name); every per-layer file must have the sha256 recorded for it (by the record
        stage's manifest entry, or by :meth:`save` in ``recording.json``), must hold the layer
        it is named after, with the unit count the recording lists, and its clip indices and
        rows must fit the clips of ``clips.jsonl``.

        Raises:
            FileNotFoundError: no ``recording.json`` and no finished record stage.
            RecordingMismatch: a file that does not belong to this recording (changed since
                it was recorded, another layer's, another run's clips); the message names it.
            ValueError: a layer name that is not a plain name, or an unreadable file.
        """
        run_dir = Path(run_dir)
        clips = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
        units: dict[str, Any] = {}
        if (run_dir / RECORDING).is_file():
            meta = json.loads((run_dir / RECORDING).read_text(encoding="utf-8"))
            hashes = meta.get("files")  # None: saved before hashes were recorded
        else:  # a pipeline run: the record stage's manifest entry and info
            entry = artifacts.Manifest(run_dir).stages.get("record") or {}
            info = entry.get("info") or {}
            if not info or entry.get("status") != "done":
                raise FileNotFoundError(f"{run_dir}: no {RECORDING} and no finished record stage")
            hashes = dict(entry.get("outputs") or {})
            units = {k: (v or {}).get("units") for k, v in dict(info.get("layers", {})).items()}
            meta = {"layers": list(info.get("layers", {})), "model": {"name": info.get("adapter"),
                    "source": info.get("source")}, "head_layer": info.get("head_layer"),
                    "class_names": info.get("class_names"), "reduction": None}
        layers = {}
        reduction = meta.get("reduction")
        for name in meta["layers"]:
            st, reduction = _load_layer_checked(run_dir, name, len(clips), hashes,
                                                units.get(name))
            layers[name] = st
        return cls(layers, clips, reduction or "mean", dict(meta.get("model") or {}),
                   meta.get("head_layer"), meta.get("class_names"))


class RecordingMismatch(ValueError):
    """A file of a saved recording that does not belong to it: changed since it was recorded
    (its sha256), another layer's, or recorded over other clips. The message names the file."""


def _verified(run_dir: Path, path: Path, hashes: Mapping[str, str] | None) -> Path:
    """``path`` if its sha256 is the one ``hashes`` (relative path -> sha256) records; None
    ``hashes`` (a recording saved before hashes were kept) checks nothing."""
    if hashes is None:
        return path
    rel = path.relative_to(run_dir).as_posix()
    want = hashes.get(rel)
    if want is None:
        raise RecordingMismatch(f"{path}: not a file this recording wrote (no sha256 recorded "
                                f"for {rel})")
    if artifacts.hash_file(path) != want:
        raise RecordingMismatch(f"{path}: changed since it was recorded (sha256 differs from "
                                "the recorded one); record again")
    return path


def _load_layer_checked(run_dir: Path, name: str, n_clips: int,
                        hashes: Mapping[str, str] | None, units: int | None):
    """Load layer ``name``'s stats (and dense store, when there is one) of a saved recording,
    checked against the recorded hashes, the layer name, ``units`` and ``n_clips`` (see
    :meth:`Recording.load`); returns ``(state, reduction)``."""
    from dissect.recording.store import activations_path, load_layer, read_tensors, stats_path

    path = _verified(run_dir, stats_path(run_dir, name), hashes)
    st, reduction = load_layer(path)
    if st.site.name != name:
        raise RecordingMismatch(f"{path}: holds layer {st.site.name!r}, not {name!r}")
    U = st.site.units
    if units is not None and U != int(units):
        raise RecordingMismatch(f"{path}: {U} units, but the recording lists {units} for "
                                f"layer {name!r}")
    for side in ("top", "bottom"):
        r = getattr(st, side)
        shapes = {tuple(r.values.shape), tuple(r.index.shape), tuple(r.peak_ms.shape)}
        if len(shapes) != 1 or r.values.ndim != 2 or r.values.shape[1] != U \
                or r.values.shape[0] > min(st.k, n_clips):
            raise RecordingMismatch(f"{path}: {side} clips of shape {sorted(shapes)}, want "
                                    f"[at most {min(st.k, n_clips)}, {U}]")
        if r.index.numel() and (int(r.index.min()) < 0 or int(r.index.max()) >= n_clips):
            raise RecordingMismatch(
                f"{path}: clip index {int(r.index.max())} out of range for the "
                f"{n_clips} clips of {artifacts.CLIPS} (recorded over other clips?)")
    m = st.moments
    for part in ("count", "mean", "m2", "min", "max"):
        if tuple(getattr(m, part).shape) != (U,):
            raise RecordingMismatch(f"{path}: {part} of shape {list(getattr(m, part).shape)}, "
                                    f"want [{U}]")
    dense = activations_path(run_dir, name)
    listed = hashes is None or dense.relative_to(run_dir).as_posix() in hashes
    if dense.is_file() and listed:  # an unlisted one is not this recording's: not read
        values = read_tensors(_verified(run_dir, dense, hashes))[0].get("values")
        if values is None or tuple(values.shape) != (n_clips, U):
            got = "no 'values'" if values is None else f"shape {list(values.shape)}"
            raise RecordingMismatch(f"{dense}: {got}, want [{n_clips} clips, {U} units] "
                                    f"({artifacts.CLIPS} has {n_clips} clips)")
        st.dense = values
    return st, reduction


RECORDING = "recording.json"


def record(model: Model, clips: Any, layers: Sequence[str] | None = None, *, k: int = 10,
           reduction: str = "mean", batch_size: int = 8, dense: bool = True,
           sample_rate: int | None = None, max_seconds: float | None = 10.0,
           progress: bool = True) -> Recording:
    """Record every unit of ``layers`` of ``model`` over ``clips``.

    Args:
        model: from :func:`load`.
        clips: a probe set (:func:`probe_set`), a list of audio file paths, a list of mono
            float arrays ``[n]`` (with ``sample_rate``), or ``(array, rate)`` pairs.
        layers: layer (site) names; None records the adapter's default layers.
        k: top and bottom clips kept per neuron.
        reduction: ``mean`` or ``max`` over each clip's valid frames.
        batch_size: clips per forward pass.
        dense: also keep every clip's pooled value (``[clips, U]`` float16 per layer), which
            :func:`describe`'s closed-set concepts need.
        sample_rate: the arrays' rate in Hz (resampled to the model's).
        max_seconds: files longer than this are cropped at the start (None keeps them whole).
        progress: show a progress bar.

    Raises:
        ConfigValueError: ``k`` or ``batch_size`` below 1, or ``max_seconds`` not above 0
            (named with the value), before anything runs.
        LayerNameError: an unknown layer (the message lists the valid ones).
        AudioError: a file that cannot be decoded (the message names it).
    """
    from dissect.audio import ClipPolicy
    from dissect.config import check_fields
    from dissect.recording.recorder import record as run_record

    check_fields("record", {"k": k, "batch_size": batch_size}, label="record(): ")
    check_fields("audio", {"max_seconds": max_seconds}, label="record(): ")
    if reduction not in ("mean", "max"):
        raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}")
    c = _as_clips(clips, sample_rate)
    sites = model.adapter.resolve_layers(model.module, list(layers) if layers else None)
    policy = ClipPolicy(max_seconds=max_seconds)
    sr = model.sample_rate
    result = run_record(model.adapter, model.module,
                        ((i, c.waveform(i, sr, policy)) for i in range(len(c.rows))), sites,
                        reduction=reduction, k=k, batch_size=batch_size,
                        dense_rows=len(c.rows) if dense else None, device=model.device,
                        total=len(c.rows), progress=progress)
    info = {"name": model.adapter.name, "source": str(model.adapter.source),
            "site": model.adapter.site_kind,
            "options": {k_: v for k_, v in model.adapter.options.items()
                        if isinstance(v, (str, int, float, bool, type(None)))}}
    arrays = c.rate is not None
    return Recording(result.layers, c.rows, reduction, info,
                     model.adapter.head_layer(model.module),
                     model.adapter.class_names(model.module),
                     waves=list(c.waves) if arrays else None, wave_rate=c.rate)


# --------------------------------------------------------------------------- describing
class Captions(dict):
    """clip id -> caption text (a ``dict``), plus ``terms``: clip id -> the clip's evidence
    terms (``attribute=value``, e.g. ``digit=3``, ``register=low``) that :func:`describe`
    tests against the activations.

    Attributes:
        terms: clip id -> evidence terms.
        plain: clip id -> the captions without captioner names (the text DB embeds); None:
            the texts themselves.
        parts: clip id -> captioner name -> ``{"text", "terms", "error"}``, what each captioner
            said (:func:`caption` fills it, failed captions included with their error); None
            for captions given as one text per clip.
    """

    def __init__(self, texts: Mapping[str, str] = (), terms: Mapping[str, Sequence[str]] = (),
                 plain: Mapping[str, str] | None = None,
                 parts: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None):
        super().__init__(texts)
        self.terms: dict[str, list[str]] = {k: list(v) for k, v in dict(terms).items()}
        self.plain: dict[str, str] | None = dict(plain) if plain is not None else None
        self.parts: dict[str, dict[str, dict[str, Any]]] | None = (
            {c: {n: dict(r) for n, r in by.items()} for c, by in parts.items()}
            if parts is not None else None)

    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``captions.jsonl`` (as the pipeline's caption stage writes them, which
        ``dissect evaluate`` and the report read): ``{clip, captioner, key, text, terms,
        error}``, one per clip and captioner of :attr:`parts`; captions given as one text per
        clip are one row each under the captioner ``given`` (a text that already starts with
        ``given: ``, a :func:`~dissect.description.captioners.combine` of ``given``, is written
        without it, so reading the file back gives the same text)."""
        if self.parts is not None:
            return [{"clip": clip, "captioner": name, "key": f"{clip}:{name}",
                     "text": r.get("text"), "terms": list(r.get("terms") or []),
                     "error": r.get("error")}
                    for clip, by in self.parts.items() for name, r in by.items()]
        return [{"clip": c, "captioner": "given", "key": c, "text": t.removeprefix("given: "),
                 "terms": list(self.terms.get(c, [])), "error": None}
                for c, t in self.items()]


def caption(rec: Recording, captioners: Sequence[str] = ("acoustic", "labels"),
            options: Mapping[str, Mapping[str, Any]] | None = None, progress: bool = True
            ) -> Captions:
    """Caption every clip with ``captioners``: :class:`Captions` (clip id -> the combined
    caption, ``.terms``: clip id -> the union of the captioners' evidence terms). Failed
    captions are left out and reported on stderr. Clips given as arrays are heard from the
    waveforms ``rec`` keeps (:meth:`Recording.audio`, resampled to each captioner's
    ``sample_rate``); they have no labels, so ``labels`` adds nothing. The captioners first see
    all of ``rec``'s clips, as in the captions stage
    (:func:`~dissect.description.captioners.combine.fit_probe_set`: a numeric label column that
    is a function of a named one, ESC-50's ``target``, is dropped, with a line on stderr).

    Raises:
        ValueError: a captioner that needs audio, and clips given as arrays whose waveforms
            ``rec`` does not hold (a recording read back with :meth:`Recording.load`, which
            keeps no audio); the message says how many and what to do instead.
    """
    from tqdm.auto import tqdm

    from dissect.datasets import Clip
    from dissect.description.captioners import build_captioner, combine
    from dissect.description.captioners.base import annotate
    from dissect.description.captioners.combine import fit_probe_set

    caps = [build_captioner(name, **dict((options or {}).get(name) or {}))
            for name in captioners]
    deaf = [row["id"] for i, row in enumerate(rec.clips) if not rec.has_audio(i)]
    hearing = [cap.name for cap in caps if cap.sample_rate]
    if deaf and hearing:
        shown = ", ".join(deaf[:3]) + (", ..." if len(deaf) > 3 else "")
        raise ValueError(
            f"caption(): {len(deaf)} clip(s) ({shown}) were recorded from in-memory arrays "
            f"and this Recording holds no waveforms for "
            f"them (Recording.save does not write audio, so a loaded recording of arrays has "
            f"none), but captioner(s) {hearing} need audio: caption the Recording that "
            f"record() returned, or give describe() captions=")
    fit_probe_set(caps, rec.clips)
    out = Captions(plain={}, parts={})
    failed = []
    for i, row in enumerate(tqdm(rec.clips, desc="caption", unit="clip", disable=not progress,
                                 file=sys.stderr)):
        clip = Clip(row["id"], Path(row["path"] or f"<array {row['id']}>"),
                    row.get("labels", {}), row.get("concepts", {}), row.get("metadata", {}))
        texts: dict[str, str] = {}
        terms: list[str] = []
        by_rate: dict[int, Any] = {}  # one decode per rate, as in the caption stage
        parts = out.parts.setdefault(row["id"], {})
        for cap in caps:
            try:
                audio = None
                if cap.sample_rate:
                    if cap.sample_rate not in by_rate:
                        by_rate[cap.sample_rate] = rec.audio(i, cap.sample_rate)
                    audio = by_rate[cap.sample_rate]
                ann = annotate(cap, clip, audio)
                texts[cap.name] = ann.text
                terms += [t for t in ann.terms if t not in terms]
                parts[cap.name] = {"text": ann.text, "terms": list(ann.terms), "error": None}
                if ann.info:
                    parts[cap.name]["info"] = ann.info
            except Exception as exc:  # one clip's failure never stops the rest
                why = f"{type(exc).__name__}: {exc}"
                failed.append(f"{row['id']} ({cap.name}: {why})")
                parts[cap.name] = {"text": None, "terms": [], "error": why[:500]}
        if texts:
            out[row["id"]] = combine({k: v for k, v in texts.items() if v})
            out.plain[row["id"]] = combine({k: v for k, v in texts.items() if v}, named=False)
            out.terms[row["id"]] = terms
    if failed:
        print(f"[caption] {len(failed)} caption(s) failed: {failed[0]}", file=sys.stderr)
    return out


#: What :func:`describe` says of one neuron: the run model's per-neuron row
#: (:class:`dissect.rows.NeuronRow`: ``text``, ``kind``, ``test``, ``evidence``, ``summary``,
#: ``low``, ``llm``, ``concepts``, ``keywords``, ``status``, ``shown_terms``, ...), the same row
#: the report, the scores and concept pruning read.
Description = NeuronRow


@dataclass
class Descriptions:
    """Descriptions of every neuron of a recording: AND's summaries and closed-set concepts
    (``summaries.jsonl``, ``concepts.jsonl``), the evidence and the explain-then-score rows
    (``evidence.jsonl``, ``explanations.jsonl``), one row per neuron in the same order, and the
    :class:`Captions` they were made from (``captions``: texts and evidence terms per clip,
    ``captions.jsonl``; None when not known), which :func:`evaluate` scores against."""

    summaries: list[dict[str, Any]]
    concepts: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    methods: list[str]
    captioners: list[str]
    captions: Captions | None = field(default=None, repr=False, compare=False)

    @staticmethod
    def _one(s: Mapping[str, Any], c: Mapping[str, Any], e: Mapping[str, Any],
             x: Mapping[str, Any]) -> Description:
        return neuron_row(s["layer"], int(s["unit"]), s, c, e, x)

    def _rows(self):
        return zip(self.summaries, self.concepts, self.evidence, self.explanations, strict=True)

    def __getitem__(self, key: Neuron) -> Description:
        """The description of neuron ``(layer, unit)``.

        Raises:
            KeyError: no such neuron (or a key that is not a ``(layer, unit)`` pair).
        """
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"index descriptions by (layer, unit), got {key!r}")
        layer, unit = key
        for s, c, e, x in self._rows():
            if s["layer"] == layer and s["unit"] == int(unit):
                return self._one(s, c, e, x)
        raise KeyError(f"no description of neuron {key!r}")

    def __iter__(self) -> Iterator[Description]:
        """Every neuron's :class:`Description`, in recording order."""
        return (self._one(*r) for r in self._rows())

    def __contains__(self, key: object) -> bool:
        return key in set(self.keys())

    def keys(self) -> list[Neuron]:
        """``(layer, unit)`` of every neuron, in recording order."""
        return [(s["layer"], int(s["unit"])) for s in self.summaries]

    def items(self) -> Iterator[tuple[Neuron, Description]]:
        return (((d.layer, d.unit), d) for d in self)

    def __len__(self) -> int:
        return len(self.summaries)

    def __repr__(self) -> str:
        layers = list(dict.fromkeys(s["layer"] for s in self.summaries))
        shown = sum(not x.get("no_clear_concept") for x in self.explanations)
        return (f"Descriptions({len(self)} neurons in {len(layers)} layer(s), {shown} with a "
                f"confirmed description, methods={self.methods})")

    def to_pandas(self):
        """One row per neuron (a ``pandas.DataFrame``): ``layer``, ``unit``, ``description``,
        ``kind``, ``status``, the shown description's test ``correlation``/``detection``/
        ``auprc``, the top evidence term and AND's summary."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Descriptions.to_pandas() needs pandas (pip install pandas); "
                              ".table() gives the same rows as CSV text") from None
        rows = []
        for d, x in zip(self, self.explanations, strict=True):
            top = d.evidence[0] if d.evidence else {}
            rows.append({"layer": d.layer, "unit": d.unit, "description": d.text,
                         "kind": d.kind, "status": x.get("status"),
                         "test_correlation": d.test.get("correlation"),
                         "test_detection": d.test.get("detection"),
                         "test_auprc": d.test.get("auprc"),
                         "top_term": top.get("term"), "top_term_auroc": top.get("auroc"),
                         "and_summary": d.summary})
        return pd.DataFrame(rows)

    def table(self) -> str:
        """``descriptions.csv`` as text (the shown description, its test score, evidence)."""
        from dissect.explain.explainer import explanations_csv

        return explanations_csv(self.explanations, self.evidence, self.summaries,
                                self.concepts, self.captioners)

    def save(self, run_dir: str | Path) -> Path:
        """Write ``summaries.jsonl``, ``concepts.jsonl``, ``evidence.jsonl``,
        ``explanations.jsonl``, ``descriptions.csv`` and, when :attr:`captions` is known,
        ``captions.jsonl`` (:meth:`Captions.rows`, as the caption stage writes it).

        Raises:
            RunDirRefused: ``run_dir`` is not new, empty or dissect's (as
                :meth:`Recording.save`); nothing is written.
        """
        run_dir = artifacts.claim_run_dir(run_dir)
        artifacts.mark_run_dir(run_dir)
        artifacts.write_jsonl(run_dir / artifacts.SUMMARIES, self.summaries)
        artifacts.write_jsonl(run_dir / artifacts.CONCEPTS, self.concepts)
        artifacts.write_jsonl(run_dir / artifacts.EVIDENCE, self.evidence)
        artifacts.write_jsonl(run_dir / artifacts.EXPLANATIONS, self.explanations)
        artifacts.write_text(run_dir / artifacts.DESCRIPTIONS, self.table())
        if self.captions is not None:
            artifacts.write_jsonl(run_dir / artifacts.CAPTIONS, self.captions.rows())
        return run_dir


def describe(rec: Recording, captions: Mapping[str, str] | None = None, llm: Any = None, *,
             config: Any = None, terms: Mapping[str, Sequence[str]] | None = None,
             method: str | None = None, k: int | None = None, keywords: bool | None = None,
             concept_set: str | None = None, progress: bool = False) -> Descriptions:
    """Describe every recorded neuron, in memory: AND's modules B, A, C, then explain-then-score
    (the evidence terms, the candidate descriptions, each scored on held-out clips; the shown
    text is the best on the validation clips, with its test score), as ``dissect run`` does.

    Args:
        rec: from :func:`record` (``dense=True``: every clip's pooled value is needed).
        captions: clip id -> caption; None captions the clips with ``config.caption``'s
            captioners (:func:`caption`).
        llm: ``rules`` (the rule-based contrastive summariser, no LLM), ``auto``,
            ``transformers`` (SmolLM2 offline), ``openai``, or a client object (anything with
            ``.name`` and ``.generate``); None: ``config.llm`` (rules by default).
        config: a :class:`~dissect.config.DescribeConfig` (the ``summarize``, ``concepts``,
            ``explain``, ``llm`` and ``caption`` sections of ``dissect run``; each field is
            documented by ``dissect config <section>``). None: the defaults.
        terms: clip id -> evidence terms; default ``captions.terms`` (a :class:`Captions`).
            Without any, there is no evidence, and AND's summaries are shown (``method=and``,
            said on stderr), still scored on the held-out clips.
        method / k / keywords / concept_set: shortcuts for ``config.explain.method``
            (``evidence`` | ``and``), ``config.summarize.k``, ``config.concepts.keywords``
            and ``config.concepts.concept_set``.

    Returns:
        :class:`Descriptions` (index it with ``(layer, unit)``, iterate it, ``.to_pandas()``).

    Raises:
        ConfigValueError: a field out of range or not one of its choices (named with the
            value), before anything runs.
        ValueError: a closed-set method other than ``db`` (it needs a run directory).
    """
    import dataclasses

    from dissect.config import DescribeConfig, check_fields

    cfg = config if config is not None else DescribeConfig()
    if not isinstance(cfg, DescribeConfig):
        raise TypeError(f"describe(): config must be a DescribeConfig, got {type(cfg).__name__}")
    short = {"explain": {"method": method}, "summarize": {"k": k},
             "concepts": {"keywords": keywords, "concept_set": concept_set}}
    for section, values in short.items():
        given = {key: v for key, v in values.items() if v is not None}
        check_fields(section, given, label="describe(): ")
        sub = dataclasses.replace(getattr(cfg, section), **given)
        cfg = dataclasses.replace(cfg, **{section: sub})
    if isinstance(llm, str):
        cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, client=llm))
    from dissect.description.captions import label_terms_of_parts
    from dissect.description.concepts import captioned, db_matrix, load_concept_set
    from dissect.description.llm import build_llm
    from dissect.description.llm.base import GenerationParams
    from dissect.description.neurons import (
        closed_labels,
        concept_rows,
        keyword_rows,
        summarize,
        summary_client,
    )
    from dissect.explain.explainer import explain

    s, c, x = cfg.summarize, cfg.concepts, cfg.explain
    methods = list(c.closed_methods)
    bad = set(methods) - {"db"}
    if bad:
        raise ValueError(f"describe(): closed_methods {sorted(bad)} need a run directory "
                         "(use dissect.run); in memory: db")
    given = captions is not None
    captions = captions if given else caption(rec, cfg.caption.captioners, cfg.caption.options,
                                              progress=progress)
    terms = dict(terms if terms is not None else getattr(captions, "terms", {}) or {})
    if x.method == "evidence" and not any(terms.values()):
        print("[describe] no evidence terms (captions without .terms and no terms=): AND's "
              "summaries are shown (method=and), scored on the held-out clips", file=sys.stderr)
        x = dataclasses.replace(x, method="and")
    client = llm if llm is not None and not isinstance(llm, str) else build_llm(cfg.llm)
    params = GenerationParams(temperature=cfg.llm.temperature, max_tokens=cfg.llm.max_tokens,
                              top_p=cfg.llm.top_p, seed=cfg.llm.seed)
    summaries, _ = summarize(rec.neurons(), captions, summary_client(client, x.method), params,
                             k=s.k,
                             threshold=s.calibration_threshold,
                             max_llm_neurons=s.max_llm_neurons, head_layer=rec.head_layer)
    cset = load_concept_set(c.concept_set)
    closed: dict = {}
    from dissect.description.embed import default_embedder
    from dissect.explain.splits import assign_splits, split_keys

    embedder = default_embedder()
    strata, groups = split_keys(rec.clips)
    if methods:
        db_text = getattr(captions, "plain", None) or captions  # no captioner names
        text = [db_text.get(cid, "") for cid in rec.clip_ids]
        # the closed-set label is chosen on the fit clips only (as the explain split)
        fit = assign_splits(rec.clip_ids, tuple(x.splits), x.split_seed, strata,
                            groups) == "fit"
        keep = captioned(text) & fit
        P = db_matrix(embedder.encode([t for t, k_ in zip(text, keep, strict=True) if k_]),
                      embedder.encode(cset.prompts))
        closed = closed_labels(list(rec.layers),
                               lambda layer: torch.as_tensor(rec.activations(layer)),
                               {"db": P}, cset, c.similarity, c.top_concepts, {"db": keep})
    kw = keyword_rows(summaries, None, c.negation_window) if c.keywords \
        else [{} for _ in summaries]
    rows = concept_rows(summaries, closed, kw, c.similarity, cset.name)
    labelled = label_terms_of_parts(getattr(captions, "parts", None))
    out = explain(rec.clip_ids, captions, terms, rec.activations, summaries, rows, x, client,
                  params, embedder=embedder, progress=progress, strata=strata, groups=groups,
                  max_llm_neurons=s.max_llm_neurons, negation_window=c.negation_window,
                  label_terms=labelled)
    used = Captions(captions, terms, getattr(captions, "plain", None),
                    getattr(captions, "parts", None))
    return Descriptions(summaries, rows, out.evidence, out.explanations, methods,
                        ["given"] if given else list(cfg.caption.captioners), used)


def evaluate(rec: Recording, desc: Descriptions, captions: Mapping[str, str] | None = None,
             **options: Any) -> dict[str, Any]:
    """The scores of ``dissect evaluate`` (``scores.json``) for an in-memory recording and its
    descriptions.

    Args:
        rec / desc: from :func:`record` and :func:`describe`.
        captions: clip id -> caption to score against; None: the captions ``desc`` was made
            from (``desc.captions``).
        options: go to :func:`dissect.evaluation.scores.evaluate_run` (``holdout``,
            ``quantile``, ``method``, ...).

    The scorers read run-directory files, so the inputs are written to a temporary directory
    that is removed afterwards.

    Raises:
        ValueError: no ``captions`` given and ``desc`` holds none.
    """
    from dissect.evaluation.scores import evaluate_run

    if captions is None and desc.captions is None:
        raise ValueError("evaluate(): no captions: these Descriptions hold none (made without "
                         "describe()?); pass captions=<clip id -> caption>")
    with tempfile.TemporaryDirectory(prefix="dissect-eval-") as tmp:
        run = rec.save(tmp)
        desc.save(run)
        if captions is not None:
            given = captions if isinstance(captions, Captions) else Captions(captions)
            artifacts.write_jsonl(run / artifacts.CAPTIONS, given.rows())
        return evaluate_run(run, **options)


# --------------------------------------------------------------------------- using
@contextlib.contextmanager
def ablated(model: Model, neurons: Iterable[Neuron] | Mapping[str, Iterable[int]]
            ) -> Iterator[dict[str, list[int]]]:
    """Zero ``neurons`` (``(layer, unit)`` pairs or ``{layer: units}``) inside the block, on
    :meth:`Model.hooks`; the model is untouched afterwards. Yields ``{layer: units}``. The
    same as :func:`dissect.pruning.ablated` (one signature; see there)."""
    from dissect.pruning.ablate import ablated as _ablated

    with _ablated(model, neurons) as groups:
        yield groups


@contextlib.contextmanager
def steered(model: Model, scales: Mapping[Neuron, float] | None = None, *,
            direction: Mapping[str, Any] | None = None, alpha: float = 1.0
            ) -> Iterator[list[str]]:
    """Scale units (``{(layer, unit): s}``, ``s = 0`` ablates) and/or add ``alpha * d`` to a
    layer's frames (``direction={layer: d [U]}``) inside the block, on :meth:`Model.hooks`.
    Yields the steered layers. The same as :func:`dissect.pruning.steered` (see there for the
    errors)."""
    from dissect.pruning.ablate import steered as _steered

    with _steered(model, scales, direction=direction, alpha=alpha) as layers:
        yield layers


def prune(model: Model, neurons: Iterable[Neuron] | Mapping[str, Iterable[int]]
          ) -> dict[str, np.ndarray]:
    """Zero ``neurons`` permanently by editing weights (in place); returns the masks
    ``{layer: bool [U]}`` (True = pruned), which :func:`dissect.pruning.ablate.save_masks`
    writes."""
    from dissect.pruning.ablate import apply_masks, export_masks

    masks = export_masks(neurons, model.sites())
    apply_masks(model.module, model.adapter, masks)
    return masks


def forward(model: Model, clips: Any, layers: Sequence[str] = (), *,
            sample_rate: int | None = None) -> dict[str, Any]:
    """One forward pass on a few clips: ``{"logits": [B, C] | None, layer: frames [B, T, U]}``
    (frames of padding are zero; :meth:`Model.run_with_cache` gives the same as ``(logits,
    cache)``). Runs through the same hooks as recording, so it sees any active
    :meth:`Model.hooks`, :func:`ablated` or :func:`steered`."""
    from dissect.audio import ClipPolicy
    from dissect.recording.hooks import run_sites

    c = _as_clips(clips, sample_rate)
    waves = [c.waveform(i, model.sample_rate, ClipPolicy()) for i in range(len(c.rows))]
    sites = model.adapter.resolve_layers(model.module, list(layers)) if layers else []
    out = run_sites(model.adapter, model.module, waves, sites, device=model.device)
    result: dict[str, Any] = {"logits": out.logits}
    for name, f in out.sites.items():
        result[name] = torch.where(f.valid[:, :, None], f.frames, 0.0)
    return result


# --------------------------------------------------------------------------- the pipeline
def run(recipe: str = "default", overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """``dissect run recipe=<recipe> <overrides...>``: the whole pipeline into a run
    directory (returned)."""
    from dissect import pipeline
    from dissect.config import compose

    return pipeline.run(compose([f"recipe={recipe}", *overrides]), progress=progress)
