"""Config fields that document and check themselves.

Every config section is a dataclass whose fields are declared with :func:`option` (the valid
values: a :class:`Range` or a tuple of choices; whether the field enters the stage's hash) and
documented by an attribute docstring, the string literal on the lines right after the field::

    @dataclass
    class RecordConfig:
        k: int = option(10, COUNT)
        \"\"\"Most- and least-activating clips kept per neuron.\"\"\"

:func:`field_docs` reads those docstrings (the same ones Sphinx and IDEs show),
:func:`check` validates an instance, a mapping or an OmegaConf node against the declarations
(:class:`ConfigValueError` names the field and the value), :func:`hashed` lists the fields that
change a stage's results, and :func:`help_text` prints a section for ``dissect config``.

Hydra/OmegaConf structured configs do not accept ``typing.Literal``, so a field with a fixed set
of values is a ``str`` with ``choices``: checked like a ``Literal`` and listed in the help.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import numbers
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass
from functools import cache
from typing import Any


class ConfigValueError(ValueError):
    """A config field (or API argument) outside its valid values; the message names the field
    and the value, e.g. ``record.k=0: must be an integer >= 1``."""


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric field: ``low``/``high`` bounds (None: unbounded), each
    closed unless ``*_open``; ``integer`` asks for an int; ``none_ok`` allows null."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    none_ok: bool = False

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.none_ok
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
            what = f"{kind} in {lo}{self.low}, {self.high}{hi}"
        elif self.low is not None:
            what = f"{kind} {'>' if self.low_open else '>='} {self.low}"
        elif self.high is not None:
            what = f"{kind} {'<' if self.high_open else '<='} {self.high}"
        else:
            what = f"{kind}"
        return what + (" or null" if self.none_ok else "")


COUNT = Range(1, integer=True)  # how many of something: at least one
COUNT_OR_NULL = Range(1, integer=True, none_ok=True)
SOME = Range(0, integer=True)  # zero is a valid answer
POSITIVE = Range(0, low_open=True)  # a length, rate or time: more than zero
FRACTION = Range(0, 1)  # [0, 1]
PROBABILITY = Range(0, 1, low_open=True)  # (0, 1]: alphas, top_p
QUANTILE = Range(0, 1, low_open=True, high_open=True)  # (0, 1)

_META = "dissect"


def option(default: Any = MISSING, valid: Range | tuple[Any, ...] | None = None, *,
           factory: Any = MISSING, hashed: bool = True, none_ok: bool = False) -> Any:
    """A config field (a :func:`dataclasses.field`) with its valid values.

    Args:
        default / factory: the default value, or a zero-argument factory (lists, dicts).
        valid: a :class:`Range` (numbers) or a tuple of the allowed values (a choice; for a list
            field, of each element).
        hashed: False for a field that changes how or where a stage runs, not its results
            (progress bars, the Ray address, a cache directory): left out of every hash.
        none_ok: a choice field that may also be null.
    """
    meta = {_META: {"valid": valid, "hashed": hashed, "none_ok": none_ok}}
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _spec(f: dataclasses.Field) -> dict[str, Any]:
    return dict(f.metadata.get(_META) or {"valid": None, "hashed": True, "none_ok": False})


def hashed(cls: type) -> list[str]:
    """The fields of config class ``cls`` that change results (enter a stage's hash)."""
    return [f.name for f in dataclasses.fields(cls) if _spec(f)["hashed"]]


def choices(cls: type, name: str) -> tuple[Any, ...] | None:
    """The allowed values of field ``name`` of ``cls``, or None when it is not a choice."""
    valid = _spec(next(f for f in dataclasses.fields(cls) if f.name == name))["valid"]
    return valid if isinstance(valid, tuple) else None


def _get(values: Any, name: str) -> tuple[bool, Any]:
    if isinstance(values, Mapping):
        return (name in values, values[name] if name in values else None)
    if hasattr(values, name):
        return True, getattr(values, name)
    return False, None


def check(cls: type, values: Any, label: str = "") -> None:
    """Check every declared field of ``cls`` that ``values`` holds (a ``cls`` instance, a
    mapping or an OmegaConf node).

    Args:
        label: what goes before a field's name in messages (``"record."``, ``"record(): "``).

    Raises:
        ConfigValueError: the first bad field, e.g. ``record.k=0: must be an integer >= 1`` or
            ``record.reduction='median': must be one of 'mean', 'max'``.
    """
    for f in dataclasses.fields(cls):
        spec = _spec(f)
        valid = spec["valid"]
        if valid is None:
            continue
        present, value = _get(values, f.name)
        if not present:
            continue
        if isinstance(valid, Range):
            if not valid.ok(value):
                raise ConfigValueError(f"{label}{f.name}={value!r}: must be {valid.text()}")
            continue
        items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) \
            else [value]
        for item in items:
            if item is None and spec["none_ok"]:
                continue
            if item not in valid:
                allowed = ", ".join(repr(v) for v in valid) + (" or null" if spec["none_ok"]
                                                                else "")
                raise ConfigValueError(f"{label}{f.name}={value!r}: must be one of {allowed}")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its attribute docstring (the string literal right after the field in the
    class body; dedented, whitespace folded). Fields without one are left out."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen install): no docs, never an error
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                and isinstance(nxt.value.value, str):
            out[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return out


def _type_name(f: dataclasses.Field) -> str:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return t.replace("typing.", "")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        value = f.default_factory()
        return value if not dataclasses.is_dataclass(value) else f"<{type(value).__name__}>"
    return "???"


def help_rows(cls: type) -> list[dict[str, Any]]:
    """One row per field of ``cls``: ``name``, ``type``, ``default``, ``valid`` (text),
    ``hashed``, ``doc``."""
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        spec = _spec(f)
        valid = spec["valid"]
        if isinstance(valid, Range):
            vtext = valid.text()
        elif isinstance(valid, tuple):
            vtext = "one of " + ", ".join(map(str, valid)) + (" or null" if spec["none_ok"]
                                                              else "")
        else:
            vtext = ""
        rows.append({"name": f.name, "type": _type_name(f), "default": _default(f),
                     "valid": vtext, "hashed": spec["hashed"], "doc": docs.get(f.name, "")})
    return rows


def summary(cls: type) -> str:
    """The first paragraph of ``cls``'s docstring, on one line."""
    first = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
    return " ".join(first.split())


def help_text(section: str, cls: type, width: int = 96, prefix: str | None = None) -> str:
    """The help of config section ``section`` (its dotted path) as text: the class docstring's
    first paragraph, then each field as ``section.name: type = default`` with its meaning and
    valid values. ``prefix`` goes before each field name (default ``section.``; a command's own
    settings are top-level keys: ``""``)."""
    prefix = f"{section}." if prefix is None else prefix
    out = textwrap.wrap(f"{section}: {summary(cls)}", width) + [""]
    for row in help_rows(cls):
        default = "null" if row["default"] is None else repr(row["default"])
        out.append(f"  {prefix}{row['name']}: {row['type']} = {default}")
        if row["doc"]:
            out += textwrap.wrap(row["doc"], width, initial_indent="      ",
                                 subsequent_indent="      ")
        if row["valid"]:
            out.append(f"      valid: {row['valid']}")
        if not row["hashed"]:
            out.append("      not hashed: it changes how the stage runs, not its results")
    return "\n".join(out)
