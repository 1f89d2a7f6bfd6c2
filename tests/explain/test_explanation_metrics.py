"""Neuron_Eval's sanity tests on the project's metric functions: the metric that chooses the
shown description passes both; AUROC-style scores fail, as the paper reports."""

import pytest

from dissect.explain.metrics import METRICS, passes, sanity_test

#: The paper's verdicts (missing labels, extra labels).
EXPECTED = {"correlation": (True, True), "cosine": (True, True), "auprc": (True, True),
            "f1": (True, True), "iou": (True, True), "recall": (True, False),
            "precision": (False, True), "auc": (True, False), "inverse_auc": (False, True)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sanity_tests_match_the_paper(name):
    res = sanity_test(METRICS[name], n=40_000, draws=3)
    got = passes(res)
    assert (got["missing"], got["extra"]) == EXPECTED[name], res


def test_inverse_auc_barely_moves_under_missing_labels_at_low_frequency():
    res = sanity_test(METRICS["inverse_auc"], gammas=(0.001,), n=40_000, draws=3)
    assert 0 < res["missing"][0.001] < 1e-3  # about gamma / 4
    assert res["extra"][0.001] == pytest.approx(0.25, abs=0.01)  # 1 -> 0.75
