"""Build an adapter (and load its model) from a model config: the one place that does it.

A model config is the ``model`` section of a run's config (``ModelConfig``, or the same keys as
a plain mapping read back from ``config.yaml``): ``name``, ``source``, ``site``, ``options``,
``device``. Recording, the Ray workers, the report's activation traces, pruning, HEAR modules
and guided ensembles all go through :func:`adapter_from_config` / :func:`load_from_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dissect.models.base import Adapter, pick_device
from dissect.models.registry import get_adapter


def _plain(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping):
        return dict(cfg)
    try:  # an OmegaConf DictConfig
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # a dataclass or any object with the fields as attributes
        return {k: getattr(cfg, k) for k in ("name", "source", "site", "options", "device")
                if hasattr(cfg, k)}


def adapter_from_config(cfg: Any, *, site: str | None = None,
                        options: Mapping[str, Any] | None = None,
                        default_name: str | None = None,
                        default_source: str | None = None) -> Adapter:
    """The adapter a model config describes.

    Args:
        cfg: a ``ModelConfig``, a DictConfig or a plain mapping with ``name``, ``source``,
            ``site`` (default ``ffn``) and ``options``.
        site: overrides ``cfg.site`` (e.g. ``block`` for HEAR embeddings).
        options: merged over ``cfg.options`` (e.g. ``{"hop_ms": 20}``).
        default_name / default_source: used when ``cfg`` has no name / source (older runs
            recorded them only in the record stage's manifest info).

    Raises:
        ValueError: no adapter name anywhere.
        KeyError: an unknown adapter name (the message lists the registered ones).
    """
    c = _plain(cfg)
    name = c.get("name") or default_name
    if not name:
        raise ValueError("model config has no adapter name (model.name)")
    opts = {**dict(c.get("options") or {}), **dict(options or {})}
    return get_adapter(name, source=c.get("source") or default_source,
                       site_kind=site or c.get("site") or "ffn", **opts)


def load_from_config(cfg: Any, device: str | torch.device | None = None, **kwargs: Any
                     ) -> tuple[Adapter, nn.Module, torch.device]:
    """``(adapter, model, device)``: the adapter of :func:`adapter_from_config` (``kwargs`` go
    there) and its model loaded in eval mode on ``device`` (default: the config's ``device``,
    else cuda when available, else cpu). Each SAE file of the config's ``features`` adds its
    site ``sae:<layer>`` (:func:`dissect.models.sae.attach`).

    Raises:
        LayerNameError / ValueError / FileNotFoundError: an SAE file that does not fit the
            model (see :func:`dissect.models.sae.attach`).
    """
    from dissect.models.sae import attach

    adapter = adapter_from_config(cfg, **kwargs)
    dev = pick_device(str(device) if device is not None else _plain(cfg).get("device"))
    model = adapter.load(dev)
    for path in _plain(cfg).get("features") or ():
        attach(adapter, model, str(path), device=dev)
    return adapter, model, dev
