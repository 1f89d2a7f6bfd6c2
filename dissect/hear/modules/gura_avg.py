"""HEAR module: GURA's "Avg" ensemble: the element-wise mean of members' last layers.

``load_model(model_file_path="", members=None, projection="orthogonal", dim=None, seed=0,
gura_compat=False, device="cpu")``

* ``model_file_path``: ``""`` uses the offline members ``crepe_full,crepe_tiny,logmel`` (all
  shipped, no download). Otherwise the directory (or hub id) of a speech model (HuBERT /
  wav2vec 2.0 / WavLM / Whisper, detected from its ``config.json``), averaged with CREPE full
  like GURA's "Avg Hubert+Crepe": members ``<speech>@<path>,crepe_full``.
* ``members``: an explicit spec ``module[:layer][@model_file_path],...`` overriding the above
  (e.g. ``"hubert_base@/models/hubert,crepe_full"``).
* Widths: every member is mapped to the widest member's width (or ``dim``) by a fixed random
  orthogonal map (``projection="orthogonal"``, seed ``seed + m``; the widest member is kept as
  it is) or zero-padding (``projection="pad"``); see :mod:`dissect.ensemble.ops`.
* Time: members are interpolated in time onto the finest member's timestamps
  (:mod:`dissect.ensemble.align`); the timestamps returned are that grid.
* ``gura_compat=True``: GURA's quirks (channel-axis interpolation to 1024, index stretching),
  for comparison only.
* Scene: the mean of the members' scene embeddings (each a mean over time).
"""

from dissect.ensemble.model import EnsembleModel
from dissect.hear.api import get_scene_embeddings, get_timestamp_embeddings
from dissect.hear.modules._build import build_members, ensemble_members

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

OFFLINE = "crepe_full,crepe_tiny,logmel"
SPEECH = "{module}@{path},crepe_full"


def load_model(model_file_path: str = "", members=None, projection: str = "orthogonal",
               dim=None, seed: int = 0, gura_compat: bool = False,
               device: str = "cpu") -> EnsembleModel:
    spec = ensemble_members(model_file_path, members, OFFLINE, SPEECH)
    return EnsembleModel(build_members(spec, device), "avg", projection=projection, dim=dim,
                         seed=seed, gura_compat=gura_compat, name="gura_avg")
