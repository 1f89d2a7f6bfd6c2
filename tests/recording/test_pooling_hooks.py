"""Pooling over valid frames, and the hook context manager."""

import pytest
import torch
from torch import nn

from dissect.recording.hooks import hooks
from dissect.recording.pooling import pool


def test_pool_mean_and_max_ignore_padding():
    x = torch.tensor([[[1.0, -1], [3, 5], [100, 100]], [[2, 2], [-100, 7], [4, 0]]])
    valid = torch.tensor([[True, True, False], [True, False, True]])
    mean, none = pool(x, valid, "mean")
    assert none is None and mean.tolist() == [[2.0, 2.0], [3.0, 1.0]]
    mx, peak = pool(x, valid, "max")
    assert mx.tolist() == [[3.0, 5.0], [4.0, 2.0]] and peak.tolist() == [[1, 1], [2, 0]]
    with pytest.raises(ValueError, match="no valid frame"):
        pool(x, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown reduction"):
        pool(x, valid, "median")


def test_capture_equals_direct_output_and_always_removes_hooks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(5, 4)
    seen = {}
    with hooks(net, {"hidden": "1", "out": "2"}, lambda o, site: seen.__setitem__(site, o)):
        y = net(x)
    assert torch.equal(seen["hidden"], torch.relu(net[0](x)))
    assert torch.equal(seen["out"], y)
    assert not net[1]._forward_hooks and not net[2]._forward_hooks

    def boom(o, site):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"), hooks(net, {"h": "0"}, boom):
        net(x)
    assert not net[0]._forward_hooks
    with pytest.raises(LookupError, match="no module 'nope'"), hooks(net, {"a": "nope"}, boom):
        pass


def test_hooks_edit_when_fn_returns_a_tensor_and_read_when_none():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    h = torch.relu(net[0](x))
    seen = {}

    def fn(out, *, site):
        seen[site] = out.clone()
        return torch.zeros_like(out) if site == "first" else None

    with hooks(net, {"first": "0", "last": "2"}, fn):
        y = net(x)
    # the replacement reached the rest of the model: ReLU(0) -> Linear gives only the bias
    torch.testing.assert_close(y, net[2].bias.expand(5, 2))
    torch.testing.assert_close(seen["first"], net[0](x))
    torch.testing.assert_close(seen["last"], y)  # later hooks see the edited stream
    torch.testing.assert_close(net(x), net[2](h))  # removed on exit


def test_hooks_replace_the_first_element_of_a_tuple_and_refuse_other_returns():
    class Pair(nn.Module):
        def forward(self, x):
            return x * 2, x + 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, x):
            a, b = self.pair(x)
            return a + b

    net, x = Net(), torch.ones(2, 3)
    with hooks(net, {"p": "pair"}, lambda out, site: out[0] * 0):
        torch.testing.assert_close(net(x), x + 1)
    with pytest.raises(TypeError, match="returned int"), \
            hooks(net, {"p": "pair"}, lambda out, site: 3):
        net(x)
