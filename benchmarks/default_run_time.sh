#!/bin/bash
# The README's default run, timed per stage, for several checkouts one after the other, each
# with a fresh run directory and an empty LLM cache (so every LLM call is made).
#
#   bash benchmarks/default_run_time.sh OUT_DIR NAME=CHECKOUT [NAME=CHECKOUT ...]
#   e.g. git worktree add --detach /tmp/before e66a12a
#        bash benchmarks/default_run_time.sh /tmp/tdef before=/tmp/before after=.
#
# Prints, per checkout, the wall time, the load average and each stage's "done in" line.
# Uses the Python of this checkout's .venv (PYTHON overrides) with PYTHONPATH=CHECKOUT.
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
mkdir -p "$out"
for pair in "$@"; do
  name=${pair%%=*}; src=$(cd "${pair#*=}" && pwd)
  rm -rf "$out/run_$name" "$out/llm_$name"
  start=$(date +%s)
  (cd "$src" && PYTHONPATH="$src" "$py" -m dissect.cli run run_dir="$out/run_$name" \
     llm.cache_dir="$out/llm_$name") > "$out/$name.log" 2>&1
  end=$(date +%s)
  echo "$name: wall $((end - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -a "done in\|(.* calls)\|LLM phrasings" "$out/$name.log" | sed 's/.*\r//'
done
