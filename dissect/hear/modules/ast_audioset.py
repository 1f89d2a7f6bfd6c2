"""HEAR module: the Audio Spectrogram Transformer fine-tuned on AudioSet (AST, Gong et al. 2021).

``load_model(model_file_path="", layer="last", device="cpu", output_hop_ms=50.0, **chunking)``

* ``model_file_path``: ``""`` loads the hub checkpoint ``MIT/ast-finetuned-audioset-10-10-0.4593``
  (from the local cache only when ``HF_HUB_OFFLINE=1``); otherwise a local transformers AST
  directory or another hub id.
* ``layer``: ``last`` = the last block's output tokens, ``fusion`` = the mean of every block's
  output, or a block name ``audio_spectrogram_transformer.encoder.layer.K``. A frame is one
  time column of patch tokens (the mean over its frequency patches; CLS/distillation tokens are
  not frames).
* Input: kaldi fbank (128 bins, 25 ms / 10 ms) normalised with AudioSet statistics, as the
  checkpoint's feature extractor does; the padding to 1024 frames is never a frame.
* Timestamps: AST's own frames are 100 ms apart (time stride 10), centred at 87.5 + 100 k ms.
  HEAR wants <= 50 ms, so the timestamp embeddings are linearly interpolated in time onto a
  50 ms grid from the first to the last frame centre (``output_hop_ms``). Long audio: 8 s
  chunks with 1 s of context on either side (AST reads at most 10.24 s).
* Scene: mean of AST's own frames. Sample rate 16 kHz; 768 dims for the base model.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("ast_audioset")
