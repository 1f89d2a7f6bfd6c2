"""Description-guided HEAR models: the units a :class:`~dissect.ensemble.guided.UnitSelection`
kept, as a HEAR :class:`~dissect.hear.api.EmbeddingModel` (:func:`guided_member`), and an
:class:`~dissect.ensemble.model.EnsembleModel` of several (:func:`guided_ensemble`).

The selection itself (which units match which terms) is :mod:`dissect.ensemble.guided`; this
module rebuilds the run's model, so it sits above the ensemble operators in the HEAR layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dissect.datasets.espeak_digits import WORDS as DIGIT_WORDS
from dissect.description.captioners.base import note_name
from dissect.ensemble.guided import UnitSelection
from dissect.ensemble.model import EnsembleModel
from dissect.hear.api import EmbeddingModel


def label_terms(vocabulary: Sequence[str], evaluation: Sequence[str] = ()) -> dict[str, list[str]]:
    """The words a unit's description would use for each label of a HEAR task, for guidance:

    * a pitch task (``pitch_acc`` among ``evaluation``): MIDI number -> its note name
      (``"60"`` -> ``["C4"]``, MIDI 69 = A4);
    * a single digit -> its English word (``"7"`` -> ``["seven"]``; the bare digit would
      match numbers in any text);
    * anything else -> the label with ``_`` read as a space (``"bass_drum"`` ->
      ``["bass drum"]``).
    """
    pitch = "pitch_acc" in evaluation
    out: dict[str, list[str]] = {}
    for lab in vocabulary:
        if pitch and lab.isdigit():
            out[lab] = [note_name(int(lab))]
        elif len(lab) == 1 and lab.isdigit():
            out[lab] = [DIGIT_WORDS[int(lab)]]
        else:
            out[lab] = [lab.replace("_", " ").strip()]
    return out


def guided_member(selection: UnitSelection, *, device: str = "cpu",
                  model: Mapping[str, Any] | None = None,
                  adapter_options: Mapping[str, Any] | None = None, **embedding_options: Any):
    """A HEAR :class:`~dissect.hear.api.EmbeddingModel` of the selected units.

    Args:
        model: overrides of the run's model config (``name``, ``source``, ``site``).
        adapter_options: overrides of the run's ``model.options`` (e.g. ``{"hop_ms": 20}``).
    """
    from dissect.models.load import adapter_from_config

    if not selection.units:
        raise ValueError(f"{selection.run_dir}: no unit matched {selection.terms}")
    cfg = {**selection.model, **dict(model or {})}
    if "name" not in cfg:
        raise ValueError(f"{selection.run_dir}: no model config; pass model={{'name': ...}}")
    adapter = adapter_from_config(cfg, options=adapter_options)
    net = adapter.load(device)
    embedding_options.setdefault("name", f"guided:{cfg['name']}")
    return EmbeddingModel(adapter, net, dict(selection.units), **embedding_options)


def guided_ensemble(selections: Sequence[UnitSelection], op: str = "cat", *,
                    device: str = "cpu", **ensemble_options: Any):
    """An :class:`~dissect.ensemble.model.EnsembleModel` of one guided member per selection."""
    members = [guided_member(s, device=device) for s in selections]
    return EnsembleModel(members, op, **ensemble_options)
