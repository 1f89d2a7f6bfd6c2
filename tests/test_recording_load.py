"""``Recording.load`` trusts nothing in the directory: recorded hashes, the layer a file holds,
shapes against the clips and units, and layer names that become file names."""

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

import dissect
from dissect import artifacts
from dissect.api import Recording, RecordingMismatch


class Two(nn.Module):
    """[B, n] waveform -> frames of 100 samples -> ``a``: Linear(100, 5) -> ``b``: Linear(5, 5):
    two layers of the same width, so their files can be swapped without a shape error."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(100, 5)
        self.b = nn.Linear(5, 5)

    def forward(self, x):
        B, n = x.shape
        return self.b(self.a(x[:, : n - n % 100].reshape(B, -1, 100)))


@pytest.fixture(scope="module")
def model():
    return dissect.load(Two(), layers=["a", "b"], sample_rate=1000, device="cpu")


def waves(n, loud_from=None):
    """``n`` noise clips; from index ``loud_from`` on, 100 times louder (they take every top
    and bottom place)."""
    rng = np.random.default_rng(n)
    out = [rng.standard_normal(800).astype(np.float32) for _ in range(n)]
    return [w * 100 if loud_from is not None and i >= loud_from else w
            for i, w in enumerate(out)]


def record(model, n, loud_from=None):
    return dissect.record(model, waves(n, loud_from), sample_rate=1000, k=3, progress=False)


def as_pipeline_run(run):
    """Turn a saved recording into what the record stage leaves: no recording.json, the
    layers and the per-layer files' sha256 in the manifest's record entry."""
    meta = json.loads((run / "recording.json").read_text())
    (run / "recording.json").unlink()
    m = artifacts.Manifest(run)
    m.stages["record"] = {"status": "done", "outputs": dict(meta["files"]), "info": {
        "adapter": "generic", "source": "None",
        "layers": {name: {"units": 5, "module": name, "kind": "module"}
                   for name in meta["layers"]}}}
    m.save()
    return run


def swap(run, x, y):
    tmp = run / "swap.tmp"
    (run / x).rename(tmp)
    (run / y).rename(run / x)
    tmp.rename(run / y)


def test_a_saved_recording_loads_back_exactly(model, tmp_path):
    rec = record(model, 12)
    run = rec.save(tmp_path / "run")
    meta = json.loads((run / "recording.json").read_text())
    assert sorted(meta["files"]) == ["activations/a.safetensors", "activations/b.safetensors",
                                     "stats/a.safetensors", "stats/b.safetensors"]
    assert meta["files"]["stats/a.safetensors"] == artifacts.hash_file(run / "stats/a.safetensors")
    back = Recording.load(run)
    assert back.neurons() == rec.neurons() and back.clip_ids == rec.clip_ids
    for layer in ("a", "b"):
        np.testing.assert_array_equal(back.activations(layer), rec.activations(layer))
    back2 = Recording.load(as_pipeline_run(run))  # the record stage's form loads as well
    assert back2.neurons() == rec.neurons()


@pytest.mark.parametrize("form", ["saved", "pipeline", "saved-without-hashes"])
def test_swapped_layer_files_are_refused_naming_the_file(model, tmp_path, form):
    run = record(model, 12).save(tmp_path / "run")
    if form == "pipeline":
        as_pipeline_run(run)
    elif form == "saved-without-hashes":  # saved before hashes were kept: the layer check
        meta = json.loads((run / "recording.json").read_text())
        del meta["files"]
        (run / "recording.json").write_text(json.dumps(meta))
    swap(run, "stats/a.safetensors", "stats/b.safetensors")
    with pytest.raises(RecordingMismatch) as info:
        Recording.load(run)
    msg = str(info.value)
    assert msg.startswith(f"{run / 'stats' / 'a.safetensors'}: ")
    if form == "saved-without-hashes":
        assert "holds layer 'b', not 'a'" in msg
    else:
        assert "changed since it was recorded" in msg


def test_a_file_rewritten_in_place_fails_its_hash(model, tmp_path):
    """The same layer recorded again over other clips: a valid file of the right layer and
    shapes, but not the one the manifest recorded."""
    run = as_pipeline_run(record(model, 12).save(tmp_path / "run"))
    other = record(model, 12, loud_from=6).save(tmp_path / "other")
    shutil.copy(other / "stats/b.safetensors", run / "stats/b.safetensors")
    with pytest.raises(RecordingMismatch, match=r"stats/b\.safetensors: changed since"):
        Recording.load(run)


def test_files_of_a_run_over_more_clips_are_refused(model, tmp_path):
    """Files from an 18-clip run beside the 12 clips of clips.jsonl (their hashes even
    recorded): the shapes and clip indices give them away before describe's IndexError."""
    run = record(model, 12).save(tmp_path / "run")
    big = record(model, 18, loud_from=12).save(tmp_path / "big")
    meta = json.loads((run / "recording.json").read_text())

    def bring(rel, source):
        shutil.copy(source / rel, run / rel)
        meta["files"][rel] = artifacts.hash_file(run / rel)
        (run / "recording.json").write_text(json.dumps(meta))

    shutil.copytree(run, tmp_path / "original")
    bring("activations/a.safetensors", big)
    with pytest.raises(RecordingMismatch) as info:
        Recording.load(run)
    assert str(info.value) == (f"{run / 'activations/a.safetensors'}: shape [18, 5], want "
                               "[12 clips, 5 units] (clips.jsonl has 12 clips)")
    bring("activations/a.safetensors", tmp_path / "original")
    assert Recording.load(run).clip_ids == [f"clip{i:05d}" for i in range(12)]
    bring("stats/b.safetensors", big)
    with pytest.raises(RecordingMismatch, match=r"stats/b\.safetensors: clip index 1[2-7] out "
                       r"of range for the 12 clips of clips\.jsonl"):
        Recording.load(run)


def test_unit_count_is_checked_against_the_manifest(model, tmp_path):
    run = as_pipeline_run(record(model, 12).save(tmp_path / "run"))
    m = artifacts.Manifest(run)
    m.stages["record"]["info"]["layers"]["b"]["units"] = 7
    m.save()
    with pytest.raises(RecordingMismatch, match=r"stats/b\.safetensors: 5 units, but the "
                       r"recording lists 7 for layer 'b'"):
        Recording.load(run)


@pytest.mark.parametrize("form", ["saved", "pipeline"])
@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "a/../b", "x\0y"])
def test_layer_names_that_are_paths_are_refused(model, tmp_path, form, name):
    run = record(model, 12).save(tmp_path / "run")
    if form == "pipeline":
        as_pipeline_run(run)
        m = artifacts.Manifest(run)
        m.stages["record"]["info"]["layers"][name] = {"units": 5}
        m.save()
    else:
        meta = json.loads((run / "recording.json").read_text())
        meta["layers"].append(name)
        (run / "recording.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="is not a plain layer name"):
        Recording.load(run)


def test_a_corrupt_stats_file_is_named(model, tmp_path):
    run = record(model, 12).save(tmp_path / "run")
    meta = json.loads((run / "recording.json").read_text())
    (run / "stats/a.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!")
    meta["files"]["stats/a.safetensors"] = artifacts.hash_file(run / "stats/a.safetensors")
    (run / "recording.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"stats/a\.safetensors: not a readable safetensors"):
        Recording.load(run)
