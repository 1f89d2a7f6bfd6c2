"""Self-supervised speech encoders (``transformers``): HuBERT, wav2vec 2.0, WavLM, data2vec-audio.

All four share the wav2vec 2.0 layout: a strided conv feature encoder on the raw 16 kHz waveform
(20 ms frames for the standard strides ``(5, 2, 2, 2, 2, 2, 2)``) and a transformer at
``encoder.layers.{i}``. Sites per block ``i``:

- ``ffn`` / ``ffn_pre``: ``encoder.layers.{i}.feed_forward.intermediate_dense`` (``ffn`` applies
  ``intermediate_act_fn``);
- ``attention``: ``encoder.layers.{i}.attention.out_proj`` (WavLM: ``encoder.layers.{i}.attention``,
  whose fused ``multi_head_attention_forward`` never calls ``out_proj`` as a module);
- ``block``: ``encoder.layers.{i}``.

Frame timing: ``hop_ms`` = conv stride product / sample rate; ``offset_ms`` = centre of frame 0's
receptive field = ``(rf - 1) / 2`` samples (rf = 400 samples for the standard encoder: 12.47 ms).

Padding: clips are zero-padded; the ``attention_mask`` is passed only when
``feat_extract_norm == "layer"`` (as Hugging Face does). Valid frames come from
``model._get_feat_extract_output_lengths``. ``padding_safe`` is decided per checkpoint in
:meth:`load`: False for group-norm feature encoders (the first conv's GroupNorm normalises over
time, padding included) and for data2vec-audio (its stacked positional convs carry padding
into the last valid frames); True for layer-norm HuBERT / wav2vec 2.0 / WavLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import transformers
from torch import nn

from dissect.models.base import Adapter, Batch, Site, WeightsUnavailableError, frames_from_lengths
from dissect.models.hf import load_pretrained, transformer_sites
from dissect.models.registry import register


def conv_timing(config: Any, sample_rate: int) -> tuple[float, float, int]:
    """``(hop_ms, offset_ms, receptive_field_samples)`` of the conv feature encoder."""
    rf, jump = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=True):
        rf += (k - 1) * jump
        jump *= s
    return 1000.0 * jump / sample_rate, 1000.0 * (rf - 1) / 2 / sample_rate, rf


class SSLAdapter(Adapter):
    """Shared adapter for the wav2vec 2.0 family (subclasses set the class attributes).

    Options:
        do_normalize: force per-clip zero-mean/unit-variance normalisation on or off. Default:
            the checkpoint's ``preprocessor_config.json``; without one, True exactly for
            layer-norm feature encoders (fairseq trains those on normalised audio).
    """

    sample_rate = 16000
    padding_safe = False  # conservative until load() has seen the checkpoint
    has_hidden_states = True
    model_class: ClassVar[str] = ""
    attention_module: ClassVar[str] = "attention.out_proj"
    stacked_pos_conv: ClassVar[bool] = False

    def __init__(self, source: str | None = None, site_kind: str = "ffn", **options: Any):
        super().__init__(source, site_kind, **options)
        self.padding_safe = False
        self.do_normalize: bool | None = options.get("do_normalize")
        self.use_attention_mask = False
        self._model: nn.Module | None = None

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        model = load_pretrained(getattr(transformers, self.model_class), self.source)
        model = model.eval().to(device)
        layer_norm = getattr(model.config, "feat_extract_norm", "layer") == "layer"
        self.use_attention_mask = layer_norm
        self.padding_safe = layer_norm and not self.stacked_pos_conv
        if self.do_normalize is None:
            try:
                fe = load_pretrained(transformers.Wav2Vec2FeatureExtractor, self.source)
                self.do_normalize = bool(fe.do_normalize)
            except WeightsUnavailableError:
                self.do_normalize = layer_norm
        self._model = model
        return model

    def sites(self, model: nn.Module) -> dict[str, Site]:
        hop, offset, _ = conv_timing(model.config, self.sample_rate)
        return transformer_sites(
            model,
            "encoder.layers",
            self.site_kind,
            ffn="feed_forward.intermediate_dense",
            act="feed_forward.intermediate_act_fn",
            attention=self.attention_module,
            hop_ms=hop,
            offset_ms=offset,
        )

    def frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid encoder frames for ``lengths`` samples, int64 ``[B]``."""
        if self._model is None:
            raise RuntimeError(f"{self.name}: call load() before prepare()")
        fn = self._model._get_feat_extract_output_lengths
        try:
            n = fn(lengths, add_adapter=False)
        except TypeError:  # HuBERT has no adapter argument
            n = fn(lengths)
        return torch.as_tensor(n).long()

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """Zero-padded ``input_values`` ``[B, S]`` (S >= the receptive field, so a clip shorter
        than 25 ms still yields one frame), normalised per clip over its own samples. The
        ``attention_mask`` and ``n_frames`` count ``max(length, receptive field)`` samples."""
        if self._model is None:
            raise RuntimeError(f"{self.name}: call load() before prepare()")
        clips = [torch.as_tensor(np.asarray(w, dtype=np.float32)).flatten() for w in waveforms]
        lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
        _, _, rf = conv_timing(self._model.config, self.sample_rate)
        x = torch.zeros(len(clips), max(int(lengths.max()), rf))
        for i, c in enumerate(clips):
            if self.do_normalize:
                c = (c - c.mean()) / torch.sqrt(c.var(unbiased=False) + 1e-7)
            x[i, : len(c)] = c
        # a clip shorter than the receptive field is zero-padded to it, and that padding is its
        # own: the mask and the frame count cover it, so the clip has one valid frame in a batch
        # as alone (with 0 mask frames transformers would let its frame attend to the batch's
        # padding)
        valid = lengths.clamp(min=rf)
        inputs = {"input_values": x}
        if self.use_attention_mask:
            inputs["attention_mask"] = (torch.arange(x.shape[1])[None] < valid[:, None]).long()
        return Batch(inputs, lengths, {"n_frames": self.frame_counts(valid)})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor | None:
        model(**batch.inputs)
        return None

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        return frames_from_lengths(batch.extra["n_frames"], n_frames)


@register
class HubertAdapter(SSLAdapter):
    name = "hubert"
    default_source = "facebook/hubert-base-ls960"
    model_class = "HubertModel"


@register
class Wav2Vec2Adapter(SSLAdapter):
    name = "wav2vec2"
    default_source = "facebook/wav2vec2-base-960h"
    model_class = "Wav2Vec2Model"


@register
class WavLMAdapter(SSLAdapter):
    name = "wavlm"
    default_source = "microsoft/wavlm-base-plus"
    model_class = "WavLMModel"
    attention_module = "attention"  # returns (out_proj output, weights, position bias)


@register
class Data2VecAudioAdapter(SSLAdapter):
    name = "data2vec_audio"
    default_source = "facebook/data2vec-audio-base-960h"
    model_class = "Data2VecAudioModel"
    stacked_pos_conv = True
