#!/usr/bin/env python3
"""Would a dereverberation front end help? Dereverberate a manifest's WAVs with weighted prediction error.

    python3 recipes/robust/dereverb_probe.py IN.tsv OUT_DIR [TAPS DELAY ITERATIONS]   # default 40 3 3
    phonrec eval --data OUT_DIR.tsv

A measurement aid, not part of phonrec: single-channel WPE (Nakatani et al. 2010; Yoshioka & Nakatani
2012) from PyPI's nara_wpe (MIT; `pip install nara_wpe`), on an STFT of 512 / 128 samples at 16 kHz and
above, 256 / 64 below. Writes OUT_DIR/*.wav (16-bit, the input's rate and length) and OUT_DIR.tsv
(the input's labels). Figures in models/README.md ("default-v14").
"""
import os
import sys
import wave

import numpy as np
from nara_wpe.utils import istft, stft
from nara_wpe.wpe import wpe


def main():
    if len(sys.argv) not in (3, 6):
        sys.exit(__doc__)
    src, out_dir = sys.argv[1], sys.argv[2]
    taps, delay, iterations = (int(a) for a in sys.argv[3:6]) if len(sys.argv) == 6 else (40, 3, 3)
    os.makedirs(out_dir, exist_ok=True)
    lines = []
    for line in open(src, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        path, phones = line.rstrip("\n").split("\t", 1)
        path = os.path.join(os.path.dirname(os.path.abspath(src)), path)  # relative: to the manifest
        with wave.open(path) as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                sys.exit(f"{path}: 16-bit mono WAV expected")
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
        size, shift = (512, 128) if rate >= 16000 else (256, 64)
        spectrum = stft(x[None], size=size, shift=shift).transpose(2, 0, 1)  # (bins, channels, frames)
        clean = wpe(spectrum, taps=taps, delay=delay, iterations=iterations, statistics_mode="full")
        z = istft(clean.transpose(1, 2, 0), size=size, shift=shift)[0][: len(x)]
        z16 = np.clip(np.rint(z * 32768), -32768, 32767).astype("<i2")
        out_path = os.path.join(out_dir, os.path.basename(path))
        with wave.open(out_path, "wb") as o:
            o.setnchannels(1)
            o.setsampwidth(2)
            o.setframerate(rate)
            o.writeframes(z16.tobytes())
        lines.append(f"{out_path}\t{phones}")
    with open(out_dir.rstrip("/") + ".tsv", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"dereverb_probe: {len(lines)} files -> {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
