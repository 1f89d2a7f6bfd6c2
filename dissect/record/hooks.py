"""Forward-hook capture as a context manager that always removes its hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

HookFn = Callable[..., None]  # fn(output, *, site) -> None


@contextlib.contextmanager
def capture(model: nn.Module, sites: Mapping[str, str], fn: HookFn) -> Iterator[None]:
    """Call ``fn(output, site=name)`` after each forward of the modules named in ``sites``.

    Args:
        model: the network.
        sites: site name -> dotted module name inside ``model``.
        fn: receives the module's raw output and the site name; its return value is ignored,
            so capture never changes what the model computes.

    Raises:
        LookupError: a module name that ``model`` does not have (nothing is hooked then).
    """
    modules = {}
    for name, dotted in sites.items():
        try:
            modules[name] = model.get_submodule(dotted)
        except AttributeError as exc:
            raise LookupError(f"site {name!r}: model has no module {dotted!r}") from exc
    handles = []
    try:
        for name, module in modules.items():

            def hook(_mod: nn.Module, _inp: Any, output: Any, _name: str = name) -> None:
                fn(output, site=_name)

            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()
