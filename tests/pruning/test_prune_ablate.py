"""Hook ablation is reversible; exported and applied masks equal hook ablation."""

import copy

import numpy as np
import pytest
import torch
from prune_toys import ToyAdapter, ToyNet, waves

from dissect.pruning.ablate import (
    apply_masks,
    export_masks,
    group_neurons,
    load_masks,
    save_masks,
    zeroed,
)

NEURONS = [("conv", 1), ("conv", 3), ("fc1", 0), ("fc1", 5), ("fc1", 6)]


def run(model, adapter, w):
    with torch.no_grad():
        return adapter.forward(model, adapter.prepare(w))


def hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_ablation_changes_outputs_and_is_exactly_undone():
    model, adapter, w = ToyNet(), ToyAdapter(), waves()
    before = run(model, adapter, w)
    state = copy.deepcopy(model.state_dict())
    with zeroed(model, adapter, NEURONS) as groups:
        assert groups == {"conv": [1, 3], "fc1": [0, 5, 6]}
        assert hooks(model) == 2
        during = run(model, adapter, w)
    assert not torch.equal(before, during)
    assert hooks(model) == 0
    assert torch.equal(run(model, adapter, w), before)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_hooks_removed_when_the_block_raises():
    model, adapter = ToyNet(), ToyAdapter()
    with pytest.raises(RuntimeError, match="boom"), zeroed(model, adapter, NEURONS):
        raise RuntimeError("boom")
    assert hooks(model) == 0


def test_ablated_units_are_zero_at_the_site():
    model, adapter, w = ToyNet(), ToyAdapter(), waves()
    seen = {}
    with zeroed(model, adapter, NEURONS):
        # hooks registered later see the output the ablation hook returned
        hb = model.bn.register_forward_hook(lambda m, i, o: seen.update(bn=o))
        hh = model.head.register_forward_pre_hook(lambda m, i: seen.update(h=i[0]))
        run(model, adapter, w)
        hb.remove()
        hh.remove()
    assert torch.all(seen["bn"][:, [1, 3]] == 0) and torch.any(seen["bn"][:, [0, 2]] != 0)
    assert torch.all(seen["h"][:, [0, 5, 6]] == 0)  # GELU(0) = 0 after the zeroed fc1 units
    assert torch.any(seen["h"][:, [1, 2]] != 0)


def test_bad_neurons_hook_nothing():
    model, adapter = ToyNet(), ToyAdapter()
    with pytest.raises(KeyError), zeroed(model, adapter, [("nope", 0)]):
        pass
    with pytest.raises(IndexError), zeroed(model, adapter, [("conv", 4)]):
        pass
    assert hooks(model) == 0


def test_activation_that_does_not_map_zero_to_zero_is_refused():
    model, adapter = ToyNet(), ToyAdapter(transform=torch.sigmoid)
    with pytest.raises(NotImplementedError), zeroed(model, adapter, [("fc1", 0)]):
        pass
    with pytest.raises(NotImplementedError):
        apply_masks(model, adapter, {"fc1": [0]})


def test_export_save_load_apply_equals_hook_ablation(tmp_path):
    model, adapter, w = ToyNet(), ToyAdapter(), waves(4)
    with zeroed(model, adapter, NEURONS):
        hooked = run(model, adapter, w)
    masks = export_masks(NEURONS, adapter.sites(model))
    assert set(masks) == {"conv", "fc1"} and masks["conv"].tolist() == [0, 1, 0, 1]
    pj, ps = save_masks(masks, tmp_path / "m.masks")
    for path in (pj, ps):
        loaded = load_masks(path)
        assert {k: v.tolist() for k, v in loaded.items()} == {k: v.tolist()
                                                              for k, v in masks.items()}
    edited = apply_masks(copy.deepcopy(model), adapter, load_masks(ps))
    assert torch.equal(run(edited, adapter, w), hooked)
    assert torch.all(edited.bn.weight[[1, 3]] == 0) and torch.all(edited.fc1.bias[[0, 5, 6]] == 0)
    assert not torch.equal(run(model, adapter, w), hooked)  # the original is untouched


def test_group_neurons_accepts_masks_and_pairs():
    assert group_neurons({"a": np.array([True, False, True])}) == {"a": [0, 2]}
    assert group_neurons([("b", 2), ("b", 1), ("b", 2)]) == {"b": [1, 2]}


@pytest.mark.real
def test_crepe_tiny_mask_equals_hooks():
    from dissect.models import get_adapter

    adapter = get_adapter("crepe", source="tiny", hop_ms=100)
    model = adapter.load()
    t = np.arange(3200) / 16000
    w = [(0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 880.0)]
    neurons = [("conv1", 3), ("conv1", 100), ("conv3", 2), ("conv6", 10), ("conv6", 63)]
    before = run(model, adapter, w)
    with zeroed(model, adapter, neurons):
        hooked = run(model, adapter, w)
    assert not torch.equal(before, hooked)
    assert torch.equal(run(model, adapter, w), before)
    edited = apply_masks(copy.deepcopy(model), adapter, export_masks(neurons, adapter.sites(model)))
    assert torch.equal(run(edited, adapter, w), hooked)
