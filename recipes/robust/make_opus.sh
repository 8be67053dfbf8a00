#!/bin/bash
# Opus-coded copies of the real sentence sets and the held-out synthetic voice, as messaging apps send
# voice messages: make_opus.sh KBPS [DATA] writes DATA/probe/opus/KBPS/*.opus and the manifests
# DATA/probe/{dctts,psdata,librivox,heldout}_opusKBPS.tsv (phonrec reads .opus directly).
# Needs opusenc (Debian: opus-tools) and sox. Score: phonrec eval --data DATA/probe/dctts_opus16.tsv
set -euo pipefail
k=${1:?usage: make_opus.sh KBPS [DATA]}
data=${2:-${PHONREC_DATA:-/work/data}}
for set in dctts psdata librivox heldout; do
  if [ "$set" = heldout ]; then m=$data/synth/test_heldout_voice.tsv; base=$data/synth; else m=$data/real/${set}_eval.tsv; base=; fi
  out=$data/probe/${set}_opus$k.tsv
  mkdir -p "$data/probe/opus/$k"
  : > "$out"
  grep -v "^#" "$m" | while IFS=$'\t' read -r a lab; do
    if [ -n "$base" ] && [ "${a:0:1}" != / ]; then a=$base/$a; fi
    o=$data/probe/opus/$k/${set}_$(basename "$a" .wav).opus
    # opusenc reads WAV at any rate; anything else goes through sox first.
    opusenc --quiet --bitrate "$k" "$a" "$o" 2>/dev/null || sox "$a" -t wav - | opusenc --quiet --bitrate "$k" - "$o"
    printf "%s\t%s\n" "$o" "$lab" >> "$out"
  done
done
