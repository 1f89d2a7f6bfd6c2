"""The explain stage's LLM phrasing: asked only for confirmed evidence descriptions (what can be
shown), one budget for the whole run, every reply checked and scored like any candidate."""

import numpy as np

from dissect.description.llm.base import Completion
from dissect.explain.choice import CONFIRMED, UNCONFIRMED
from dissect.explain.evidence import Evidence
from dissect.explain.explainer import _phrase, _phrase_targets


class FakeLLM:
    name = "fake"

    def __init__(self, reply=None):
        self.chats = []
        self.reply = reply

    def generate(self, chats, params):
        self.chats += chats
        if self.reply is not None:
            return [Completion(self.reply, "fake") for _ in chats]
        return [Completion("the spoken digit three" if i == 0 else "speaker nicolas", "fake")
                for i, _ in enumerate(chats)]


def _ev(term, auroc):
    return [Evidence(term, auroc, 2.0, 1e-6, 5, 2.0)]


def test_targets_are_the_runs_strongest_confirmed_evidence_descriptions():
    evidence_of = {"a": [_ev("digit=3", 0.99), [], _ev("digit=5", 0.80), _ev("digit=7", 0.97)],
                   "b": [_ev("digit=3", 0.70), _ev("speaker=lucas", 0.95), _ev("digit=1", 1.0)]}

    def row(layer, unit, kind, status=CONFIRMED):
        return {"layer": layer, "unit": unit, "kind": kind, "status": status}

    rows_of = {"a": ([], [row("a", 0, "evidence"), row("a", 1, "none", UNCONFIRMED),
                          row("a", 2, "evidence"), row("a", 3, "and")]),
               "b": ([], [row("b", 0, "evidence"), row("b", 1, "evidence"),
                          row("b", 2, "none", UNCONFIRMED)])}
    # a.3 (shown: AND's summary) and b.2 (unconfirmed) are never phrased, however selective
    assert _phrase_targets(rows_of, evidence_of, 2) == [("a", 0), ("b", 1)]
    assert _phrase_targets(rows_of, evidence_of, -1) == [("a", 0), ("b", 1), ("a", 2), ("b", 0)]
    assert _phrase_targets(rows_of, evidence_of, 0) == []


def test_replies_are_checked_against_the_evidence():
    rng = np.random.default_rng(0)
    acts = {layer: rng.normal(size=(12, 3)) for layer in ("a", "b")}
    evidence_of = {"a": [_ev("digit=3", 0.99), [], _ev("digit=5", 0.80)],
                   "b": [_ev("digit=3", 0.70), _ev("speaker=lucas", 0.95), []]}
    llm = FakeLLM()
    fit = np.ones(12, bool)
    out = _phrase(acts.__getitem__, evidence_of, [("a", 0), ("b", 1)], fit,
                  [f"c{i}" for i in range(12)], {},
                  ["digit=3", "digit=5", "speaker=lucas", "speaker=nicolas"], llm, None)
    assert list(out) == [("a", 0), ("b", 1)]
    assert out["a", 0] == ("This neuron responds to the spoken digit three.", True, "")
    text, ok, why = out["b", 1]
    assert not ok and why == "drops the top term 'speaker=lucas'"
    assert len(llm.chats) == 2


class FailingLLM(FakeLLM):
    def generate(self, chats, params):
        self.chats += chats
        return [Completion("", "fake", error="fake: failed after 1 attempt(s): HTTP 503")
                for _ in chats]


def test_a_failed_phrasing_call_is_noted_as_a_failure_not_a_rejection():
    acts = {"a": np.random.default_rng(1).normal(size=(12, 2))}
    ev = [_ev("digit=3", 0.99), _ev("digit=5", 0.9)]
    out = _phrase(acts.__getitem__, {"a": ev}, [("a", 0), ("a", 1)], np.ones(12, bool),
                  [f"c{i}" for i in range(12)], {}, ["digit=3", "digit=5"], FailingLLM(), None)
    assert [v for v in out.values()] == [
        ("", False, "LLM call failed: fake: failed after 1 attempt(s): HTTP 503")] * 2


def test_explain_phrases_only_confirmed_evidence_and_scores_the_phrasing(toy_clips, hash_embedder):
    """Unit 0 fires on label l1 (confirmed), unit 1 is noise (unconfirmed): only unit 0 is
    phrased; its accepted phrasing is a scored candidate; unit 1's rows equal those of a run
    without an LLM."""
    from dissect.config import ExplainConfig
    from dissect.explain.explainer import explain

    n = 200
    rng, ids, lab, terms, caps = toy_clips(n)
    A = np.stack([(lab == 1) * 2.0 + rng.normal(scale=0.3, size=n), rng.normal(size=n)], 1)

    summ = [{"layer": "l", "unit": u, "calibrated": "noise", "llm": "rules"} for u in range(2)]
    conc = [{"closed": {}} for _ in range(2)]
    kw = dict(embedder=hash_embedder, progress=False, strata=[str(x) for x in lab])
    llm = FakeLLM(reply="sounds labelled l1")
    out = explain(ids, caps, terms, lambda layer: A, summ, conc, ExplainConfig(), llm, **kw)
    plain = explain(ids, caps, terms, lambda layer: A, summ, conc, ExplainConfig(), None, **kw)
    assert len(llm.chats) == 1 and "l1" in str(llm.chats[0])
    assert out.info["llm_phrasings"] == 1 and out.info["llm_rejected"] == 0
    rows = {r["unit"]: r for r in out.explanations}
    phr = [c for c in rows[0]["candidates"] if c["kind"] == "llm"]
    assert len(phr) == 1 and phr[0]["text"] == "This neuron responds to sounds labelled l1."
    assert phr[0]["note"] == "accepted" and phr[0]["scores"]["val"]["correlation"] > 0.8
    assert rows[0]["status"] == CONFIRMED
    assert rows[1] == {r["unit"]: r for r in plain.explanations}[1]
