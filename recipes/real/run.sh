#!/usr/bin/env bash
# Manifests for the real speech + the pocketsphinx allphone baseline on the eval manifests.
#   bash recipes/real/run.sh [--no-baseline] [make_real.py options, e.g. --fsdd-heldout nicolas]
# Installs apt packages pocketsphinx-testdata and sox, a venv with pocketsphinx at $PHONREC_DATA/venv
# (default /work/data/venv), fetches CMUdict, writes $PHONREC_DATA/real/*.tsv and, unless --no-baseline,
# $PHONREC_DATA/real/pocketsphinx_per.tsv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${PHONREC_DATA:-/work/data}"
VENV="$DATA/venv"
OUT="$DATA/real"
mkdir -p "$OUT"

baseline=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-baseline" ]; then baseline=0; else args+=("$a"); fi
done

missing=""
for p in pocketsphinx-testdata sox; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

nice -n 10 python3 "$HERE/make_real.py" --out "$OUT" "${args[@]+"${args[@]}"}"

if [ "$baseline" = 1 ]; then
  if ! "$VENV/bin/python" -c "import pocketsphinx" >/dev/null 2>&1; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pocketsphinx
  fi
  nice -n 10 "$VENV/bin/python" "$HERE/pocketsphinx_baseline.py" \
    "$OUT/psdata_eval.tsv" "$OUT/librivox_eval.tsv" "$OUT/fsdd_eval.tsv" "$OUT/dctts_eval.tsv" \
    | tee "$OUT/pocketsphinx_per.tsv"
fi
