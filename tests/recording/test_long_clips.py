"""Long clips cut into windows stream through batches of at most ``batch_size`` rows, and each
clip's pooled value is merged exactly across the batches its windows fall into."""

import numpy as np
import pytest
import torch

from dissect.models.generic import GenericAdapter
from dissect.recording.recorder import _batches, iter_segments, record
from dissect.recording.traces import frame_traces

SR = 1000  # toy rate: a frame is 100 samples (100 ms), centred at 50 ms


def clips():
    rng = np.random.default_rng(7)
    # two long clips (46 and 21 windows of 1 s every 0.5 s) between short ones; every length
    # is a multiple of one frame so the generic adapter's valid-frame rule is exact
    lengths = [700, 23400, 300, 11000, 1000, 500]
    return [rng.normal(size=n).astype(np.float32) for n in lengths]


def brute(model, wave, window=1000, hop=500):
    """One clip, window by window, each alone: (mean [5], max [5], peak ms of the max [5],
    peak ms of the max for the mean reduction is the same frame)."""
    starts = [0] if len(wave) <= window else list(range(0, len(wave) - window + hop, hop))
    starts = [s for s in starts if s < len(wave)]
    frames, times = [], []
    with torch.no_grad():
        for s in starts:
            w = wave[s : s + window]
            f = model.proj(torch.tensor(w).reshape(1, -1, 100))[0].double()
            frames.append(f)
            times.append(s + 50.0 + 100.0 * np.arange(len(f)))
    f = torch.cat(frames)
    t = np.concatenate(times)
    first = f.argmax(0).numpy()  # torch.argmax: the first maximal frame (the earlier window)
    return f.mean(0).numpy(), f.max(0).values.numpy(), t[first]


def run(adapter, model, sites, waves, reduction, batch_size):
    seen = []
    handle = model.register_forward_pre_hook(  # the adapter calls model(**inputs)
        lambda m, args, kwargs: seen.append(next(iter(kwargs.values())).shape[0]),
        with_kwargs=True)
    try:
        res = record(adapter, model, enumerate(waves), sites, reduction=reduction,
                     k=len(waves), batch_size=batch_size, windows=(1.0, 0.5), progress=False)
    finally:
        handle.remove()
    st = res.layers["proj"]
    order = st.top.index.numpy()  # [k, U]: every clip, sorted by value per unit
    values = np.zeros((len(waves), 5))
    peaks = np.zeros((len(waves), 5))
    for u in range(5):
        values[order[:, u], u] = st.top.values[:, u].numpy()
        peaks[order[:, u], u] = st.top.peak_ms[:, u].numpy()
    return values, peaks, seen, res


@pytest.mark.parametrize("padding_safe", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_long_clip_windows_stream_in_small_batches_and_merge_exactly(reduction, padding_safe,
                                                                     frame_toy):
    waves = clips()
    adapter = GenericAdapter(module=frame_toy(), layers=["proj"], sample_rate=SR,
                             padding_safe=padding_safe)
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)
    n_windows = [1, 46, 1, 21, 1, 1]  # 1 + ceil((n - 1000) / 500) for the long ones

    small, small_peaks, seen_small, res = run(adapter, model, sites, waves, reduction, 4)
    big, big_peaks, seen_big, _ = run(adapter, model, sites, waves, reduction, 64)

    # no forward pass ever holds more than batch_size rows; every window ran exactly once
    assert max(seen_small) <= 4 and sum(seen_small) == sum(n_windows) == 71
    assert sum(seen_big) == 71
    assert res.n_clips == 6
    assert res.audio_seconds == pytest.approx(sum(len(w) for w in waves) / SR)

    ref = np.stack([brute(model, w)[0 if reduction == "mean" else 1] for w in waves])
    ref_peaks = np.stack([brute(model, w)[2] for w in waves])
    np.testing.assert_allclose(small, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(big, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(small, big, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(small_peaks, ref_peaks)
    np.testing.assert_array_equal(big_peaks, ref_peaks)
    # the long clip's peak lies far beyond its first batch of windows for some unit
    assert ref_peaks[1].max() > 4 * 500


def test_batches_take_windows_lazily_and_split_long_clips():
    waves = clips()
    batches = list(_batches(enumerate(waves), 4, False, SR, (1.0, 0.5)))
    assert [len(b) for b in batches] == [4] * 17 + [3]
    rows = [r for b in batches for r in b]
    assert [r.clip for r in rows if r.last] == [0, 1, 2, 3, 4, 5]
    long_rows = [r for r in rows if r.clip == 1]
    assert [r.offset_ms for r in long_rows] == [500.0 * i for i in range(46)]
    assert len(long_rows[-1].wave) == 23400 - 45 * 500
    # the windows are views of the decoded clip, not copies
    assert all(np.shares_memory(r.wave, waves[1]) for r in long_rows)


def test_traces_of_a_windowed_clip_reproduce_the_streamed_pool(frame_toy):
    """The report's overlays re-run a long clip window by window (iter_segments): the trace's
    mean is the recorded (streamed, small-batch) mean and its argmax the recorded peak."""
    waves = clips()
    adapter = GenericAdapter(module=frame_toy(), layers=["proj"], sample_rate=SR)
    model = adapter.load()
    sites = adapter.resolve_layers(model, None)
    values, peaks, _, _ = run(adapter, model, sites, waves, "mean", 3)
    segs = {"long": list(iter_segments(waves[1], SR, (1.0, 0.5)))}
    tr = frame_traces(adapter, model, segs, {"long": {"proj": range(5)}}, batch_size=3,
                      progress=False)["long"]["proj"]
    assert len(tr.times_ms) == sum(len(s) // 100 for s, _ in segs["long"])
    for u in range(5):
        np.testing.assert_allclose(tr.values[u].mean(), values[1, u], rtol=1e-5)
        assert tr.times_ms[int(np.argmax(tr.values[u]))] == peaks[1, u]
