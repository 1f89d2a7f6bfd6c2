#!/usr/bin/env bash
# Build the real-sound probe set: freely licensed recordings from five Debian packages.
#
#   bash scripts/get_free_sounds.sh [OUT]        # default OUT: data/free_sounds (git-ignored)
#
# Downloads sound-theme-freedesktop, sonic-pi-samples, lmms-common, hydrogen-drumkits and
# gcompris-qt-data with `apt-get download` (no root needed, ~217 MB, kept in OUT/.debs), then
# runs `python -m dissect.datasets.free_sounds`, which extracts them (GCompris' Qt .rcc bundles
# too), labels every file with the hand-made rules of data/free_sounds.csv and writes
# OUT/<package>/*.wav, OUT/metadata.csv and OUT/free_sounds.json. Packages already installed are
# read from / when apt-get is not available. Environment: DISSECT_VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/free_sounds}"
py="${DISSECT_VENV:-.venv}/bin/python"
[ -x "$py" ] || py=python3
pkgs="sound-theme-freedesktop sonic-pi-samples lmms-common hydrogen-drumkits gcompris-qt-data"
mkdir -p "$out/.debs"
if command -v apt-get >/dev/null 2>&1; then
  (cd "$out/.debs" && for p in $pkgs; do
     ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" || echo "apt-get download $p failed" >&2
   done)
else
  echo "get_free_sounds: no apt-get; using installed packages only" >&2
fi
exec "$py" -m dissect.datasets.free_sounds --debs "$out/.debs" --out "$out"
