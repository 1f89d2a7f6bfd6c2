"""GURA ensembles from the members' cached embeddings (:func:`combine_embedded`).

An ensemble's embedding is a function of its members' embeddings of the same audio
(:class:`~dissect.ensemble.model.EnsembleModel`): scene = the operator applied to the members'
scene embeddings; timestamps = each member's frames interpolated onto the finest member's
timestamps (:func:`dissect.ensemble.align.align_members`), then the operator. So when every
member's embeddings of a task are cached already (``run_hear`` wrote them), the ensemble's are
computed from those files, without running any model again: a suite with three single models
and three ensembles of them embeds each clip three times instead of twelve.

The result is an ordinary embeddings directory (the format of :mod:`dissect.hear.embed`), so
the HEAR probe reads it as it reads any module's. ``tests/hear/test_combine.py`` checks that
it equals what the ensemble module itself embeds.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dissect.artifacts import atomic_path, write_json, write_text
from dissect.ensemble import ops
from dissect.ensemble.align import align_members
from dissect.hear.embed import EmbeddedTask, frame_labels

OPS = ("cat", "avg")


def _combine(xs: list[torch.Tensor], op: str, seed: int) -> torch.Tensor:
    if op == "avg":
        return ops.avg(xs, None, "orthogonal", seed, False)
    return ops.cat(xs)


def _per_file(split) -> list[tuple[str, list[int]]]:
    """Rows of an event split grouped by file, in row order."""
    out: dict[str, list[int]] = {}
    for i, (f, _) in enumerate(split.filename_timestamps):
        out.setdefault(f, []).append(i)
    return list(out.items())


def combine_embedded(members: Sequence[EmbeddedTask], op: str, out_dir: str | Path, *,
                     name: str, seed: int = 0) -> EmbeddedTask:
    """Write the ``op`` (``cat`` | ``avg``) ensemble of ``members`` (the same task embedded by
    each member, in ensemble order) into ``out_dir`` and return it.

    Scene rows: ``op`` over the members' rows (``[n_files, D_m]`` each). Event rows: per file,
    every member's ``[T_m, D_m]`` frames aligned onto the timestamps of the member with the
    smallest hop (first on ties), then ``op``; labels recomputed on that grid
    (:func:`dissect.hear.embed.frame_labels`). ``avg`` maps every member to the widest width
    with fixed orthogonal maps (member ``m`` seeded ``seed + m``), as ``gura_avg``.

    Raises:
        ValueError: unknown ``op``, members of different tasks, or splits whose files differ.
    """
    if op not in OPS:
        raise ValueError(f"combine_embedded: op must be one of {OPS}, got {op!r}")
    if not members:
        raise ValueError("combine_embedded: no members")
    task = members[0].task
    if any(m.task.root != task.root for m in members):
        raise ValueError("combine_embedded: members embed different tasks: "
                         f"{sorted({str(m.task.root) for m in members})}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fname in ("task_metadata.json", "labelvocabulary.csv"):
        write_text(out_dir / fname, (task.root / fname).read_text("utf-8"))
    event = task.embedding_type == "event"
    for split in task.splits:
        write_text(out_dir / f"{split}.json", (task.root / f"{split}.json").read_text("utf-8"))
        parts = [m.split(split) for m in members]
        files = parts[0].files
        if any(p.files != files for p in parts):
            raise ValueError(f"combine_embedded: {task.name}/{split}: members list different "
                             "files")
        labels: list = []
        ft: list[tuple[str, float]] = []
        if not event:
            rows = _combine([torch.from_numpy(np.array(p.embeddings)) for p in parts], op,
                            seed).numpy()
            labels = parts[0].labels
        else:
            table = task.labels(split)
            groups = [_per_file(p) for p in parts]
            chunks = []
            for k, (fkey, _) in enumerate(groups[0]):
                embs, stamps = [], []
                for p, g in zip(parts, groups, strict=True):
                    key, idx = g[k]
                    if key != fkey:
                        raise ValueError(f"combine_embedded: {split}: file order differs")
                    embs.append(torch.from_numpy(np.array(p.embeddings[idx]))[None])
                    stamps.append(torch.tensor([p.filename_timestamps[i][1] for i in idx],
                                               dtype=torch.float64)[None])
                aligned, grid = align_members(embs, stamps)
                chunks.append(_combine(aligned, op, seed)[0].numpy())
                ts = grid[0].tolist()
                labels += frame_labels(table[fkey.split("/", 1)[1]], ts)
                ft += [(fkey, float(t)) for t in ts]
            rows = np.concatenate(chunks)
        rows = np.ascontiguousarray(rows, dtype="<f4")
        if not np.isfinite(rows).all():
            raise ValueError(f"combine_embedded: non-finite rows in {task.name}/{split}")
        with atomic_path(out_dir / f"{split}.embeddings.npy") as tmp:
            tmp.write_bytes(rows.tobytes())
        write_json(out_dir / f"{split}.embedding-dimensions.json", list(rows.shape))
        write_json(out_dir / f"{split}.target-labels.json", labels)
        with atomic_path(out_dir / f"{split}.target-labels.pkl") as tmp:
            tmp.write_bytes(pickle.dumps(labels))
        if event:
            write_text(out_dir / f"{split}.filename-timestamps.json", json.dumps(ft) + "\n")
        write_json(out_dir / f"{split}.embedding-meta.json", {
            "module": name, "combined_from": [m.module for m in members], "op": op,
            "seed": seed, "task": task.name, "split": split, "shape": list(rows.shape),
            "files": list(files), "embedding_type": task.embedding_type})
    return EmbeddedTask(out_dir, task, name)
