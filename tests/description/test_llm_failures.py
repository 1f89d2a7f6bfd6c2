"""Failed LLM calls are counted, marked and never pass for the LLM's answer."""

import pytest

from dissect.description.llm.base import (
    Completion,
    GenerationParams,
    TooManyLLMFailures,
    check_failures,
)
from dissect.description.neurons import RULES_NAME, summarize


class HalfDown:
    """Fails every chat whose top captions mention 'broken'."""

    name = "half-down"

    def generate(self, chats, params):
        return [Completion("", self.name, error="half-down: HTTP 503: unavailable")
                if "broken" in c[-1]["content"] else
                Completion("These are tonal piano notes.", self.name) for c in chats]


def _neurons():
    caps = {f"c{i}": ("a broken bell" if i < 2 else f"piano note {i}") for i in range(8)}
    neurons = [{"layer": "L", "unit": 0, "top": [{"clip": "c0", "value": 3}],
                "bottom": [{"clip": "c5", "value": 0}], "std": 1.0, "mean": 0.0},
               {"layer": "L", "unit": 1, "top": [{"clip": "c3", "value": 3}],
                "bottom": [{"clip": "c6", "value": 0}], "std": 1.0, "mean": 0.0}]
    return neurons, caps


class _Embed:
    name = "fake"

    def encode(self, texts):
        import numpy as np

        return np.eye(len(texts), 4)[:, :4] + 1e-3


def test_a_failed_neuron_gets_the_rule_based_text_marked_failed(monkeypatch):
    import dissect.description.embed as embed

    monkeypatch.setattr(embed, "default_embedder", lambda: _Embed())
    neurons, caps = _neurons()
    logs = []
    rows, info = summarize(neurons, caps, HalfDown(), GenerationParams(), k=1,
                           max_llm_neurons=-1, log=logs.append)
    bad, good = rows
    assert bad["failed"] is True and bad["llm"] == RULES_NAME and bad["llm_failed"] == "half-down"
    assert bad["high"] == bad["calibrated"] and "broken bell" in bad["high"]  # rules, not ""
    assert "top: LLM call failed: half-down: HTTP 503: unavailable" in bad["errors"]
    assert good["failed"] is False and good["llm"] == "half-down"
    assert good["high"] == "These are tonal piano notes."
    assert info["llm_failed"] == 1 and info["llm_neurons"] == 2
    assert any("1 of 2 LLM neurons failed at half-down" in m for m in logs)


@pytest.mark.parametrize("failed,total,limit,raises", [
    (0, 40, 0.0, False), (4, 40, 0.1, False), (5, 40, 0.1, True), (1, 1, 0.99, True),
    (40, 40, 1.0, False)])
def test_the_failed_fraction_limit(failed, total, limit, raises):
    errors = [f"e{i}" for i in range(failed)]
    if raises:
        with pytest.raises(TooManyLLMFailures, match=rf"{failed} of {total} LLM neurons failed "
                           r"at c .*first error: e0\. Successful calls are cached"):
            check_failures("summarize", "c", errors, total, limit, "LLM neurons")
    else:
        check_failures("summarize", "c", errors, total, limit, "LLM neurons")
