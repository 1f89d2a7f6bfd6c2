"""A labelled folder as a HEAR scene task: grouped stratified folds, what is left out, errors."""

import numpy as np
import pytest
import soundfile as sf

from dissect.cli import main
from dissect.hear.tasks.folder import FolderTaskConfig, folder_task_items, write_folder_task
from dissect.hear.tasks.reader import read_task


def _folder(tmp_path):
    """4 classes: a and b with 10 files in 5 sources of 2, c with 6 files in 3 sources,
    d with 2 files (too few); one unlabelled row and one row whose file is missing."""
    root = tmp_path / "clips"
    (root / "sub").mkdir(parents=True)
    rows = ["# a comment line", "filename,kind,source"]
    rng = np.random.default_rng(0)
    plan = [("a", 10), ("b", 10), ("c", 6), ("d", 2)]
    for lab, n in plan:
        for i in range(n):
            name = f"sub/{lab}{i}.wav"
            sf.write(root / name, rng.normal(scale=0.1, size=800 + 80 * i), 16000)
            rows.append(f"{name},{lab},{lab}-src{i // 2}")
    sf.write(root / "free.wav", np.zeros(1600), 16000)
    rows.append("free.wav,,none")
    rows.append("gone.wav,a,a-src9")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def test_folds_keep_each_source_in_one_fold_and_say_what_was_left_out(tmp_path):
    root = _folder(tmp_path)
    cfg = FolderTaskConfig(root=str(root), label="kind", group="source", out=str(tmp_path / "t"))
    items, left = folder_task_items(cfg)
    assert left == {"dropped_classes": {"d": 2}, "dropped_by_groups": {},
                    "missing_files": ["gone.wav"], "unlabelled": 1}
    assert sorted(it.labels[0] for it in items) == ["a"] * 10 + ["b"] * 10 + ["c"] * 6
    fold_of_source: dict[str, set] = {}
    for it in items:
        src = f"{it.labels[0]}-src{int(it.name.split('__')[1][1:-4]) // 2}"
        fold_of_source.setdefault(src, set()).add(it.split)
    assert all(len(f) == 1 for f in fold_of_source.values())  # no source spans two folds
    per_fold = {}
    for it in items:
        per_fold.setdefault(it.split, []).append(it.labels[0])
    assert sorted(per_fold) == [f"fold{i:02d}" for i in range(5)]
    for labs in per_fold.values():  # a and b: one source (2 files) in every fold
        assert labs.count("a") == 2 and labs.count("b") == 2
    again, _ = folder_task_items(cfg)
    assert [(i.name, i.split) for i in again] == [(i.name, i.split) for i in items]

    task = write_folder_task(cfg)
    back = read_task(task.root)
    assert task.root.name == "clips_kind-v1-full" and back.vocabulary == ["a", "b", "c"]
    assert back.metadata["sample_duration"] == pytest.approx((800 + 80 * 9) / 16000)
    assert back.metadata["dissect"]["dropped_classes"] == {"d": 2}
    got = {name: labs for s in back.splits for name, labs in back.labels(s).items()}
    assert got["sub__c5.wav"] == ["c"] and len(got) == 26


def test_bad_input_names_the_file_and_the_column(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ValueError, match=r"metadata.csv: label='category' is not a column; "
                                         r"columns: \['filename', 'kind', 'source'\]"):
        folder_task_items(FolderTaskConfig(root=str(root), label="category"))
    with pytest.raises(FileNotFoundError, match="nope.csv: no such metadata file"):
        folder_task_items(FolderTaskConfig(root=str(root), label="kind", metadata="nope.csv"))
    with pytest.raises(ValueError, match="fewer than two classes"):
        folder_task_items(FolderTaskConfig(root=str(root), label="kind", min_clips=11))


def test_cli_writes_the_task(tmp_path, capsys):
    root = _folder(tmp_path)
    assert main(["hear-tasks", "folder", f"root={root}", "label=kind", "group=source",
                 f"out={tmp_path / 'out'}", "folds=3"]) == 0
    err = capsys.readouterr().err
    assert "clips_kind-v1-full: 3 classes, 26 files in 3 folds" in err
    assert sorted(read_task(tmp_path / "out" / "clips_kind-v1-full").splits) == [
        "fold00", "fold01", "fold02"]
    assert main(["hear-tasks", "folder", f"root={root}", "label=kind", "folds=2"]) == 2
