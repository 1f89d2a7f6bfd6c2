"""Explain, then score: every candidate description is scored on clips it was not built from,
the best on a validation split is shown, and its score on a separate test split is reported.

Clips are split by a hash of their id (:func:`assign_splits`): ``fit`` (evidence terms are
scored for association on these only), ``val`` (choose the shown description) and ``test``
(report its score). A neuron's own exemplar clips that a caption summary was written from
(AND's top-k / bottom-k) are also left out of its ``val`` and ``test`` sets, so no candidate is
scored on the clips it was built from.

A candidate predicts, for every clip, how strongly the neuron should fire:

* term candidates (the evidence template, an accepted LLM phrasing): the weighted count of the
  candidate's terms the clip carries (first term 1, second 0.5);
* text candidates (AND's summary, the closed-set label): the MiniLM cosine between the text and
  the clip's caption (the detection score of :mod:`dissect.evaluate.detection`).

Scores (as in OpenAI's automated-interpretability and Delphi), on one split:

* ``detection``: the probability that, of two clips the candidate tells apart, the one it
  predicts higher has the higher activation (activation ties count 1/2), i.e.
  ``(Somers' D(activation | prediction) + 1) / 2`` (:func:`concordance`). For a term candidate
  (a 0/1 prediction: the clip carries the term or not) this is the AUROC of the activation
  separating the clips that match the description from the rest: "does the neuron fire more
  on clips the description says it should". 0.5 is chance, 1 perfect.
* ``detection_top``: the earlier definition, the AUROC of the prediction against the
  activation binarised at its top ``quantile`` (0.9: the top 10 % of the split are
  positives). Kept for comparison; it depends on the concept's base rate: a description of a
  concept that 5 % of the clips carry cannot reach 1 (half of the top 10 % are other clips),
  one that 20 % carry is penalised for the matching clips ranked 13th to 24th of 120, so even
  the true label of a perfect one-concept neuron scores about 0.75 on a 10-value label.
* ``correlation``: Pearson correlation of prediction and activation (a simple simulation
  score).

A neuron with no evidence term above chance (after the Benjamini-Hochberg cut) is "no clear
concept", whatever its candidates score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.describe.explain import NO_CLEAR_CONCEPT
from dissect.evaluate.detection import detection_auroc

SPLITS = ("fit", "val", "test")


def assign_splits(clip_ids: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> np.ndarray:
    """``[N]`` array of ``"fit"`` / ``"val"`` / ``"test"`` from ``sha256(f"{seed}:split:{id}")``
    (deterministic, independent of clip order)."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, "
                         f"got {list(fractions)}")
    edges = np.cumsum(f)
    out = np.empty(len(clip_ids), dtype=object)
    for i, cid in enumerate(clip_ids):
        h = hashlib.sha256(f"{seed}:split:{cid}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2.0**64
        out[i] = SPLITS[int(np.searchsorted(edges, u, side="right").clip(0, 2))]
    return out


@dataclass
class Candidate:
    """One candidate description of a neuron.

    Attributes:
        kind: ``evidence`` | ``llm`` | ``and`` | ``closed``.
        text: what would be shown.
        terms: for term candidates, the terms it claims (None: a text candidate).
        note: why it is (not) usable, e.g. the LLM check's verdict.
    """

    kind: str
    text: str
    terms: list[str] | None = None
    note: str = ""
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "terms": self.terms, "note": self.note,
                "scores": self.scores}


def term_prediction(X: np.ndarray, term_index: Mapping[str, int], terms: Sequence[str]
                    ) -> np.ndarray:
    """``[N]`` weighted count of ``terms`` per clip (weights 1, 1/2, 1/4, ...)."""
    pred = np.zeros(X.shape[0])
    for w, t in enumerate(terms):
        j = term_index.get(t.lower())
        if j is not None:
            pred += X[:, j] * 0.5**w
    return pred


def concordance(pred: np.ndarray, acts: np.ndarray) -> float | None:
    """``P(act_i > act_j | pred_i > pred_j)`` over the clip pairs the prediction orders, with
    activation ties counted 1/2 (``(Somers' D(acts | pred) + 1) / 2``); None when the
    prediction is constant. For a two-valued ``pred`` it is the AUROC of ``acts`` separating
    the higher group from the lower (Mann-Whitney with midranks)."""
    from scipy.stats import rankdata

    p = np.asarray(pred, dtype=np.float64).ravel()
    a = np.asarray(acts, dtype=np.float64).ravel()
    if p.shape != a.shape:
        raise ValueError(f"prediction and activations disagree in length: {p.shape} vs "
                         f"{a.shape}")
    levels = np.unique(p)
    if len(levels) < 2:
        return None
    if len(levels) == 2:
        hi = p == levels[1]
        n1, n0 = int(hi.sum()), int((~hi).sum())
        r = rankdata(a)
        return float((r[hi].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    num = den = 0.0
    for i in range(0, len(p), 512):  # blocks of rows: memory O(512 n)
        dp = np.sign(p[i:i + 512, None] - p[None, :])
        da = np.sign(a[i:i + 512, None] - a[None, :])
        num += float((dp * da).sum())
        den += float(np.abs(dp).sum())
    return float((num / den + 1) / 2)


def score_prediction(pred: np.ndarray, acts: np.ndarray, quantile: float = 0.9
                     ) -> dict[str, float | None]:
    """``{"detection", "detection_top", "correlation", "informative", "n_pos", "n_neg"}`` on
    one split (see the module docstring). ``informative`` is False when the prediction is the
    same for every clip of the split (no clip carries the candidate's terms), so its score
    says nothing. ``n_pos`` / ``n_neg``: the two groups ``detection`` compares, for its
    standard error (a two-valued prediction: the clips above / below; a graded one: half the
    clips each)."""
    pred = np.asarray(pred, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    det = concordance(pred, acts) if len(acts) else None
    top = detection_auroc(pred, acts, quantile) if len(acts) else None
    corr = None
    if len(acts) > 2 and pred.std() > 0 and acts.std() > 0:
        corr = float(np.corrcoef(pred, acts)[0, 1])
    levels = np.unique(pred)
    if len(levels) == 2:
        n_pos = int((pred == levels[1]).sum())
    else:
        n_pos = len(pred) // 2
    return {"detection": None if det is None else round(det, 4),
            "detection_top": None if top is None else round(top, 4),
            "correlation": None if corr is None else round(corr, 4),
            "informative": bool(len(pred) and pred.std() > 0),
            "n_pos": n_pos, "n_neg": int(len(pred)) - n_pos}


def auroc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil, 1982)."""
    if n_pos < 1 or n_neg < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def choose(candidates: Sequence[Candidate], method: str = "evidence",
           has_evidence: bool = True, min_detection: float = 0.0
           ) -> tuple[Candidate | None, str]:
    """The shown candidate and why.

    ``method=evidence``: the best validation detection AUROC, where a later candidate
    displaces the current best only when it is better by more than the current best's
    standard error (:func:`auroc_se` with the score's ``n_pos`` / ``n_neg``; the candidates
    come in order evidence template, LLM phrasing, AND summary, closed-set label: with a few
    dozen validation clips, AUROC differences below one standard error are noise, and the
    evidence template is the claim the association statistics on the fit clips support);
    ``method=and``: AND's summary
    whatever it scores. A neuron without evidence, or whose best candidate does not reach
    ``min_detection`` on validation, is "no clear concept" (returns ``(None, reason)``).
    Candidates whose prediction is constant on the validation clips (none of them carries the
    candidate's terms) are not compared: when no candidate is informative there, the evidence
    template (supported by the fit clips' statistics) is shown, and the row says so.
    """
    if method == "and":
        for c in candidates:
            if c.kind == "and":
                return c, "describe.method=and"
        return None, "no AND summary"
    if not has_evidence:
        return None, "no evidence term passes the Benjamini-Hochberg cut"
    usable = [c for c in candidates if c.text and c.text != NO_CLEAR_CONCEPT
              and not c.note.startswith("rejected")]
    informative = [c for c in usable if c.scores.get("val", {}).get("informative")]
    if not informative:
        for c in usable:
            if c.kind == "evidence":
                return c, "no candidate is informative on the validation clips; fit evidence"
        return None, "no candidate can be scored on the validation clips"
    best, best_v, best_se = None, -1.0, 0.0
    template = next((c for c in usable if c.kind == "evidence"), None)
    if template is not None and not template.scores.get("val", {}).get("informative"):
        # the template predicts nothing on these validation clips: it stays the incumbent at
        # chance, and another candidate must beat chance by a standard error to displace it
        val = next((c.scores.get("val", {}) for c in informative), {})
        best, best_v = template, 0.5
        best_se = auroc_se(0.5, val.get("n_pos", 0), val.get("n_neg", 0))
    for c in informative:
        val = c.scores.get("val", {})
        v = val.get("detection")
        if v is not None and v > best_v + best_se:
            best, best_v = c, v
            best_se = auroc_se(v, val.get("n_pos", 0), val.get("n_neg", 0))
    if best is None:
        return None, "no candidate can be scored on the validation clips"
    if best_v < min_detection:
        return None, f"best validation detection {best_v:.2f} < {min_detection}"
    if best is template and not template.scores.get("val", {}).get("informative"):
        return best, "no other candidate beats chance on the validation clips; fit evidence"
    return best, f"best validation detection ({best.kind}, {best_v:.2f})"


def score_candidates(candidates: Sequence[Candidate], acts: np.ndarray, masks: Mapping[str,
                     np.ndarray], X: np.ndarray, term_index: Mapping[str, int],
                     text_pred: Mapping[str, np.ndarray], quantile: float = 0.9) -> None:
    """Fill ``candidate.scores[split]`` for ``val`` and ``test`` (in place).

    Args:
        acts: the neuron's activation on every clip ``[N]``.
        masks: split name -> bool ``[N]`` (the neuron's val / test clips).
        text_pred: candidate text -> its ``[N]`` caption-similarity prediction.
    """
    for c in candidates:
        if c.terms is not None:
            pred = term_prediction(X, term_index, c.terms)
        elif c.text in text_pred:
            pred = text_pred[c.text]
        else:
            continue
        c.scores = {s: score_prediction(pred[m], acts[m], quantile) for s, m in masks.items()}
