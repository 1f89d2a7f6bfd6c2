"""Pooling over valid frames, and the hook context manager."""

import pytest
import torch
from torch import nn

from dissect.record.hooks import hooks
from dissect.record.pooling import pool


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
