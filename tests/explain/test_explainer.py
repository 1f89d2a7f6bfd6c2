"""explain() end to end on a synthetic layer: a dataset label nearly as strong as a transcript
word leads the evidence template, which is scored and confirmed on validation as any other."""

import numpy as np

from dissect.config import ExplainConfig
from dissect.explain.choice import CONFIRMED
from dissect.explain.explainer import explain


def _digits_with_a_misheard_word(n=240, seed=0):
    """Unit 0 fires for digit 1; Whisper hears "bye" on digit 1's more active clips, so
    ``word=bye`` has a slightly higher lift than ``digit=1``."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    lab = rng.integers(0, 4, n)
    a = (lab == 1) * 2.0 + rng.normal(scale=0.6, size=n)
    ones = np.flatnonzero(lab == 1)
    misheard = set(ones[np.argsort(-a[ones])][: int(0.7 * len(ones))].tolist())
    terms = {cid: [f"digit={lab[i]}"] + (["word=bye"] if i in misheard else [])
             for i, cid in enumerate(ids)}
    caps = {cid: f"digit {lab[i]}" for i, cid in enumerate(ids)}
    labels = {f"digit={d}" for d in range(4)}
    return ids, lab, a[:, None], terms, caps, labels


def test_a_label_nearly_as_strong_as_a_transcript_word_leads_and_is_confirmed(hash_embedder):
    ids, lab, A, terms, caps, labels = _digits_with_a_misheard_word()
    summ = [{"layer": "l", "unit": 0, "calibrated": "noise", "llm": "rules"}]
    conc = [{"closed": {}}]
    kw = dict(embedder=hash_embedder, progress=False, strata=[str(x) for x in lab])
    plain = explain(ids, caps, terms, lambda layer: A, summ, conc, ExplainConfig(), None, **kw)
    out = explain(ids, caps, terms, lambda layer: A, summ, conc, ExplainConfig(), None, **kw,
                  label_terms=labels)
    # the ranking itself is the same: the word is strongest, the label within the share
    ev = out.evidence[0]["evidence"]
    assert ev == plain.evidence[0]["evidence"]
    assert ev[0]["term"] == "word=bye" and ev[1]["term"] == "digit=1"
    assert 0.8 * ev[0]["lift"] <= ev[1]["lift"] < ev[0]["lift"]
    # without label terms the word leads; with them the label does
    before = {c["kind"]: c for c in plain.explanations[0]["candidates"]}["evidence"]
    after = {c["kind"]: c for c in out.explanations[0]["candidates"]}["evidence"]
    assert before["text"] == "the word 'bye'; weaker for spoken digit one"
    assert after["text"] == "spoken digit one; weaker for the word 'bye'"
    # ... and it is shown only as a scored, confirmed candidate
    row = out.explanations[0]
    assert row["status"] == CONFIRMED and row["kind"] == "evidence"
    assert row["description"] == after["text"]
    assert after["scores"]["val"]["p"] is not None and row["val"] == after["scores"]["val"]
