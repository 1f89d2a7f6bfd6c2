"""HEAR module: GURA's "Cat" ensemble: members' last layers concatenated.

``load_model(model_file_path="", members=None, gura_compat=False, device="cpu")``

* ``model_file_path``: ``""`` uses the offline members ``crepe_full,crepe_tiny,logmel`` (all
  shipped, no download; 512 + 64 + 128 = 704 dims). Otherwise the directory (or hub id) of a
  speech model (HuBERT / wav2vec 2.0 / WavLM / Whisper, detected from its ``config.json``),
  concatenated with CREPE full like GURA's "Cat wav2vec2+crepe": ``<speech>@<path>,crepe_full``.
* ``members``: an explicit spec ``module[:layer][@model_file_path],...`` overriding the above.
* Time: members are interpolated in time onto the finest member's timestamps
  (:mod:`dissect.ensemble.align`); the timestamps returned are that grid.
* ``gura_compat=True``: GURA's quirks (every member interpolated over its channel axis to 1024,
  index stretching in time, interleaved order), for comparison only.
* Scene: the members' scene embeddings concatenated.
"""

from dissect.ensemble.model import EnsembleModel
from dissect.hear.api import get_scene_embeddings, get_timestamp_embeddings
from dissect.hear.modules._build import build_members, ensemble_members

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

OFFLINE = "crepe_full,crepe_tiny,logmel"
SPEECH = "{module}@{path},crepe_full"


def load_model(model_file_path: str = "", members=None, gura_compat: bool = False,
               device: str = "cpu") -> EnsembleModel:
    spec = ensemble_members(model_file_path, members, OFFLINE, SPEECH)
    return EnsembleModel(build_members(spec, device), "cat", gura_compat=gura_compat,
                         name="gura_cat")
