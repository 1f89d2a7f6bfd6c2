"""Test-wide settings: never touch the network (tests build tiny models or use packaged ones),
and keep every cache (synth renders, LLM responses) in a per-session temporary directory unless
``DISSECT_CACHE`` is set, so a test run never reads or fills ``~/.cache/dissect``."""

import os

# OpenMP threads that wait for work sleep instead of spinning: with the default (spinning) policy
# a 2-core machine running anything else besides the suite turns each tiny torch op (SmolLM2's
# attention, a few microseconds of work) into milliseconds of waiting for a descheduled thread.
# Set before torch (and libgomp) load; subprocesses (Ray workers, benchmarks) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    if "DISSECT_CACHE" in os.environ:
        yield os.environ["DISSECT_CACHE"]
        return
    path = str(tmp_path_factory.mktemp("dissect-cache"))
    os.environ["DISSECT_CACHE"] = path
    try:
        yield path
    finally:
        os.environ.pop("DISSECT_CACHE", None)


class FrameToy(nn.Module):
    """``[B, n]`` waveform -> frames of 100 samples -> ``Linear(100, 5)`` -> ``[B, T, 5]``
    (at 1 kHz a frame is 100 ms, centred at 50 ms); seeded, so every instance is the same."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(100, 5)

    def forward(self, x):
        B, n = x.shape
        return self.proj(x[:, : n - n % 100].reshape(B, -1, 100))


@pytest.fixture(scope="session")
def frame_toy():
    """The :class:`FrameToy` class (the recorder tests' toy model)."""
    return FrameToy


@pytest.fixture
def folder(tmp_path):
    """Two short readable clips, 0.1 s of 440 and 880 Hz (the probe stage takes a second);
    a test module may define its own ``folder``."""
    root = tmp_path / "clips"
    root.mkdir()
    t = np.arange(1600) / 16000
    sf.write(root / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(root / "b.wav", (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32), 16000)
    return root


@pytest.fixture(scope="module")
def loud_task(tmp_path_factory):
    """A tasks directory holding ``loud-v1-full``: 18 clips of 0.2 s noise at 16 kHz, label
    ``"1"`` louder than ``"0"``, 3 folds of 6 clips, scored by top-1 accuracy (read only)."""
    from dissect.hear.tasks import TaskItem, write_task

    root = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    items = [TaskItem(f"c{i:02d}.wav", f"fold{i % 3:02d}", [str(i % 2)],
                      waveform=(rng.normal(0, 0.1 + 0.3 * (i % 2), 3200)).astype(np.float32),
                      source_rate=16000) for i in range(18)]
    meta = {"task_name": "loud", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "new_split_kfold", "sample_duration": 0.2, "evaluation": ["top1_acc"]}
    write_task(root / "loud-v1-full", meta, items)
    return root
