"""HEAR module: HuBERT Base (self-supervised on LibriSpeech 960 h; not fine-tuned).

``load_model(model_file_path="", layer="last", device="cpu", do_normalize=None, **chunking)``

* ``model_file_path``: ``""`` loads the hub checkpoint ``facebook/hubert-base-ls960``
  (from the local cache only when ``HF_HUB_OFFLINE=1``); otherwise a local transformers
  directory (config.json + weights, e.g. a snapshot of that checkpoint or a fine-tuned one)
  or another hub id.
* ``layer``: ``last`` = ``last_hidden_state``, ``fusion`` = mean of all ``hidden_states``
  (GURA's fusion, the pre-transformer features included), ``hidden_states.K``, or a block name
  ``encoder.layers.K``.
* Input: the raw waveform, normalised per clip when the checkpoint's preprocessor config says
  so (``do_normalize`` overrides; GURA skipped it).
* Timestamps: 20 ms frames, frame ``k`` centred at ``12.47 + 20 k`` ms (the centre of its
  400-sample receptive field); the frame count is the conv stack's ``(n - 400) // 320 + 1``.
  Long audio: 10 s chunks with 1 s of context on either side.
* Scene: mean of the timestamp embeddings. Sample rate 16 kHz.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("hubert_base")
