"""HEAR module: GURA's "Fuse Cat" ensemble: each member's fusion (mean of all its hidden
states), concatenated.

``load_model(model_file_path="", members=None, gura_compat=False, device="cpu")``

* ``model_file_path``: ``""`` uses the offline members
  ``crepe_full:fusion,crepe_tiny:fusion,logmel`` (CREPE fusion = the mean of conv1..conv6, each
  mapped to conv6's width by a fixed orthogonal map; 512 + 64 + 128 = 704 dims). Otherwise the
  directory (or hub id) of a speech model (HuBERT / wav2vec 2.0 / WavLM / Whisper, detected from
  its ``config.json``): members ``<speech>:fusion@<path>,crepe_full``, i.e. GURA's "Fuse Cat"
  with one speech model (CREPE is not fused, as in GURA).
* ``members``: an explicit spec ``module[:layer][@model_file_path],...`` overriding the above.
* Time: members are interpolated in time onto the finest member's timestamps
  (:mod:`dissect.ensemble.align`); the timestamps returned are that grid.
* ``gura_compat=True``: GURA's quirks (channel-axis interpolation to 1024, index stretching,
  interleaving), for comparison only.
* Scene: the members' scene embeddings concatenated.
"""

from dissect.ensemble.model import EnsembleModel
from dissect.hear.api import get_scene_embeddings, get_timestamp_embeddings
from dissect.hear.modules._build import build_members, ensemble_members

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

OFFLINE = "crepe_full:fusion,crepe_tiny:fusion,logmel:fusion"
SPEECH = "{module}:fusion@{path},crepe_full"


def load_model(model_file_path: str = "", members=None, gura_compat: bool = False,
               device: str = "cpu") -> EnsembleModel:
    spec = ensemble_members(model_file_path, members, OFFLINE, SPEECH)
    return EnsembleModel(build_members(spec, device), "cat", gura_compat=gura_compat,
                         name="gura_fusion")
