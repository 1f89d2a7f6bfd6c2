"""Tiny models and adapters for the pruning tests (no weights, CPU, milliseconds)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dissect.models.base import Adapter, Batch, Site


class ToyNet(nn.Module):
    """conv (1->4) -> ReLU -> BatchNorm (hooked, conv site) -> mean over time
    -> fc1 (4->8, hooked, ffn site with GELU) -> GELU -> head (8->3)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv1d(1, 4, 5, padding=2)
        self.bn = nn.BatchNorm1d(4)
        self.fc1 = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            self.bn.running_mean.copy_(torch.randn(4, generator=g))
            self.bn.running_var.copy_(torch.rand(4, generator=g) + 0.5)
        self.eval()

    def forward(self, x):  # x [B, L]
        h = self.bn(F.relu(self.conv(x[:, None, :])))  # [B, 4, L]
        h = F.gelu(self.fc1(h.mean(dim=2)))
        return self.head(h)


class ToyAdapter(Adapter):
    name = "toy-prune"
    sample_rate = 16000

    def __init__(self, transform=F.gelu, **kw):
        super().__init__(**kw)
        self.transform = transform

    def sites(self, model):
        return {"conv": Site("conv", "bn", 4, "conv", 10.0),
                "fc1": Site("fc1", "fc1", 8, "ffn", 10.0, transform=self.transform),
                "head": Site("head", "head", 3, "output", 10.0)}

    def prepare(self, waveforms):
        x = torch.stack([torch.as_tensor(np.asarray(w, dtype=np.float32)) for w in waveforms])
        return Batch({"x": x}, torch.full((len(waveforms),), x.shape[1], dtype=torch.int64))

    def forward(self, model, batch):
        return model(batch.inputs["x"])

    def class_names(self, model):
        return ["a", "b", "c"]

    def head_layer(self, model):
        return "head"


class TwoUnitNet(nn.Module):
    """hidden = ReLU(x[:, :2]) via an identity fc1; logits = hidden @ W.T + b (2 classes)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(2))
            self.fc1.bias.zero_()
            self.head.weight.copy_(torch.tensor([[2.0, 0.0], [0.5, 1.0]]))
            self.head.bias.copy_(torch.tensor([0.0, -1.0]))
        self.eval()

    def forward(self, x):
        return self.head(F.relu(self.fc1(x[:, :2])))


class TwoUnitAdapter(ToyAdapter):
    name = "toy-two-unit"

    def sites(self, model):
        return {"fc1": Site("fc1", "fc1", 2, "ffn", 10.0, transform=F.relu),
                "head": Site("head", "head", 2, "output", 10.0)}

    def class_names(self, model):
        return ["a", "b"]


def waves(n: int = 3, length: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(length).astype(np.float32) for _ in range(n)]


class FrameNet(nn.Module):
    """x [B, T * 4] cut into T frames of 4 samples -> lin (4 -> 6) -> ReLU (hooked, ``block``
    site ``h``: ``[B, T, 6]``) -> mean over frames -> head (6 -> 3). The site has no
    activation on its hooked output, so SAE latents over it (``sae:h``) can be removed."""

    def __init__(self, seed: int = 0, width: int = 6):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(4, width)
        self.act = nn.ReLU()
        self.head = nn.Linear(width, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.eval()

    def forward(self, x):  # x [B, L]
        h = self.act(self.lin(x.reshape(x.shape[0], -1, 4)))  # [B, T, 6]
        return self.head(h.mean(dim=1))


class FrameAdapter(ToyAdapter):
    name = "toy-frames"

    def sites(self, model):
        return {"h": Site("h", "act", model.head.in_features, "block", 10.0),
                "head": Site("head", "head", 3, "output", 10.0)}

    def valid_frames(self, site, batch, n_frames):
        return torch.ones(len(batch.lengths), n_frames, dtype=torch.bool)
