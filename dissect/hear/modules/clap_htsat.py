"""HEAR module: the audio tower of CLAP (HTSAT; LAION-CLAP, Wu et al. 2023).

``load_model(model_file_path="", layer="last", device="cpu", output_hop_ms=50.0,
config=None, **chunking)``

* ``model_file_path``: ``""`` loads the hub checkpoint ``laion/clap-htsat-unfused`` (from the local
  cache only when ``HF_HUB_OFFLINE=1``); otherwise a transformers ``ClapModel`` directory / hub
  id, or a laion-clap ``.pt`` checkpoint (then ``config`` names the matching HF config).
* ``layer``: ``last`` = the last Swin block's output, or a block name
  ``audio_model.audio_encoder.layers.S.blocks.B``. ``fusion`` is refused: the four stages have
  different frame timings. A frame is one time column of the stage's token grid (mean over its
  frequency rows).
* Timestamps (approximate, see :mod:`dissect.models.clap`): the last stage's columns are
  ``patch_stride x 2^(stages-1)`` mel columns apart (32 columns, 312.8 ms, for laion's 10 s
  four-stage models); they are linearly interpolated in time onto a grid of
  min(``output_hop_ms`` = 50 ms, own hop), so a checkpoint with finer frames keeps its own (the
  1 s two-stage test checkpoint: 8 columns, 31.4 ms). Long audio: 8 s chunks with 1 s of
  context on either side (CLAP reads at most 10 s; shorter windows are repeat-padded as its
  feature extractor does).
* Scene: mean of the last stage's own columns. Sample rate 48 kHz; 768 dims for HTSAT-base.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("clap_htsat")
