#!/usr/bin/env python3
"""Declip a manifest's WAVs with A-SPADE in numpy and score them with phonrec's own repair switched
off. Written to ask whether a sparsity-based declipper would beat phonrec's former autoregressive
repair (it did; phonrec's `src/audio/declip.rs` is A-SPADE since 2026-12-04); kept as an
independent implementation to compare the built-in one against.

    python3 recipes/robust/declip_probe.py IN.tsv OUT_DIR       # needs numpy
    phonrec eval --data OUT_DIR/manifest.tsv --keep-clipping

A measurement aid, not part of phonrec: the analysis sparse declipper A-SPADE (Kitić, Bertin and
Gribonval, "Sparsity and cosparsity for audio declipping: a flexible non-convex approach", 2015; as
revisited by Záviška, Rajmic, Mokrý and Průša, 2019). The recording is cut into frames of 1024
samples every 256 (Hann window); in each frame holding clipped samples, alternately: keep the k
largest coefficients of an oversampled DFT (redundancy 2, a Parseval frame) of the estimate plus the
dual variable, and project their synthesis onto the signals that agree with the recorded samples and
lie beyond the rail where a sample was cut; k grows by SPADE_STEP (4) per iteration until the
residual's norm is at most SPADE_EPS (0.1, the signal scaled to its rail = 1) or SPADE_MAXIT (300)
iterations; frames are overlap-added. A rail is the file's extreme value on each side; every sample
on it counts as cut (the probe's files are clipped by `make_robust.py --conditions clip`). The
restored peaks lie beyond full scale, so a file is scaled down to a peak of 32000 before it is
written as 16-bit (the level does not matter to the features' normalisation; phonrec's own repair
finds no rail in it). Figures in models/README.md ("Declipping: A-SPADE against the autoregressive
repair").
"""
import os
import sys
import wave

import numpy as np

N = int(os.environ.get("SPADE_N", 1024))
HOP = N // 4
M = 2 * N
EPS = float(os.environ.get("SPADE_EPS", 0.1))
STEP = int(os.environ.get("SPADE_STEP", 4))
MAXIT = int(os.environ.get("SPADE_MAXIT", 300))


def read(path):
    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: 16-bit WAV expected")
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
        return x.reshape(-1, w.getnchannels())[:, 0], w.getframerate()


def write(path, x, rate):
    peak = np.abs(x).max()
    if peak > 32000:
        x = x * (32000 / peak)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())


def analysis(x):
    return np.fft.fft(x, M, axis=1) / np.sqrt(M)


def synthesis(z):
    return np.real(np.fft.ifft(z, axis=1)[:, :N]) * np.sqrt(M)


def keep_largest(z, k):
    magnitude = np.abs(z)
    k = min(k, M)
    threshold = np.partition(magnitude, M - k, axis=1)[:, M - k][:, None]
    return np.where(magnitude >= threshold, z, 0)


def declip_frames(y, high, low, top, bottom):
    """A-SPADE on windowed frames `y` [frames, N]; `high`/`low` mark the cut samples, `top`/`bottom`
    the (windowed) rails. Every active frame shares one k."""
    x = y.copy()
    u = np.zeros((len(y), M), complex)
    active = np.ones(len(y), bool)
    reliable = ~(high | low)
    k = STEP
    for _ in range(MAXIT):
        if not active.any():
            break
        a = np.where(active)[0]
        z = keep_largest(analysis(x[a]) + u[a], k)
        v = synthesis(z - u[a])
        v = np.where(high[a], np.maximum(v, top[a]), v)
        v = np.where(low[a], np.minimum(v, bottom[a]), v)
        v = np.where(reliable[a], y[a], v)
        x[a] = v
        residual = analysis(v) - z
        u[a] += residual
        active[a[np.linalg.norm(residual, axis=1) <= EPS]] = False
        k += STEP
    return x


def declip(samples):
    rail = max(samples.max(), -samples.min())
    y = samples / rail
    top, bottom = y.max(), y.min()
    high, low = y >= top, y <= bottom
    padded = lambda a, fill: np.concatenate([np.full(N, fill), a, np.full(2 * N, fill)])
    yp, hp, lp = padded(y, 0.0), padded(high, False), padded(low, False)
    starts = np.arange(0, len(y) + N, HOP)
    index = starts[:, None] + np.arange(N)[None, :]
    window = np.hanning(N + 1)[:N]
    frames, h, l = yp[index] * window, hp[index], lp[index]
    cut = (h | l).any(axis=1)
    out = frames.copy()
    if cut.any():
        count = int(cut.sum())
        out[cut] = declip_frames(
            frames[cut], h[cut], l[cut], np.tile(top * window, (count, 1)), np.tile(bottom * window, (count, 1))
        )
    total = np.zeros(len(yp))
    weight = np.zeros(len(yp))
    for frame, start in enumerate(starts):
        total[start:start + N] += out[frame]
        weight[start:start + N] += window
    restored = (total / np.maximum(weight, 1e-9))[N:N + len(y)]
    return np.where(high | low, restored, y) * rail


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.dirname(os.path.abspath(source))
    lines = []
    for line in open(source, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        audio, labels = line.rstrip("\n").split("\t", 1)
        path = audio if os.path.isabs(audio) else os.path.join(base, audio)
        samples, rate = read(path)
        target = os.path.join(out_dir, os.path.basename(path))
        write(target, declip(samples), rate)
        lines.append(f"{target}\t{labels}")
    with open(os.path.join(out_dir, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} files declipped into {out_dir}")


if __name__ == "__main__":
    main()
