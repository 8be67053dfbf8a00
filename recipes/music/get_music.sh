#!/usr/bin/env bash
# Real instrumental music for the `music20` / `music10` robustness conditions (recipes/robust): game
# soundtracks from Debian's archive, decoded to 16 kHz mono 16-bit WAV.
#   bash recipes/music/get_music.sh            # -> $PHONREC_DATA/music_real/*.wav + SOURCE.md (~1 min)
# Packages (downloaded with `apt-get download`, unpacked, not installed):
#   asc-music            3 tracks (rock, electronic), GPL-2+
#   wesnoth-1.16-music   41 tracks (orchestral, folk), GPL-2+   (silence.ogg and the choral
#                        nunc_dimittis.ogg left out: a music bed here has no voice in it)
#   drascula-music       31 tracks (adventure-game score), the Drascula licence (free redistribution)
# Training never sees these recordings: `phonrec train --music` synthesises its music (src/train/music.rs),
# so the conditions measure music the network has not heard.
set -euo pipefail
DATA="${PHONREC_DATA:-/work/data}"
OUT="$DATA/music_real"
WORK="$DATA/music_real.download"
command -v sox >/dev/null || { echo "get_music.sh: needs sox with libsox-fmt-all (ogg, mp3)" >&2; exit 1; }
mkdir -p "$OUT" "$WORK"
cd "$WORK"
PACKAGES="asc-music wesnoth-1.16-music drascula-music"
for p in $PACKAGES; do
  ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" || {
    echo "get_music.sh: apt-get download $p failed (run apt-get update first)" >&2; exit 1; }
done
rm -rf pkg && mkdir pkg
for d in *.deb; do dpkg-deb -x "$d" pkg; done
n=0
while IFS= read -r f; do
  base="$(basename "$f")"; base="${base%.*}"
  case "$base" in silence|nunc_dimittis) continue;; esac
  pkgdir="$(echo "$f" | sed -E 's|^pkg/usr/share/(games/)?||; s|/.*||')"
  sox -q "$f" -r 16000 -c 1 -b 16 "$OUT/${pkgdir}_${base}.wav" 2>/dev/null || {
    echo "get_music.sh: could not decode $f (apt-get install libsox-fmt-all)" >&2; exit 1; }
  n=$((n + 1))
done < <(find pkg -type f \( -name '*.ogg' -o -name '*.mp3' \) | sort)
{
  echo "# Real music for recipes/robust's music conditions"
  echo
  echo "Decoded by recipes/music/get_music.sh on $(date -u +%Y-%m-%d) from Debian packages (\`apt-get download\`):"
  for d in *.deb; do echo "- $d"; done
  echo
  echo "Licences (each package's /usr/share/doc/PACKAGE/copyright, copied below): asc-music and"
  echo "wesnoth-1.16-music GPL-2+; drascula-music the Drascula licence (free redistribution). Not to be"
  echo "copied into the project repository."
  for c in pkg/usr/share/doc/*/copyright; do echo; echo "## $c"; echo '```'; cat "$c"; echo '```'; done
} > "$OUT/SOURCE.md"
echo "get_music.sh: $n tracks -> $OUT" >&2
