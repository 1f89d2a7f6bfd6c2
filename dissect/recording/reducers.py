"""Streaming per-unit reducers over clips, with exact, associative merges.

All reducers consume *pooled* values: one value per (clip, unit), shape ``[B, U]``, plus the
global clip indices ``[B]`` (positions in ``clips.jsonl``). Memory is O(U * (k + bins)),
independent of the number of clips.

* :class:`TopK` keeps the k largest (or smallest) values per unit with their clip indices and
  peak times. Ties are broken by the lower clip index, so the result does not depend on batch
  order, and merging two states is exactly the one-pass result.
* :class:`Moments` keeps count, mean and M2 in float64 (Chan et al. parallel update): merging is
  associative up to float64 rounding.
* :class:`LogHistogram` is a fixed, DDSketch-style grid of log-spaced buckets for each sign,
  identical for every run, so states merge exactly by adding integer counts. Quantiles read off
  it have relative error at most ``alpha`` (for |x| >= ``min_abs``; smaller values count as 0).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch


def _order(values: torch.Tensor, index: torch.Tensor, largest: bool) -> torch.Tensor:
    """Row order along dim 0: by value (desc if largest), ties by ascending clip index."""
    by_index = torch.argsort(index, dim=0, stable=True)
    v = torch.gather(values, 0, by_index)
    by_value = torch.argsort(v, dim=0, descending=largest, stable=True)
    return torch.gather(by_index, 0, by_value)


@dataclass
class TopK:
    """The k most (``largest=True``) or least activating clips per unit.

    Attributes (``k' <= k`` rows until k clips have been seen):
        values: float32 ``[k', U]``, sorted best first.
        index: int64 ``[k', U]`` clip indices.
        peak_ms: float32 ``[k', U]`` time of the peak frame in ms (NaN when unknown).
    """

    k: int
    units: int
    largest: bool = True

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or self.k < 1:
            # k=0 kept nothing, and a negative k sliced off the end ([:-3] kept all but 3)
            raise ValueError(f"TopK: k must be an integer >= 1, got {self.k!r}")
        self.values = torch.empty(0, self.units, dtype=torch.float32)
        self.index = torch.empty(0, self.units, dtype=torch.int64)
        self.peak_ms = torch.empty(0, self.units, dtype=torch.float32)

    def update(
        self, values: torch.Tensor, index: torch.Tensor, peak_ms: torch.Tensor | None = None
    ) -> None:
        """Add ``values`` ``[B, U]`` of clips ``index`` ``[B]`` (peak times ``[B, U]`` in ms)."""
        B = values.shape[0]
        idx = index.to(torch.int64).view(B, 1).expand(B, self.units)
        pk = peak_ms if peak_ms is not None else torch.full((B, self.units), math.nan)
        self._absorb(values.float().cpu(), idx.cpu(), pk.float().cpu())

    def _absorb(self, values, index, peak):
        v = torch.cat([self.values, values])
        i = torch.cat([self.index, index])
        p = torch.cat([self.peak_ms, peak])
        order = _order(v, i, self.largest)[: self.k]
        self.values = torch.gather(v, 0, order)
        self.index = torch.gather(i, 0, order)
        self.peak_ms = torch.gather(p, 0, order)

    def merge(self, other: TopK) -> TopK:
        """Combine two states (exact: equals one pass over both inputs)."""
        if (other.k, other.units, other.largest) != (self.k, self.units, self.largest):
            raise ValueError("cannot merge TopK states with different k/units/direction")
        out = TopK(self.k, self.units, self.largest)
        out.values, out.index, out.peak_ms = self.values, self.index, self.peak_ms
        out._absorb(other.values, other.index, other.peak_ms)
        return out


@dataclass
class Moments:
    """Running count, mean and variance per unit (float64)."""

    units: int

    def __post_init__(self):
        self.count = torch.zeros(self.units, dtype=torch.float64)
        self.mean = torch.zeros(self.units, dtype=torch.float64)
        self.m2 = torch.zeros(self.units, dtype=torch.float64)
        self.min = torch.full((self.units,), math.inf, dtype=torch.float64)
        self.max = torch.full((self.units,), -math.inf, dtype=torch.float64)

    def update(self, values: torch.Tensor) -> None:
        """Add ``values`` ``[B, U]``."""
        x = values.detach().cpu().to(torch.float64)
        mean_b = x.mean(0)
        self._combine_parts(float(x.shape[0]), mean_b, ((x - mean_b) ** 2).sum(0),
                            x.amin(0), x.amax(0))

    def _combine_parts(self, n_b, mean_b, m2_b, min_b, max_b) -> None:
        """Chan et al.: fold a part with count ``n_b`` (scalar or ``[U]``) into this state."""
        n = self.count + n_b
        delta = mean_b - self.mean
        w = torch.where(n > 0, n_b / n.clamp(min=1e-300), torch.zeros_like(n))
        self.mean = self.mean + delta * w
        self.m2 = self.m2 + m2_b + delta * delta * self.count * w
        self.count = n
        self.min = torch.minimum(self.min, min_b)
        self.max = torch.maximum(self.max, max_b)

    def _combine(self, o: Moments) -> None:
        self._combine_parts(o.count, o.mean, o.m2, o.min, o.max)

    def merge(self, other: Moments) -> Moments:
        out = Moments(self.units)
        for name in ("count", "mean", "m2", "min", "max"):
            setattr(out, name, getattr(self, name).clone())
        out._combine(other)
        return out

    @property
    def var(self) -> torch.Tensor:
        """Population variance per unit ``[U]`` (NaN before any value)."""
        return torch.where(self.count > 0, self.m2 / self.count.clamp(min=1), math.nan)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()


@dataclass
class LogHistogram:
    """Per-unit counts on a fixed signed log grid (exactly mergeable; quantiles within ``alpha``).

    Bucket layout for ``n`` buckets per sign: ``[neg n-1 .. neg 0, zero, pos 0 .. pos n-1]``,
    where positive bucket j holds ``gamma^(j-1) * min_abs < x <= gamma^j * min_abs``
    (``gamma = (1 + alpha) / (1 - alpha)``) and values beyond the grid land in the end buckets.
    """

    units: int
    alpha: float = 0.02
    min_abs: float = 1e-6
    max_abs: float = 1e6

    def __post_init__(self):
        self.gamma = (1 + self.alpha) / (1 - self.alpha)
        self.per_sign = int(math.ceil(math.log(self.max_abs / self.min_abs, self.gamma))) + 1
        self.n_buckets = 2 * self.per_sign + 1
        self.counts = torch.zeros(self.units, self.n_buckets, dtype=torch.int64)
        self._offsets = torch.arange(self.units)[None, :] * self.n_buckets

    def _bucket(self, x: torch.Tensor) -> torch.Tensor:
        a = x.abs().to(torch.float32)
        j = torch.ceil(torch.log(a.clamp(min=self.min_abs) * (1.0 / self.min_abs))
                       * (1.0 / math.log(self.gamma)))
        j = j.clamp(0, self.per_sign - 1).to(torch.int64)
        zero = a < self.min_abs
        b = torch.where(x > 0, self.per_sign + 1 + j, self.per_sign - 1 - j)
        return torch.where(zero, torch.full_like(b, self.per_sign), b)

    def update(self, values: torch.Tensor) -> None:
        """Add ``values`` ``[B, U]``."""
        x = values.detach().cpu()
        b = self._bucket(x)  # [B, U]
        flat = (self._offsets + b).reshape(-1)
        self.counts.view(-1).index_add_(0, flat, torch.ones(1, dtype=torch.int64).expand_as(flat))

    def merge(self, other: LogHistogram) -> LogHistogram:
        if (other.units, other.alpha, other.min_abs, other.max_abs) != (
            self.units, self.alpha, self.min_abs, self.max_abs
        ):
            raise ValueError("cannot merge LogHistogram states with different grids")
        out = LogHistogram(self.units, self.alpha, self.min_abs, self.max_abs)
        out.counts = self.counts + other.counts
        return out

    def bucket_values(self) -> torch.Tensor:
        """Representative value of each bucket ``[n_buckets]`` (relative error <= alpha)."""
        j = torch.arange(self.per_sign, dtype=torch.float64)
        pos = self.min_abs * 2 * self.gamma**j / (self.gamma + 1)
        pos[0] = self.min_abs  # bucket 0 holds (min_abs/gamma, min_abs]
        return torch.cat([-pos.flip(0), torch.zeros(1, dtype=torch.float64), pos])

    def quantiles(self, qs: torch.Tensor) -> torch.Tensor:
        """Quantiles ``[len(qs), U]`` (lower quantile: the value at rank ceil(q * n))."""
        qs = torch.as_tensor(qs, dtype=torch.float64)
        cum = self.counts.cumsum(1).to(torch.float64)  # [U, n_buckets]
        total = cum[:, -1:]
        rank = torch.ceil(qs[None, :] * total).clamp(min=1)  # [U, Q]
        idx = torch.searchsorted(cum, rank)  # first bucket whose cum >= rank
        idx = idx.clamp(max=self.n_buckets - 1)
        vals = self.bucket_values()[idx]
        vals[total.expand_as(vals) == 0] = math.nan
        return vals.T.contiguous()
