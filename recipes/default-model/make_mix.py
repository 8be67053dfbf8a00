#!/usr/bin/env python3
"""Build the training mix of the default model from the recipes' manifests.

usage: make_mix.py [--data /work/data] [--out /work/runs/mix] [--fsdd 300] [--dctts-repeat 2] [--seed 0]

All synthetic training utterances, a capped share of the narrow real data (FSDD digits: a random
subset of its training speakers; dc_tts training part repeated), shuffled. Paths are made absolute.
Dev = the synthetic dev set (training voices, unseen prompts); the real evaluation sets stay out.
"""
import argparse
import os
import random

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="/work/data")
ap.add_argument("--out", default="/work/runs/mix")
ap.add_argument("--fsdd", type=int, default=300)
ap.add_argument("--dctts-repeat", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
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
random.shuffle(train)
os.makedirs(a.out, exist_ok=True)
with open(os.path.join(a.out, "train.tsv"), "w", encoding="utf-8") as f:
    for audio, phones in train:
        f.write(f"{audio}\t{phones}\n")
with open(os.path.join(a.out, "dev.tsv"), "w", encoding="utf-8") as f:
    for audio, phones in load(os.path.join(a.data, "synth/dev.tsv")):
        f.write(f"{audio}\t{phones}\n")
print(f"train {len(train)} utterances, dev written to {a.out}")
