"""Neuron-concept similarity functions (AND module A, the CLIP-Dissect set), over all neurons.

Every function takes

* ``U``: activations, float ``[N clips, n neurons]`` (a 1-D ``[N]`` vector counts as one neuron),
* ``P``: a clip-by-concept matrix ``[N, C]`` (DB: softmax of caption/concept similarity; TAB:
  audio-text cosine, or its offline stand-in; see :mod:`dissect.description.concepts`),

and returns a ``[n, C]`` similarity where higher means a better match. They are pure (inputs are
never modified), run on ``U``'s device (``P`` is moved there; nothing assumes CUDA), compute in
float32 (float64 when an input is float64), and are deterministic: the top clips of a neuron
come from a stable sort (among equal activations the lower clip index ranks first) and the only
randomness, ``rank_reorder``'s shuffle baseline, is drawn from a seeded CPU generator. The
gather-based functions work on chunks of neurons so that intermediates stay below
:data:`CHUNK_ELEMENTS` elements; chunking never changes a result.

All N clips are used for every neuron (the paper's formulation). The official AND code passed
only the K=5 top clips of hidden-layer neurons, which left ``rank_reorder`` with zero clips (NaN)
and made the top-k parameters meaningless; here ``top_k`` is only clamped to N.

wpmi / soft_wpmi normaliser
---------------------------
Both compute a per-neuron log-likelihood ``L[n, c]`` from the neuron's top clips and subtract
``lam * log p(c)``. CLIP-Dissect estimates ``log p(c)`` across the neurons of a layer,
``logsumexp_n L[n, c] - log n``. Called one neuron at a time (what the official AND code did for
DB) that estimate equals ``L`` itself: wpmi becomes ``(1 - lam) * L`` and soft_wpmi (``lam = 1``)
is identically 0, so its top-k is just concepts 0..k-1. Here the normaliser is chosen by
``normaliser``:

* ``"neurons"``: ``logsumexp`` over the neurons of ``reference`` (default: ``U`` itself) minus
  ``log n_ref``. Passing the layer's activations as ``reference`` makes a call on a subset of
  neurons return exactly the corresponding rows of the whole-layer call. With one neuron and no
  reference this reproduces the official degenerate behaviour (kept only for comparison).
* ``"prior"``: a normaliser from ``P`` alone: the log-likelihood expected for a neuron whose
  top clips are drawn uniformly at random (with replacement) from the probe set. With
  ``Q = softmax(a * P)`` and ``q_c = mean_j Q[j, c]`` this is ``k * log(q_c + min_prob)`` for
  wpmi and ``sum_i log(1 + p_i * (q_c - 1) + min_prob)`` for soft_wpmi. It does not depend on
  the other neurons, so rows never change with the batch of neurons.
* ``"auto"`` (default): ``"neurons"`` when ``reference`` is given or ``n > 1``; ``"prior"``
  for a single neuron without reference. A single-neuron call is therefore never degenerate,
  but it equals the row of a multi-neuron call only when both use the same normaliser (pass
  ``reference=`` or ``normaliser="prior"`` to both).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from dissect.registry import Registry

#: Upper bound on the elements of one per-chunk intermediate (``top_k * neurons * concepts``).
CHUNK_ELEMENTS = 1 << 24

_NORMALISERS = ("auto", "neurons", "prior")


# --------------------------------------------------------------------------------------------
# helpers


def _prepare(U, P) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors ``U [N, n]`` and ``P [N, C]`` on U's device, in a common float dtype."""
    U = torch.as_tensor(np.asarray(U) if not isinstance(U, torch.Tensor) else U)
    P = torch.as_tensor(np.asarray(P) if not isinstance(P, torch.Tensor) else P)
    if U.ndim == 1:
        U = U.unsqueeze(1)
    if U.ndim != 2 or P.ndim != 2:
        raise ValueError(f"U must be [N, n] and P [N, C]; got {tuple(U.shape)}, {tuple(P.shape)}")
    if U.shape[0] != P.shape[0]:
        raise ValueError(f"U and P disagree on the number of clips: {U.shape[0]} vs {P.shape[0]}")
    if U.shape[0] == 0:
        raise ValueError("need at least one clip")
    dtype = torch.float64 if torch.float64 in (U.dtype, P.dtype) else torch.float32
    return U.to(dtype=dtype), P.to(device=U.device, dtype=dtype)


def _chunks(n: int, per_neuron: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(1, per_neuron))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _top_clips(U: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and indices ``[k, n]`` of each neuron's k largest activations, descending.

    A stable sort: among equal activations the lower clip index comes first.
    """
    idx = torch.argsort(U, dim=0, descending=True, stable=True)[:k]
    return torch.gather(U, 0, idx), idx


def _check_normaliser(normaliser: str) -> None:
    if normaliser not in _NORMALISERS:
        raise ValueError(f"normaliser must be one of {_NORMALISERS}, got {normaliser!r}")


def _pmi_log_likelihood(
    U: torch.Tensor, logf: Callable[[torch.Tensor], torch.Tensor], Q: torch.Tensor, k: int
) -> torch.Tensor:
    """``L[n, c] = sum over the neuron's top-k clips (ranked i) of logf(Q[clip, c])[i]``.

    ``logf`` maps gathered ``Q`` values ``[k, nb, C]`` to per-rank log terms of the same shape.
    """
    n, C = U.shape[1], Q.shape[1]
    out = torch.empty((n, C), dtype=Q.dtype, device=Q.device)
    for sl in _chunks(n, k * C):
        _, idx = _top_clips(U[:, sl], k)  # [k, nb]
        out[sl] = logf(Q[idx]).sum(dim=0)  # Q[idx]: [k, nb, C]
    return out


def _pmi(U, P, reference, k_req, a, lam, normaliser, logf_for, prior_for):
    _check_normaliser(normaliser)
    U, P = _prepare(U, P)
    N = U.shape[0]
    k = max(1, min(int(k_req), N))
    Q = torch.softmax(a * P, dim=1)
    logf = logf_for(k)
    L = _pmi_log_likelihood(U, logf, Q, k)
    mode = normaliser
    if mode == "auto":
        mode = "neurons" if (reference is not None or U.shape[1] > 1) else "prior"
    if mode == "prior":
        log_pc = prior_for(k, Q.mean(dim=0))
    else:
        if reference is None:
            L_ref = L
        else:
            R, _ = _prepare(reference, P)
            L_ref = _pmi_log_likelihood(R.to(device=U.device, dtype=U.dtype), logf, Q, k)
        log_pc = torch.logsumexp(L_ref, dim=0) - math.log(L_ref.shape[0])
    return L - lam * log_pc.unsqueeze(0)


# --------------------------------------------------------------------------------------------
# similarity functions


def cos(U, P) -> torch.Tensor:
    """Uncentred cosine between each neuron's activation column and each concept column of P.

    Columns are L2-normalised over clips (a zero column gives similarity 0, not NaN).
    """
    U, P = _prepare(U, P)
    Un = U / U.norm(dim=0, keepdim=True).clamp_min(1e-12)
    Pn = P / P.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return Un.T @ Pn


def cos_cubed(U, P, min_norm: float = 1e-3) -> torch.Tensor:
    """cos³: centre each column over clips, cube it elementwise, divide by ``max(norm, min_norm)``
    and take dot products. Cubing emphasises the clips far from the mean (the top clips)."""
    U, P = _prepare(U, P)
    Uc = (U - U.mean(dim=0, keepdim=True)) ** 3
    Pc = (P - P.mean(dim=0, keepdim=True)) ** 3
    Uc = Uc / Uc.norm(dim=0, keepdim=True).clamp_min(min_norm)
    Pc = Pc / Pc.norm(dim=0, keepdim=True).clamp_min(min_norm)
    return Uc.T @ Pc


def wpmi(
    U,
    P,
    top_k: int = 28,
    a: float = 2.0,
    lam: float = 0.6,
    *,
    min_prob: float = 1e-7,
    normaliser: str = "auto",
    reference=None,
) -> torch.Tensor:
    """Weighted pointwise mutual information (CLIP-Dissect's WPMI).

    ``Q = softmax_c(a * P)``; for the neuron's top-``k`` clips T (``k = min(top_k, N)``),
    ``L[n, c] = sum_{j in T} log(Q[j, c] + min_prob)``; result ``L - lam * log p(c)``, with
    ``log p(c)`` from ``normaliser`` / ``reference`` (see the module docstring).
    """

    def logf_for(k):
        return lambda q: torch.log(q + min_prob)

    def prior_for(k, q_mean):
        return k * torch.log(q_mean + min_prob)

    return _pmi(U, P, reference, top_k, a, lam, normaliser, logf_for, prior_for)


def soft_wpmi(
    U,
    P,
    top_k: int = 100,
    a: float = 10.0,
    lam: float = 1.0,
    p_start: float = 0.998,
    p_end: float = 0.97,
    *,
    min_prob: float = 1e-7,
    normaliser: str = "auto",
    reference=None,
) -> torch.Tensor:
    """Soft WPMI: like :func:`wpmi`, but the i-th ranked top clip (i = 0..k-1) only counts with
    probability ``p_i = p_start - (i / k) * (p_start - p_end)``:
    ``L[n, c] = sum_i log(1 + p_i * (Q[j_i, c] - 1) + min_prob)``, ``k = min(top_k, N)``.

    See the module docstring for the normaliser: a single-neuron call without ``reference``
    uses the P-derived prior, so it is not identically 0 (the official per-neuron bug).
    """

    def weights(k, like):
        i = torch.arange(k, dtype=like.dtype, device=like.device)
        return p_start - (i / k) * (p_start - p_end)

    def logf_for(k):
        def logf(q):  # q: [k, nb, C]
            w = weights(k, q).view(-1, 1, 1)
            return torch.log(1 + w * (q - 1) + min_prob)

        return logf

    def prior_for(k, q_mean):
        w = weights(k, q_mean).view(-1, 1)
        return torch.log(1 + w * (q_mean.unsqueeze(0) - 1) + min_prob).sum(dim=0)

    return _pmi(U, P, reference, top_k, a, lam, normaliser, logf_for, prior_for)


def rank_reorder(
    U,
    P,
    top_fraction: float = 0.05,
    p: float = 3,
    scale_p: float = 0.5,
    n_shuffles: int = 5,
    seed: int = 0,
) -> torch.Tensor:
    """Rank-reorder similarity (CLIP-Dissect), returned as ``-error``.

    Take the neuron's top ``t = int(N * top_fraction)`` clips (clamped to ``[min(2, N), N]``; the
    official code used ``t = 0`` on 5 clips and produced NaN), with activations ``a`` sorted
    descending. For concept c, give the clip ranked r-th by ``P[:, c]`` among those clips the r-th
    largest activation (``a_c``). ``error = mean|a - a_c|^p``, divided by a shuffle baseline
    ``mean|a - a[perm]|^p`` over ``n_shuffles`` permutations and by
    ``(mean_top P[:, c]) ** scale_p``. A concept whose mean ``P`` over those clips is not
    positive (possible with cosine P) is no candidate: it scores ``-inf`` and ranks after every
    finite score (the official code's ``relu(mean) ** 0.5`` divided by 0; before, a clamp to
    1e-6 let such a concept with a perfect reordering score 0, the best value).

    Determinism: the permutations are ``torch.randperm(t, generator=g)`` drawn ``n_shuffles``
    times from ``g = torch.Generator().manual_seed(seed)`` (CPU) and shared by all neurons
    (the official code drew unseeded ones per neuron). Ties in ``P`` are ranked by a stable sort
    (the lower clip position first). A neuron whose top activations are all equal gets 0 for
    every concept.
    """
    U, P = _prepare(U, P)
    N, n = U.shape
    C = P.shape[1]
    t = min(N, max(min(2, N), int(N * top_fraction)))
    g = torch.Generator().manual_seed(int(seed))
    perms = torch.stack([torch.randperm(t, generator=g) for _ in range(n_shuffles)])
    perms = perms.to(U.device)
    out = torch.empty((n, C), dtype=U.dtype, device=U.device)
    for sl in _chunks(n, 3 * t * C):
        vals, idx = _top_clips(U[:, sl], t)  # [t, nb], descending
        nb = vals.shape[1]
        G = P[idx]  # [t, nb, C]
        avg = G.mean(dim=0)  # [nb, C]
        ranks = torch.argsort(torch.argsort(G, dim=0, stable=True), dim=0, stable=True)
        asc = vals.flip(0)  # ascending activations
        reorg = torch.gather(asc.unsqueeze(-1).expand(t, nb, C), 0, ranks)
        err = (vals.unsqueeze(-1) - reorg).abs().pow(p).mean(dim=0)  # [nb, C]
        base = (asc.unsqueeze(0) - asc[perms]).abs().pow(p).mean(dim=(0, 1))  # [nb]
        err = err / base.clamp_min(1e-30).unsqueeze(1)
        score = -(err / avg.clamp_min(1e-6).pow(scale_p))
        out[sl] = torch.where(avg > 0, score, torch.full_like(score, -math.inf))
    return out


#: Similarity functions by name (``concepts.similarity``): ``fn(U, P) -> [n, C]``.
SIMILARITIES: Registry[Callable[..., torch.Tensor]] = Registry("similarity")
for _fn in (cos, cos_cubed, wpmi, soft_wpmi, rank_reorder):
    SIMILARITIES.add(_fn.__name__, _fn)


def get_similarity(name: str) -> Callable[..., torch.Tensor]:
    """The similarity function called ``name`` (:data:`SIMILARITIES`).

    Raises:
        dissect.registry.UnknownNameError: (a ``ValueError``) the message lists the valid names.
    """
    return SIMILARITIES.get(name)


def top_concepts(sim, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best concepts per neuron: ``(indices [n, k], scores [n, k])``, best first.

    Ties go to the lower concept index (stable sort); NaN scores rank last. ``k`` is clamped to
    the number of concepts.
    """
    sim = torch.as_tensor(sim)
    if sim.ndim == 1:
        sim = sim.unsqueeze(0)
    k = max(0, min(int(k), sim.shape[1]))
    key = torch.nan_to_num(sim, nan=-math.inf)
    idx = torch.argsort(key, dim=1, descending=True, stable=True)[:, :k]
    return idx, torch.gather(sim, 1, idx)
