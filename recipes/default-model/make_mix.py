#!/usr/bin/env python3
"""Build the training mix of the default model from the recipes' manifests.

usage: make_mix.py [--data /work/data] [--out /work/runs/mix] [--fsdd 300] [--dctts-repeat 2] [--seed 0]
                   [--fsdd-strings 0]

All synthetic training utterances, a capped share of the narrow real data (FSDD digits: a random
subset of its training speakers; dc_tts training part repeated), shuffled. Paths are made absolute.
Dev = the synthetic dev set (training voices, unseen prompts); the real evaluation sets stay out.

--fsdd-strings N adds N digit strings (written to OUT/fsdd_strings/): 2-5 FSDD training clips of one
speaker, joined by 0.03-0.5 s of noise at the clips' own floor, as a digit string (a phone number, a
PIN) read with short pauses. FSDD holds isolated digits only, and a model that never heard two of its
digits in a row reads such strings badly (models/README.md, "Digit strings").
"""
import argparse
import array
import math
import os
import random
import wave

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="/work/data")
ap.add_argument("--out", default="/work/runs/mix")
ap.add_argument("--fsdd", type=int, default=300)
ap.add_argument("--dctts-repeat", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--fsdd-strings", type=int, default=0)
a = ap.parse_args()
random.seed(a.seed)


def load(path):
    base = os.path.dirname(path)
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        audio, phones = line.rstrip("\n").split("\t", 1)
        if not os.path.isabs(audio):
            audio = os.path.join(base, audio)
        rows.append((audio, phones))
    return rows


synth = load(os.path.join(a.data, "synth/train.tsv"))
fsdd = load(os.path.join(a.data, "real/fsdd_train.tsv"))
random.shuffle(fsdd)
dctts = load(os.path.join(a.data, "real/dctts_train.tsv"))
train = synth + fsdd[: a.fsdd] + dctts * a.dctts_repeat


def read_pcm16(path):
    with wave.open(path) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono PCM (FSDD's format)")
        samples = array.array("h", w.readframes(w.getnframes()))
        return samples, w.getframerate()


def floor_rms(samples, rate):
    """The 10th percentile of the clip's 10 ms frame RMS values: its noise floor."""
    hop = max(1, rate // 100)
    levels = sorted(
        math.sqrt(sum(v * v for v in samples[i:i + hop]) / hop)
        for i in range(0, len(samples) - hop + 1, hop))
    return levels[len(levels) // 10] if levels else 0.0


def fsdd_strings(count, out_dir, rng):
    """`count` strings of 2-5 clips of one FSDD training speaker (file names `digit_speaker_take.wav`)."""
    by_speaker = {}
    for audio, phones in fsdd:
        parts = os.path.basename(audio).split("_")
        by_speaker.setdefault(parts[1] if len(parts) > 2 else "", []).append((audio, phones))
    speakers = sorted(by_speaker)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for n in range(count):
        clips = rng.sample(by_speaker[rng.choice(speakers)], rng.randint(2, 5))
        pcm, rate = array.array("h"), None
        phones = []
        for k, (audio, ph) in enumerate(clips):
            samples, clip_rate = read_pcm16(audio)
            rate = rate or clip_rate
            if clip_rate != rate:
                raise SystemExit(f"{audio}: {clip_rate} Hz among {rate} Hz clips")
            if k:
                sigma = floor_rms(samples, rate)
                gap = int(rng.uniform(0.03, 0.5) * rate)
                pcm.extend(max(-32768, min(32767, round(rng.gauss(0.0, sigma)))) for _ in range(gap))
            pcm.extend(samples)
            phones.append(ph)
        path = os.path.join(out_dir, f"string_{n:05d}.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
        rows.append((os.path.abspath(path), " ".join(phones)))
    return rows


if a.fsdd_strings:
    train += fsdd_strings(a.fsdd_strings, os.path.join(a.out, "fsdd_strings"), random.Random(a.seed + 1))
random.shuffle(train)
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, "train.tsv"), "w", encoding="utf-8") as f:
    for audio, phones in train:
        f.write(f"{audio}\t{phones}\n")
with open(os.path.join(a.out, "dev.tsv"), "w", encoding="utf-8") as f:
    for audio, phones in load(os.path.join(a.data, "synth/dev.tsv")):
        f.write(f"{audio}\t{phones}\n")
print(f"train {len(train)} utterances, dev written to {a.out}")
