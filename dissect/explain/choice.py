"""Which candidate description is shown: only one the validation clips confirm.

For one neuron, with every candidate scored under the terms rule (:mod:`dissect.explain.scoring`)
on its validation clips:

1. a neuron without an evidence term (after the Benjamini-Hochberg cut on the fit clips) is
   "no clear concept" (status ``no_evidence``);
2. a candidate is *tested* when its prediction is informative on validation and names at least
   ``min_positives`` validation clips; none tested: "no clear concept" (``too_few_positives``);
3. a tested candidate is *confirmed* when its correlation's one-sided permutation p-value (the
   null of its real group sizes, :func:`~dissect.explain.scoring.permutation_p`) is at most
   ``alpha / (tested candidates)`` (Bonferroni over the neuron's candidates) and the
   correlation is positive; none confirmed: "no clear concept" (``unconfirmed``);
4. of the confirmed candidates, in the order evidence template, LLM phrasing, AND summary,
   closed-set label, a later one displaces the current choice only when its validation
   correlation is higher by more than the standard error of the paired difference
   (:func:`~dissect.explain.scoring.paired_se`): the template is the claim the fit evidence
   supports, and a difference within one SE is noise.

``method=and`` shows AND's summary when it is confirmed (rules 2-3), else nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dissect.explain.candidates import NO_CLEAR_CONCEPT
from dissect.explain.scoring import Candidate

#: Status of a neuron's shown description.
CONFIRMED, UNCONFIRMED, NO_EVIDENCE, TOO_FEW = (
    "confirmed", "unconfirmed", "no_evidence", "too_few_positives")
STATUSES = (CONFIRMED, UNCONFIRMED, TOO_FEW, NO_EVIDENCE)


def _fmt(c: Candidate) -> str:
    v = c.scores.get("val") or {}
    r, p = v.get("correlation"), v.get("p")
    return (f"{c.kind} r={'-' if r is None else f'{r:.2f}'}, "
            f"p={'-' if p is None else f'{p:.3g}'}, {v.get('n_pos', 0)} clips")


def choose(candidates: Sequence[Candidate], method: str = "evidence", has_evidence: bool = True,
           alpha: float = 0.05, min_positives: int = 3,
           paired_se: Callable[[Candidate, Candidate], float] | None = None
           ) -> tuple[Candidate | None, str, str]:
    """``(shown candidate or None, status, why)`` for one neuron (see the module docstring).

    Args:
        candidates: in order template, LLM phrasing, AND summary, closed-set label, each with
            ``scores["val"]`` holding ``correlation``, ``p``, ``n_pos``, ``informative``.
        paired_se: SE of the paired difference of two candidates' validation correlations
            (None: 0, any higher correlation displaces).
    """
    if method not in ("evidence", "and"):
        raise ValueError(f"explain.method must be 'evidence' or 'and', got {method!r}")
    if method == "and":
        pool = [c for c in candidates if c.kind == "and" and c.text]
        if not pool:
            return None, NO_EVIDENCE, "no AND summary"
    else:
        if not has_evidence:
            return None, NO_EVIDENCE, "no evidence term passes the Benjamini-Hochberg cut"
        pool = [c for c in candidates if c.text and c.text != NO_CLEAR_CONCEPT
                and not c.note.startswith("rejected")]
    tested = [c for c in pool if (c.scores.get("val") or {}).get("informative")
              and (c.scores["val"].get("n_pos") or 0) >= min_positives]
    if not tested:
        most = max((((c.scores.get("val") or {}).get("n_pos") or 0) for c in pool), default=0)
        return None, TOO_FEW, (f"too few validation positives: the candidates name at most "
                               f"{most} validation clips (need {min_positives})")
    level = alpha / len(tested)
    confirmed = [c for c in tested
                 if (c.scores["val"].get("p") is not None and c.scores["val"]["p"] <= level
                     and (c.scores["val"].get("correlation") or 0.0) > 0)]
    if not confirmed:
        best = max(tested, key=lambda c: c.scores["val"].get("correlation") or -1.0)
        return None, UNCONFIRMED, (f"not confirmed on validation at p <= {level:.3g} "
                                   f"(best: {_fmt(best)})")
    best = confirmed[0]
    for c in confirmed[1:]:
        se = paired_se(c, best) if paired_se is not None else 0.0
        if c.scores["val"]["correlation"] > best.scores["val"]["correlation"] + se:
            best = c
    return best, CONFIRMED, f"confirmed on validation ({_fmt(best)}; p <= {level:.3g})"
