"""Stage ``record``: run the model over the indexed clips and keep every neuron's statistics.

Reads ``clips.jsonl``; writes ``stats/<layer>.safetensors`` (per unit: moments, quantiles,
histogram, top/bottom-k state), ``exemplars.jsonl`` (per neuron: top-k and bottom-k clips with
values and peak times) and, with ``record.dense=true``, ``activations/<layer>.safetensors``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dissect import artifacts
from dissect.audio import AudioError, ClipPolicy, record_waveform
from dissect.models.load import load_from_config
from dissect.recording.recorder import record
from dissect.recording.store import save_layer, summary, write_exemplars


def record_clips(run_dir: Path, model_cfg, record_cfg, audio_cfg) -> dict[str, Any]:
    """Record the configured layers over ``clips.jsonl``; write the artifacts; return info."""
    rows = artifacts.read_jsonl(run_dir / artifacts.CLIPS)
    if not rows:
        raise ValueError(f"{run_dir / artifacts.CLIPS}: no clips to record")
    adapter, model, device = load_from_config(model_cfg)
    sites = adapter.resolve_layers(model, list(model_cfg.layers))
    policy = ClipPolicy.from_config(audio_cfg)
    windows = None
    if audio_cfg.long_clip == "windows":
        windows = (audio_cfg.window_seconds, audio_cfg.window_hop_seconds)
    failed: list[dict[str, str]] = []

    def clips():
        for i, row in enumerate(rows):
            try:
                # a long windowed file is read window by window (bounded memory)
                wave = record_waveform(row["path"], adapter.sample_rate, policy)
            except AudioError as exc:  # changed on disk since the probe stage
                failed.append({"id": row["id"], "error": str(exc)})
                continue
            yield i, wave

    if record_cfg.backend == "ray":
        from dissect.recording.ray_backend import record_ray

        result = record_ray(
            model_cfg, rows, [s.name for s in sites], shard_dir=run_dir / "record_shards",
            reduction=record_cfg.reduction, k=record_cfg.k, batch_size=record_cfg.batch_size,
            windows=windows, dense=record_cfg.dense, hist_alpha=record_cfg.hist_alpha,
            audio_policy=policy, n_shards=record_cfg.shards, address=record_cfg.ray_address,
            progress=record_cfg.progress)
        failed += [{"id": f["id"], "error": f["error"]} for f in result.failed]
    elif record_cfg.backend == "local":
        result = record(
            adapter, model, clips(), sites,
            reduction=record_cfg.reduction, k=record_cfg.k, batch_size=record_cfg.batch_size,
            windows=windows, dense_rows=len(rows) if record_cfg.dense else None,
            hist_alpha=record_cfg.hist_alpha, device=device, total=len(rows),
            progress=record_cfg.progress,
        )
    else:
        raise ValueError(f"record.backend must be local or ray, got {record_cfg.backend!r}")
    if failed:
        raise RuntimeError(f"{len(failed)} clip(s) failed to load after the probe stage "
                           f"(rerun with force=[probe]): {failed[0]['error']}")
    outputs = []
    for state in result.layers.values():
        outputs += save_layer(run_dir, state, record_cfg.reduction)
    # only the per-layer files an earlier record run wrote (the manifest's list), never a file
    # someone else put into stats/ or activations/
    artifacts.remove_stale_outputs(run_dir, "record", outputs,
                                   under=(artifacts.STATS_DIR, artifacts.ACTIVATIONS_DIR))
    write_exemplars(run_dir, result.layers, [r["id"] for r in rows])
    rate = result.n_clips / max(result.seconds, 1e-9)
    print(f"[record] {result.n_clips} clips, {sum(s.units for s in sites)} neurons in "
          f"{len(sites)} layers, {result.seconds:.1f} s ({rate:.1f} clips/s) on {device}",
          file=sys.stderr)
    return {
        "_outputs": outputs,
        "adapter": adapter.name,
        "source": str(adapter.source),
        "device": str(device),
        "clips": result.n_clips,
        "audio_seconds": round(result.audio_seconds, 3),
        "record_seconds": round(result.seconds, 3),
        "layers": summary(result.layers),
        "head_layer": adapter.head_layer(model),
        "class_names": adapter.class_names(model),
    }

