#!/usr/bin/env bash
# Degraded copies of the evaluation manifests (see README.md).
#   bash recipes/robust/run.sh [extra make_robust.py options, e.g. --seed 1]
# Reads $PHONREC_DATA/{real,synth}/*.tsv (default /work/data), writes $PHONREC_DATA/robust/.
# Manifests that do not exist (yet) are skipped with a message; finished outputs are skipped, so re-running
# after the synthetic sets appear only does the new work.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${PHONREC_DATA:-/work/data}"
OUT="$DATA/robust"

if ! command -v sox >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends sox
fi

# A Python 3 with numpy: $PYTHON, else python3, else $DATA/venv (numpy installed there if missing).
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if python3 -c "import numpy" >/dev/null 2>&1; then
    PY=python3
  else
    VENV="$DATA/venv"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -c "import numpy" >/dev/null 2>&1 || "$VENV/bin/pip" install -q numpy
    PY="$VENV/bin/python"
  fi
fi

ALL="pad,padfloor,joined,levels,background,dcoffset,tel8k,tel16k,8k16k,reverb,snr20,snr10,snr5,quiet,clip,clipmild,gated,loss"
FSDD="pad,padfloor,joined,levels,background,dcoffset,strings,8k16k,snr10,quiet,clip,clipmild,loss"   # FSDD: already 8 kHz, 0.3-1 s digits; strings: digits read one after another
# `room` (simulated rooms) needs pyroomacoustics: done when this Python has it.
if "$PY" -c "import pyroomacoustics" >/dev/null 2>&1; then
  ALL="$ALL,room"; FSDD="$FSDD,room"
else
  echo "robust/run.sh: no pyroomacoustics in $PY: the room condition is skipped (pip install pyroomacoustics)" >&2
fi

# `music20`, `music10` and the music non-speech set need real music: done when
# recipes/music/get_music.sh has fetched it.
MUSIC_NS=()
if ls "$DATA/music_real/"*.wav >/dev/null 2>&1; then
  ALL="$ALL,music20,music10"; FSDD="$FSDD,music20,music10"; MUSIC_NS=(--music-non-speech)
else
  echo "robust/run.sh: no $DATA/music_real: the music conditions are skipped (bash recipes/music/get_music.sh)" >&2
fi

mkdir -p "$OUT"
run() {  # run CONDITIONS MANIFEST...
  local conds="$1"; shift
  local have=()
  for m in "$@"; do
    if [ -f "$m" ]; then have+=(--manifest "$m"); else echo "robust/run.sh: $m not found, skipped" >&2; fi
  done
  [ "${#have[@]}" -gt 0 ] || return 0
  nice -n 10 "$PY" "$HERE/make_robust.py" "${have[@]}" --out "$OUT" --conditions "$conds" \
    "${EXTRA[@]+"${EXTRA[@]}"}"
}
EXTRA=("$@")

start=$(date +%s)
run "$ALL" "$DATA/real/psdata_eval.tsv" "$DATA/real/librivox_eval.tsv" "$DATA/real/dctts_eval.tsv" \
  "$DATA/synth/test_heldout_voice.tsv" "$DATA/synth/dev.tsv"
run "$FSDD" "$DATA/real/fsdd_eval.tsv"
nice -n 10 "$PY" "$HERE/make_robust.py" --out "$OUT" --non-speech "${MUSIC_NS[@]+"${MUSIC_NS[@]}"}" \
  "${EXTRA[@]+"${EXTRA[@]}"}"
echo "robust/run.sh: done in $(( $(date +%s) - start )) s -> $OUT" >&2
