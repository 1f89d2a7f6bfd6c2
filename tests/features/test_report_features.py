"""The report's overview shows each SAE's reconstruction figures, read from the sidecar JSON
beside the file named in ``model.features``."""

from __future__ import annotations

import json

from dissect.report.data import RunData
from dissect.report.overview import feature_rows, overview_html


def _run(tmp_path, features):
    config = {"model": {"name": "crepe", "features": features}}
    return RunData(tmp_path, config, {}, {}, [], {}, [], ["conv6", "sae:conv6"])


def test_overview_shows_fvu_and_splice_from_sidecar(tmp_path):
    sae = tmp_path / "conv6.safetensors"
    sae.write_bytes(b"")  # the overview reads only the sidecar
    (tmp_path / "conv6.safetensors.json").write_text(json.dumps({
        "config": {"layer": "conv6", "n_latents": 256, "k": 32},
        "metrics": {"heldout": {"fvu": 0.03325300064292474, "cosine": 0.98953, "frames": 2206},
                    "splice": {"logit_mse": 0.007393261080572797, "top1_agreement": 1.0,
                               "next_cosine": 0.9999215573964071}}}))
    run = _run(tmp_path, [str(sae)])
    assert feature_rows(run) == [["sae:conv6", str(sae), 256, 32, 0.0333, 0.9895, 0.9999, 1.0,
                                  0.007393, 2206, ""]]
    html = overview_html(run)
    assert "<h3>Sparse-autoencoder features</h3>" in html
    assert "<th>held-out FVU</th>" in html
    assert "<td>sae:conv6</td>" in html and "<td>0.0333</td>" in html
    assert "<td>0.007393</td>" in html


def test_overview_says_why_a_splice_is_missing(tmp_path):
    sae = tmp_path / "fc1.safetensors"
    (tmp_path / "fc1.safetensors.json").write_text(json.dumps({
        "config": {"layer": "fc1", "n_latents": 8, "k": 2},
        "metrics": {"heldout": {"fvu": 0.14181624925129996}, "splice": {"error": "activation"}}}))
    row = feature_rows(_run(tmp_path, [str(sae)]))[0]
    assert row[4] == 0.1418 and row[6:9] == ["", "", ""]
    assert row[10] == "splice not measured: activation"


def test_overview_names_a_missing_sidecar(tmp_path):
    run = _run(tmp_path, [str(tmp_path / "gone.safetensors")])
    row = feature_rows(run)[0]
    assert row[2] == f"sidecar {tmp_path / 'gone.safetensors.json'} unreadable (FileNotFoundError)"
    assert "unreadable (FileNotFoundError)" in overview_html(run)


def test_overview_without_features_has_no_sae_section(tmp_path):
    assert "Sparse-autoencoder" not in overview_html(_run(tmp_path, []))
