"""HEAR module: data2vec-audio Base (self-supervised on LibriSpeech 960 h).

``load_model(model_file_path="", layer="last", device="cpu", do_normalize=None, **chunking)``

* ``model_file_path``: ``""`` loads the hub checkpoint ``facebook/data2vec-audio-base``
  (from the local cache only when ``HF_HUB_OFFLINE=1``); otherwise a local transformers
  directory or another hub id (e.g. the ASR-fine-tuned ``facebook/data2vec-audio-base-960h``
  that the dissect adapter defaults to).
* ``layer``: ``last`` = ``last_hidden_state``, ``fusion`` = mean of all ``hidden_states``,
  ``hidden_states.K``, or a block name ``encoder.layers.K``.
* Input: the raw waveform, normalised per clip when the preprocessor config says so.
  data2vec-audio is not padding-safe (its stacked positional convolutions see the padding), so
  HEAR batches, which are all one length, are the safe case.
* Timestamps: 20 ms frames centred at ``12.47 + 20 k`` ms, ``(n - 400) // 320 + 1`` of them.
  Long audio: 10 s chunks with 1 s of context on either side.
* Scene: mean of the timestamp embeddings. Sample rate 16 kHz; 768 dims.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("data2vec_audio_base")
