"""The offline HEAR suite: grouped folds with min_groups, the KTuberling reader, event mixing
(active part, onsets, event-to-background ratio), and a whole task written from a package."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from dissect.cli import main
from dissect.hear.tasks import suite as S
from dissect.hear.tasks.folder import grouped_fold_items
from dissect.hear.tasks.reader import read_task

SR = 16000


def test_min_groups_drops_a_class_held_by_too_few_sources(tmp_path):
    rows = []
    for lab, groups in (("a", 5), ("b", 5), ("c", 2)):
        for i in range(10):
            name = f"{lab}{i}.wav"
            sf.write(tmp_path / name, np.zeros(160), SR)
            rows.append({"filename": name, "kind": lab, "src": f"{lab}{i % groups}"})
    items, left = grouped_fold_items(rows, tmp_path, label="kind", group="src", folds=5,
                                     min_groups=3)
    assert left["dropped_by_groups"] == {"c": 2} and left["dropped_classes"] == {}
    assert sorted({it.labels[0] for it in items}) == ["a", "b"]
    fold_of = {}
    for it, r in zip(items, [r for r in rows if r["kind"] != "c"], strict=True):
        assert it.name == r["filename"]
        fold_of.setdefault(r["src"], set()).add(it.split)
    assert all(len(v) == 1 for v in fold_of.values())
    with pytest.raises(ValueError, match="fewer than two classes"):
        grouped_fold_items(rows, tmp_path, label="kind", group="src", folds=5, min_groups=6)


def test_active_part_cuts_to_the_sounding_span():
    x = np.zeros(SR, dtype=np.float32)
    x[1600:1600 + 4800] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4800) / SR)
    seg = S.active_part(x, SR)
    assert len(seg) == 4800  # 10-ms frames 10..39, exactly the tone
    assert np.allclose(seg, x[1600:6400])
    assert len(S.active_part(x, SR, max_seconds=0.1)) == 1600
    assert len(S.active_part(np.zeros(SR, dtype=np.float32), SR)) == 0


@pytest.mark.parametrize("ebr", [-6.0, 0.0, 6.0])
def test_mix_scene_places_events_apart_at_the_asked_ratio(ebr):
    rng = np.random.default_rng(1)
    bg = np.full(3 * SR, 0.1, dtype=np.float32)  # constant: every excerpt is the same
    ev1 = np.sin(2 * np.pi * 300 * np.arange(SR // 2) / SR).astype(np.float32)
    ev2 = rng.normal(size=SR // 4).astype(np.float32)
    x, labels = S.mix_scene(bg, [("tone", ev1), ("noise", ev2)], SR, ebr, rng, seconds=4.0)
    assert x.shape == (4 * SR,) and x.dtype == np.float32
    assert [lab["label"] for lab in labels] == ["tone", "noise"]
    spans = []
    for lab, ev in zip(labels, (ev1, ev2), strict=True):
        a, b = round(lab["start"] * SR / 1000), round(lab["end"] * SR / 1000)
        assert b - a == len(ev)
        added = x[a:b].astype(np.float64) - 0.1
        ratio_db = 20 * np.log10(np.sqrt(np.mean(added**2)) / 0.1)
        assert ratio_db == pytest.approx(ebr, abs=1e-3)
        # the added part is the event itself, scaled
        assert abs(np.corrcoef(added, ev)[0, 1]) > 0.999
        spans.append((a, b))
    assert spans[0][1] <= spans[1][0]  # in order, never overlapping
    outside = np.ones(len(x), bool)
    for a, b in spans:
        outside[a:b] = False
    assert np.allclose(x[outside], 0.1)
    with pytest.raises(ValueError, match="do not fit"):
        S.mix_scene(bg, [("tone", np.ones(5 * SR, np.float32))], SR, 0.0, rng, seconds=4.0)


def _ktuberling_deb(tmp_path):
    """A fake ktuberling-data .deb: 3 languages x 12 words; one French file byte-identical
    to the English one is kept once; one theme names a missing file."""
    pkg = tmp_path / "pkg"
    sounds = pkg / "usr/share/ktuberling/sounds"
    rng = np.random.default_rng(0)
    for lang in ("en", "fr", "de"):
        (sounds / lang).mkdir(parents=True)
        entries = []
        for i in range(12):
            f = sounds / lang / f"w{i}.wav"
            sf.write(f, rng.normal(scale=0.1, size=1600 + 16 * i), SR)
            entries.append(f'<sound name="word{i}" file="{lang}/w{i}.wav" />')
        if lang == "fr":
            shutil.copy(sounds / "en" / "w0.wav", sounds / "fr" / "w0.wav")
            entries.append('<sound name="ghost" file="fr/missing.wav" />')
        (sounds / f"{lang}.soundtheme").write_text(
            f'<language code="{lang}">\n' + "\n".join(entries) + "\n</language>\n")
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(
        "Package: ktuberling-data\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: t <t@t>\nDescription: test\n")
    debs = tmp_path / "data" / "debs"
    debs.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(debs / "ktuberling-data_1.0_all.deb")],
                   check=True, capture_output=True)
    return tmp_path / "data"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_ktuberling_language_task_from_a_package(tmp_path):
    data = _ktuberling_deb(tmp_path)
    root = S.fetch_package("ktuberling-data", data / "debs")
    rows, info = S.ktuberling_rows(root)
    assert info == {"duplicates_dropped": 1}
    assert len(rows) == 35 and {r["language"] for r in rows} == {"en", "fr", "de"}
    assert {"filename": "fr/w0.wav", "language": "fr", "word": "fr:word0"} not in rows

    cfg = S.SuiteConfig(out=str(tmp_path / "tasks"), data_dir=str(data),
                        tasks=["ktuberling_language"], min_clips=10)
    written = S.write_offline_suite(cfg, log=lambda _: None)
    task = read_task(written["ktuberling_language"].root)
    assert task.vocabulary == ["de", "en", "fr"] and task.metadata["sample_duration"] == 2.0
    labels = {n: v for s in task.splits for n, v in task.labels(s).items()}
    assert len(labels) == 35 and labels["en__w3.wav"] == ["en"]
    per_fold = [len(task.labels(s)) for s in task.splits]
    assert sorted(per_fold) == [7, 7, 7, 7, 7]
    meta = task.metadata["dissect"]
    assert meta["duplicates_dropped"] == 1 and meta["suite"] == "offline"
    wav, sr = sf.read(task.root / "16000" / task.splits[0] / next(iter(task.labels(
        task.splits[0]))))
    assert sr == SR and len(wav) == 2 * SR
    summary = json.loads((tmp_path / "tasks" / "suite.json").read_text())
    assert summary["ktuberling_language"]["files"] == 35

    # the command line writes the same task, byte for byte
    assert main(["hear-tasks", "suite=offline", f"out={tmp_path / 'cli'}", f"data_dir={data}",
                 "tasks=[ktuberling_language]", "min_clips=10"]) == 0
    cli = tmp_path / "cli" / task.root.name
    for f in sorted(task.root.rglob("*")):
        if f.is_file():
            assert (cli / f.relative_to(task.root)).read_bytes() == f.read_bytes()


def test_a_task_without_its_source_is_skipped_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(S.shutil, "which", lambda _: None)  # no apt-get here
    cfg = S.SuiteConfig(out=str(tmp_path / "tasks"), data_dir=str(tmp_path / "data"),
                        tasks=["ktuberling_language"])
    assert S.write_offline_suite(cfg, log=lambda _: None) == {}
    summary = json.loads((tmp_path / "tasks" / "suite.json").read_text())
    assert "no apt-get" in summary["ktuberling_language"]["skipped"]
    with pytest.raises(ValueError, match="unknown"):
        S.SuiteConfig(tasks=["nope"])
