#!/usr/bin/env python3
"""Peer for `phonrec features FILE -o OUT.npy` as a whole: read a 16-bit mono WAV, torchaudio's Kaldi fbank (80 bins,
dither 0, as phonrec's defaults), np.save, timed inside one warm process (imports not counted), so the
peer pays no start-up while phonrec's figure is its whole process.

usage: torch_features_io.py IN.wav OUT.npy [--threads 2] [--reps 5]
Prints one JSON line: median seconds per file (read + fbank + save) and each part.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
import wave

import torchaudio
import torchaudio.compliance.kaldi as K

ap = argparse.ArgumentParser()
ap.add_argument("wav")
ap.add_argument("out")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=5)
a = ap.parse_args()
torch.set_num_threads(a.threads)
runs = []
for i in range(a.reps + 1):
    t0 = time.perf_counter()
    # Kaldi's int16 scale, as phonrec and Kaldi read samples. torchaudio 2.11's `load` needs
    # torchcodec; Python's own WAV reader into numpy is the quickest plain route.
    with wave.open(a.wav) as f:
        rate = f.getframerate()
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    samples = torch.from_numpy(pcm.astype(np.float32)).unsqueeze(0)
    t1 = time.perf_counter()
    feats = K.fbank(samples, sample_frequency=float(rate), num_mel_bins=80, dither=0.0, energy_floor=0.0)
    t2 = time.perf_counter()
    np.save(a.out, feats.numpy())
    t3 = time.perf_counter()
    if i:
        runs.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
med = lambda k: round(statistics.median(r[k] for r in runs), 4)
print(json.dumps({"impl": f"torchaudio {torchaudio.__version__}", "threads": a.threads, "frames": feats.shape[0],
                  "total_s": med(0), "read_s": med(1), "fbank_s": med(2), "save_s": med(3)}))
