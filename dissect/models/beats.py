"""BEATs (microsoft/unilm ``beats``) from an official checkpoint file.

BEATs has no Hugging Face id: download ``BEATs_iter3.pt`` (self-supervised) or
``BEATs_iter3_plus_AS2M.pt`` (fine-tuned on AudioSet-2M, 527 classes) from
https://github.com/microsoft/unilm/tree/master/beats and pass ``model.source=/path/file.pt``.
The network is :mod:`dissect.models.beats_net` (official parameter names, strict loading).

Neurons (``site_kind``, layers ``i = 0 .. L-1``):
    ``ffn``: ``encoder.layers.{i}.fc1`` after the layer's activation (GELU);
    ``ffn_pre``: the same module before the activation;
    ``attention``: ``encoder.layers.{i}.self_attn.out_proj``;
    ``block``: ``encoder.layers.{i}`` (the residual stream after the layer);
    ``and`` (AND's neurons): two sites per layer, ``encoder.layers.{i}.fc1`` (before GELU) and
    ``encoder.layers.{i}.fc2``, every output unit of each: ``12 x (3072 + 768) = 46,080``
    neurons, plus the head (``46,130`` with a 50-class head);
    fine-tuned checkpoints add the head ``predictor`` (per-token class logits, pre-sigmoid).

Frames: BEATs tokens are 16x16 patches over (fbank frames x 128 mel bins), flattened
time-major (token ``t * 8 + f``). A site's ``[B, T_p * 8, U]`` output is reshaped to
``[B, T_p, 8, U]`` and **averaged over the 8 frequency patches**, giving one frame per 160 ms
time patch (frame ``t`` centred at ``87.5 + 160 t`` ms, the centre of its 16 fbank frames). This
keeps every token (AND kept only the first one) and gives time-resolved peaks; a frequency
band's own value is averaged with the others at the same time.

Padding: clips are zero-padded at the end to the longest fbank in the batch. A time patch is
valid when its 16 fbank frames are all real; padded tokens are zeroed before the positional conv
and masked as attention keys, and everything else is per token, so a clip's valid frames do not
depend on its batch (``padding_safe``; tested). Clips shorter than 2800 samples (175 ms, one
patch) are zero-padded to that length and keep one valid frame.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dissect.models.base import (
    TRANSFORMER_SITE_KINDS,
    Adapter,
    Batch,
    Site,
    WeightsUnavailableError,
    frames_from_lengths,
    unwrap,
)
from dissect.models.beats_net import (
    HOP_SAMPLES,
    N_MELS,
    WINDOW_SAMPLES,
    BEATs,
    fbank,
    load_beats_checkpoint,
    n_fbank_frames,
)
from dissect.models.hf import transformer_sites
from dissect.models.registry import register

DOWNLOAD_HINT = (
    "BEATs has no Hugging Face id. Download BEATs_iter3.pt (self-supervised) or "
    "BEATs_iter3_plus_AS2M.pt (AudioSet fine-tuned) from the official repository "
    "https://github.com/microsoft/unilm/tree/master/beats and pass "
    "model.source=/path/BEATs_iter3.pt"
)
FRAME_MS = 10.0  # fbank hop
WINDOW_MS = 25.0  # fbank window


@register
class BEATsAdapter(Adapter):
    """BEATs from a local official checkpoint.

    Options:
        labels: class names of a fine-tuned head: a list, a text file (one name per line) or a
            CSV with a ``display_name`` column (AudioSet's ``class_labels_indices.csv``).
            Default: the checkpoint's ``label_dict`` (AudioSet ids), else ``class_{i}``.
        trust_pickle: allow ``torch.load(weights_only=False)`` for checkpoints the safe loader
            refuses (only for files you trust).
    """

    name = "beats"
    sample_rate = 16000
    default_source = None
    padding_safe = True
    and_preset = True

    def __init__(self, source: str | None = None, site_kind: str = "ffn",
                 labels: Sequence[str] | str | None = None, trust_pickle: bool = False,
                 **options: Any):
        super().__init__(source, site_kind, **options)
        if site_kind not in TRANSFORMER_SITE_KINDS:
            raise ValueError(f"beats: site_kind must be one of {TRANSFORMER_SITE_KINDS}, "
                             f"got {site_kind!r}")
        self.labels = labels
        self.trust_pickle = trust_pickle
        self.patch = 16  # updated from the model's config in load() / sites()

    # ----------------------------------------------------------------- loading
    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        """Load the checkpoint at ``source``. Raises WeightsUnavailableError when there is none;
        BEATsCheckpointError (names the file) when the file is not a matching BEATs checkpoint."""
        if not self.source:
            raise WeightsUnavailableError(f"beats: no checkpoint given. {DOWNLOAD_HINT}")
        path = Path(str(self.source)).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(
                f"beats: checkpoint {str(self.source)!r} is not a local file. {DOWNLOAD_HINT}"
            )
        model, cfg = load_beats_checkpoint(path, device, trust_pickle=self.trust_pickle)
        self.patch = cfg.input_patch_size
        return model

    # ----------------------------------------------------------------- sites
    @property
    def hop_ms(self) -> float:
        """Time between frames (time patches), ms: 160 for 16x16 patches."""
        return self.patch * FRAME_MS

    @property
    def offset_ms(self) -> float:
        """Centre of time patch 0, ms: centre of its first and last fbank frame (87.5)."""
        return WINDOW_MS / 2 + (self.patch - 1) * FRAME_MS / 2

    def sites(self, model: nn.Module) -> dict[str, Site]:
        cfg = model.cfg
        self.patch = cfg.input_patch_size
        out = transformer_sites(
            model, "encoder.layers", self.site_kind, ffn="fc1", act="activation_fn",
            attention="self_attn.out_proj", hop_ms=self.hop_ms, offset_ms=self.offset_ms,
            linears=("fc1", "fc2"),
        )
        if model.predictor is not None:
            out["predictor"] = Site("predictor", "predictor", cfg.predictor_class, "output",
                                    self.hop_ms, self.offset_ms)
        return out

    # ----------------------------------------------------------------- running
    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """Normalised fbanks, zero-padded to the longest: ``inputs["fbank"]`` ``[B, T, 128]``
        and ``inputs["padding_mask"]`` bool ``[B, T]`` (True = padding); ``extra["n_frames"]``
        int64 ``[B]`` real fbank frames per clip."""
        min_samples = WINDOW_SAMPLES + (self.patch - 1) * HOP_SAMPLES
        feats, n_real = [], []
        for w in waveforms:
            x = torch.as_tensor(np.asarray(w, dtype=np.float32).reshape(-1))
            n_real.append(int(n_fbank_frames(len(x))))
            if len(x) < min_samples:
                x = torch.nn.functional.pad(x, (0, min_samples - len(x)))
            feats.append(fbank(x))
        T = max(f.shape[0] for f in feats)
        out = torch.zeros(len(feats), T, N_MELS)
        for b, f in enumerate(feats):
            out[b, : f.shape[0]] = f
        n_frames = torch.tensor(n_real, dtype=torch.int64)
        mask = torch.arange(T)[None, :] >= n_frames[:, None]
        lengths = torch.tensor([np.asarray(w).size for w in waveforms], dtype=torch.int64)
        return Batch({"fbank": out, "padding_mask": mask}, lengths, {"n_frames": n_frames})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        """Run the encoder; for a fine-tuned model return the clip logits ``[B, C]``
        (pre-sigmoid, averaged over valid tokens as the official model does)."""
        x, mask = model.encode(batch.inputs["fbank"], batch.inputs["padding_mask"])
        if model.predictor is None:
            return None
        return model.clip_logits(x, mask)

    def frames(self, site: Site, output: Any, batch: Batch) -> torch.Tensor:
        """Tokens ``[B, T_p * F, U]`` -> ``[B, T_p, U]``, the mean over the ``F`` frequency
        patches of each time patch (after ``site.transform``)."""
        x = unwrap(output)
        if site.transform is not None:
            x = site.transform(x)
        f = N_MELS // self.patch
        B, N, U = x.shape
        return x.float().view(B, N // f, f, U).mean(2)

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        """Time patches fully covered by real fbank frames (at least the first one)."""
        return frames_from_lengths(batch.extra["n_frames"] // self.patch, n_frames)

    # ----------------------------------------------------------------- head
    def class_names(self, model: nn.Module) -> list[str] | None:
        if model.predictor is None:
            return None
        n = model.cfg.predictor_class
        names = _read_labels(self.labels) if self.labels is not None else None
        if names is None and model.label_dict:
            d = model.label_dict
            if all(i in d for i in range(n)):
                names = [str(d[i]) for i in range(n)]
        if names is None:
            return [f"class_{i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"beats: {len(names)} class names for a head with {n} classes")
        return names

    def head_layer(self, model: nn.Module) -> str | None:
        return "predictor" if isinstance(model, BEATs) and model.predictor is not None else None


def _read_labels(labels: Sequence[str] | str) -> list[str]:
    """Class names from a list, a text file (one per line) or a CSV with ``display_name``."""
    if not isinstance(labels, str):
        return [str(x) for x in labels]
    path = Path(labels).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"beats: labels file not found: {path}")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "display_name" in rows[0]:
            if "index" in rows[0]:
                rows.sort(key=lambda r: int(r["index"]))
            return [r["display_name"] for r in rows]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]
