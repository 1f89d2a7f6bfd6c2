"""HEAR module: BEATs (Chen et al. 2023), from an official checkpoint file.

``load_model(model_file_path, layer="last", device="cpu", output_hop_ms=50.0,
trust_pickle=False, **chunking)``

* ``model_file_path`` (required): a BEATs ``.pt`` checkpoint as Microsoft publishes it
  (``BEATs_iter3.pt``, ``BEATs_iter3_plus_AS2M.pt``, ...; there is no hub id). Without one,
  ``load_model`` raises ``WeightsUnavailableError`` with the download address.
* ``layer``: ``last`` = the last encoder layer's output, ``fusion`` = the mean of every layer's
  output, or ``encoder.layers.K``. A frame is one time patch (the mean over its 8 frequency
  patches).
* Timestamps: BEATs' frames are 160 ms apart (16 x 16 patches of 10 ms fbank frames), centred at
  87.5 + 160 k ms; they are linearly interpolated in time onto a 50 ms grid
  (``output_hop_ms``). Long audio: 10 s chunks with 1 s of context on either side.
* Scene: mean of BEATs' own frames. Sample rate 16 kHz; 768 dims.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("beats_iter3")
