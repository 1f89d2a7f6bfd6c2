"""The explain stage's LLM phrasing: one budget for the whole run, the check applied."""

import numpy as np

from dissect.description.llm.base import Completion
from dissect.explain.evidence import Evidence
from dissect.explain.explainer import _phrase


class FakeLLM:
    name = "fake"

    def __init__(self):
        self.chats = []

    def generate(self, chats, params):
        self.chats += chats
        return [Completion("the spoken digit three" if i == 0 else "speaker nicolas", "fake")
                for i, _ in enumerate(chats)]


def test_budget_is_shared_across_layers_and_replies_are_checked(tmp_path):
    rng = np.random.default_rng(0)
    acts = {layer: rng.normal(size=(12, 3)) for layer in ("a", "b")}

    def e(term, auroc):
        return [Evidence(term, auroc, 2.0, 1e-6, 5, 2.0)]

    evidence_of = {"a": [e("digit=3", 0.99), [], e("digit=5", 0.80)],
                   "b": [e("digit=3", 0.70), e("speaker=lucas", 0.95), []]}
    llm = FakeLLM()
    fit = np.ones(12, bool)
    out = _phrase(acts.__getitem__, evidence_of, 2, fit, [f"c{i}" for i in range(12)], {},
                  ["digit=3", "digit=5", "speaker=lucas", "speaker=nicolas"], llm, None)
    assert list(out) == [("a", 0), ("b", 1)]  # the two strongest of the run, not per layer
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
    ev = [[Evidence("digit=3", 0.99, 2.0, 1e-6, 5, 2.0)], [Evidence("digit=5", 0.9, 2.0, 1e-6,
                                                                    5, 2.0)]]
    out = _phrase(acts.__getitem__, {"a": ev}, 2, np.ones(12, bool), [f"c{i}" for i in range(12)],
                  {}, ["digit=3", "digit=5"], FailingLLM(), None)
    assert [v for v in out.values()] == [
        ("", False, "LLM call failed: fake: failed after 1 attempt(s): HTTP 503")] * 2
