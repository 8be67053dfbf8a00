#!/usr/bin/env bash
# Run every fuzz target (or those named) for RUNS executions each, one process, starting from the
# committed seeds; new inputs go to fuzz/corpus/TARGET (not committed), crashes to fuzz/artifacts/.
#   bash fuzz/run.sh                 # 1,000,000 runs of each target
#   RUNS=20000 bash fuzz/run.sh audio arpa
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-1000000}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(audio manifest kaldi_dir arpa model_file)
for target in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "== $target ($RUNS runs)"
  start=$(date +%s)
  cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -runs="$RUNS" -max_len=65536 -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::|#[0-9]+ *DONE|==[0-9]+==|SUMMARY|Done)" || true
  echo "$target: $(( $(date +%s) - start )) s"
done
