"""The shown description: only a candidate validation confirms, chosen by correlation with the
SE of the paired difference; otherwise "no clear concept" with the reason."""

import numpy as np

from dissect.explain.choice import CONFIRMED, NO_EVIDENCE, TOO_FEW, UNCONFIRMED, choose
from dissect.explain.scoring import Candidate


def _cand(kind, r, p, n_pos=12, informative=True, note=""):
    c = Candidate(kind, f"{kind} text", note=note)
    c.scores = {"val": {"correlation": r, "p": p, "informative": informative,
                        "n_pos": n_pos, "n_neg": 100}}
    return c


def test_a_candidate_below_chance_on_validation_is_never_shown():
    below = _cand("evidence", -0.05, 0.7)
    noise = _cand("and", 0.08, 0.2)
    shown, status, why = choose([below, noise])
    assert shown is None and status == UNCONFIRMED and "not confirmed" in why
    # a high fit AUROC is no excuse: an untestable template is not shown either
    untested = _cand("evidence", None, None, n_pos=0, informative=False)
    shown, status, why = choose([untested])
    assert shown is None and status == TOO_FEW and "need 3" in why


def test_bonferroni_over_the_neurons_tested_candidates():
    tmpl = _cand("evidence", 0.3, 0.02)
    assert choose([tmpl])[1] == CONFIRMED  # 0.02 <= 0.05
    others = [_cand("llm", 0.1, 0.5), _cand("and", 0.1, 0.5), _cand("closed", 0.1, 0.5)]
    shown, status, why = choose([tmpl, *others])  # 0.02 > 0.05 / 4
    assert shown is None and status == UNCONFIRMED and "0.0125" in why


def test_paired_se_decides_displacement_and_order_breaks_ties():
    tmpl, andd = _cand("evidence", 0.40, 0.001), _cand("and", 0.48, 0.001)
    assert choose([tmpl, andd], paired_se=lambda a, b: 0.10)[0] is tmpl  # within one SE
    assert choose([tmpl, andd], paired_se=lambda a, b: 0.05)[0] is andd
    rejected = _cand("llm", 0.9, 0.001, note="rejected: drops the top term")
    assert choose([tmpl, rejected])[0] is tmpl
    assert choose([tmpl], has_evidence=False)[:2] == (None, NO_EVIDENCE)
    assert choose([tmpl, andd], method="and")[0] is andd
    assert choose([tmpl, _cand("and", 0.1, 0.3)], method="and")[0] is None


def test_explain_never_shows_a_description_validation_does_not_confirm(toy_clips, hash_embedder):
    """End to end on a toy layer: unit 0 fires on a label, unit 1 is noise, unit 2 fires on a
    label its validation clips barely carry."""
    from dissect.config import ExplainConfig
    from dissect.explain.explainer import explain

    n = 200
    rng, ids, lab, terms, caps = toy_clips(n)
    A = np.stack([(lab == 1) * 2.0 + rng.normal(scale=0.3, size=n), rng.normal(size=n),
                  rng.normal(size=n)], 1)

    summ = [{"layer": "l", "unit": u, "calibrated": "noise", "llm": "rules"} for u in range(3)]
    conc = [{"closed": {}} for _ in range(3)]
    out = explain(ids, caps, terms, lambda layer: A, summ, conc, ExplainConfig(),
                  embedder=hash_embedder, progress=False, strata=[str(x) for x in lab])
    rows = {r["unit"]: r for r in out.explanations}
    assert rows[0]["status"] == CONFIRMED and rows[0]["description"] == "l1"
    assert rows[0]["val"]["p"] <= 0.05 and rows[0]["test"]["correlation"] > 0.8
    for r in out.explanations:
        if not r["no_clear_concept"]:
            assert r["val"]["correlation"] > 0 and r["val"]["p"] <= 0.05
    assert rows[1]["no_clear_concept"]
    assert sum(out.info["status"]["l"].values()) == 3
