#!/usr/bin/env python3
"""Copies of an evaluation manifest with echoes that are not a pure delay, for `phonrec eval`:

    python3 recipes/robust/echo_variants.py DATA/real/dctts_eval.tsv OUT/dctts
    phonrec eval --data OUT/dctts/filt.tsv          # and filt2.tsv, two.tsv

- filt:  the reflection 10.5 dB down (0.3), 120.3 ms late (a fractional delay), low-passed at 3 kHz
         (one pole), as a wall returns it;
- filt2: 0.35, 180.7 ms late, low-passed at 2 kHz;
- two:   two reflections, 0.3 at 110 ms and 0.2 at 233.7 ms.
Each copy is scaled to peak at 30000. Needs numpy (16-bit PCM WAV input, mixed to mono).
models/README.md, "Echoes", gives the figures."""
import os
import sys
import wave

import numpy as np


def read(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, f"{path}: 16-bit PCM expected"
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        channels, rate = w.getnchannels(), w.getframerate()
    return (x.reshape(-1, channels).mean(1) if channels > 1 else x), rate


def write(path, x, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())


def delayed(x, samples):
    """x delayed by a (fractional) number of samples, by a phase ramp in the frequency domain."""
    n = 1 << int(np.ceil(np.log2(len(x) + int(samples) + 10)))
    spectrum = np.fft.rfft(x, n)
    f = np.arange(len(spectrum)) / n
    return np.fft.irfft(spectrum * np.exp(-2j * np.pi * f * samples), n)[: len(x)]


def lowpass(x, rate, cutoff_hz):
    a = np.exp(-2 * np.pi * cutoff_hz / rate)
    y, state = np.empty_like(x), 0.0
    for i, v in enumerate(x):
        state = (1 - a) * v + a * state
        y[i] = state
    return y


CONDITIONS = {
    "filt": lambda x, r: x + 0.3 * lowpass(delayed(x, 0.1203 * r), r, 3000),
    "filt2": lambda x, r: x + 0.35 * lowpass(delayed(x, 0.1807 * r), r, 2000),
    "two": lambda x, r: x + 0.3 * delayed(x, 0.110 * r) + 0.2 * delayed(x, 0.2337 * r),
}


def main():
    manifest, out = sys.argv[1], sys.argv[2]
    root = os.path.dirname(os.path.abspath(manifest))
    lines = [l.rstrip("\n") for l in open(manifest, encoding="utf-8") if l.strip() and not l.startswith("#")]
    for name, make in CONDITIONS.items():
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name + ".tsv"), "w", encoding="utf-8") as listing:
            for i, line in enumerate(lines):
                audio, labels = line.split("\t", 1)
                x, rate = read(audio if os.path.isabs(audio) else os.path.join(root, audio))
                y = make(x, rate)
                y *= min(1.0, 30000 / max(np.abs(y).max(), 1e-9))
                path = os.path.abspath(os.path.join(out, name, f"{i:03d}.wav"))
                write(path, y, rate)
                listing.write(f"{path}\t{labels}\n")


if __name__ == "__main__":
    main()
