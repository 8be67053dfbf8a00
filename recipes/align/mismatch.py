#!/usr/bin/env python3
"""How well the match score of `phonrec align` tells audio that says its transcript from audio that does
not: the same recordings aligned to their own text, to another recording's text (wrong file), and to
their text with a quarter of the words removed (missing words) or a quarter extra words (from another
transcript) inserted; and audio that says nothing (digital silence, a pink-noise floor, as long as
each recording) aligned to the recordings' texts.

Usage: python3 mismatch.py --phonrec target/release/phonrec --text-manifest DATA/text.tsv [...]
           [--dctts /work/shared/data/real/dc_tts-ljprompts-selfrec/LJSpeech-1.1 --dctts-eval /work/data/real/dctts_eval.tsv]
           [--thresholds '-1,-3;-0.8,-2.5']

Prints, per condition, the quantiles of both scores (mean over the recording, worst second) and of the
speech share (the text's phones aligned inside heard speech), the share flagged at each threshold pair
and the share phonrec itself flags (`matches_text` false, all three rules) (for the matched condition that is the false-alarm rate, for the
others the detection rate).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile


def read_text_manifest(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or line == "audio\ttext":
                continue
            audio, text = line.split("\t", 1)
            rows.append((audio, text))
    return rows


def dctts_rows(root, eval_manifest):
    texts = {}
    with open(os.path.join(root, "transcript.csv"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) >= 3:
                texts[parts[0]] = parts[2]
    rows = []
    with open(eval_manifest, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            audio = line.split("\t", 1)[0]
            uid = os.path.splitext(os.path.basename(audio))[0]
            # recipes/robust's copies are named NNNNN_UID.wav
            if "_" in uid and uid.split("_", 1)[0].isdigit():
                uid = uid.split("_", 1)[1]
            if uid in texts:
                rows.append((audio, texts[uid]))
    return rows


def no_speech_copies(rows, tmp, kind, seconds=None):
    """Each recording replaced by as long a stretch (or `seconds`) of digital silence or of a pink-noise
    floor (about -60 dBFS RMS, `sox synth pinknoise`): audio that says nothing, aligned to the text."""
    out = []
    for i, (audio, text) in enumerate(rows):
        length = seconds
        if length is None:
            length = subprocess.run(["soxi", "-D", audio], capture_output=True, text=True).stdout.strip()
        path = os.path.join(tmp, f"{kind}_{i:05d}.wav")
        effect = (["trim", "0", str(length)] if kind == "silence"
                  else ["synth", str(length), "pinknoise", "vol", "0.003"])
        subprocess.run(["sox", "-n", "-r", "16000", "-b", "16", "-c", "1", path] + effect, check=True)
        out.append((path, text))
    return out


def conditions(rows, rng, tmp, no_speech_seconds):
    n = len(rows)
    shift = [rows[(i + 1 + rng.randrange(n - 1)) % n][1] for i in range(n)] if n > 1 else []
    out = {"matched": rows, "wrong file": [(a, t) for (a, _), t in zip(rows, shift)]}
    dropped, inserted = [], []
    for (audio, text), other in zip(rows, shift):
        words = text.split()
        k = max(1, len(words) // 4)
        drop = set(rng.sample(range(len(words)), k)) if len(words) > 1 else set()
        dropped.append((audio, " ".join(w for i, w in enumerate(words) if i not in drop)))
        extra = other.split()[:k]
        pos = rng.randrange(len(words) + 1)
        inserted.append((audio, " ".join(words[:pos] + extra + words[pos:])))
    out["25% words missing"] = dropped
    out["25% words extra"] = inserted
    out["no speech: silence"] = no_speech_copies(rows, tmp, "silence", no_speech_seconds)
    out["no speech: noise floor"] = no_speech_copies(rows, tmp, "noise", no_speech_seconds)
    return out


def scores(binary, rows, extra):
    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "m.tsv")
        with open(manifest, "w", encoding="utf-8") as f:
            f.write("audio\ttext\n")
            for audio, text in rows:
                f.write(f"{audio}\t{text}\n")
        out = os.path.join(tmp, "o.jsonl")
        subprocess.run([binary, "align", "--manifest", manifest, "--format", "json", "-o", out,
                        "--oov", "skip"] + extra, capture_output=True, text=True)
        with open(out, encoding="utf-8") as f:
            return [(r["match_score"], r["worst_second_score"], r.get("speech_share", 1.0),
                     r["matches_text"]) for r in map(json.loads, f)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phonrec", required=True)
    ap.add_argument("--text-manifest", action="append", default=[])
    ap.add_argument("--dctts")
    ap.add_argument("--dctts-eval")
    ap.add_argument("--thresholds", default="-1,-3",
                    help="pairs MEAN,WORST_SECOND separated by ';' (phonrec's defaults: -1,-3)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--no-speech-seconds", type=float,
                    help="length of the no-speech copies (default: each recording's own)")
    a = ap.parse_args()
    a.thresholds = [tuple(float(x) for x in pair.split(",")) for pair in a.thresholds.split(";")]
    sets = {os.path.basename(m): read_text_manifest(m) for m in a.text_manifest}
    if a.dctts:
        sets["dctts_eval"] = dctts_rows(a.dctts, a.dctts_eval)
    for name, rows in sets.items():
        rng = random.Random(a.seed)
        with tempfile.TemporaryDirectory() as tmp:
            report(a, name, conditions(rows, rng, tmp, a.no_speech_seconds))


def report(a, name, conds):
    for cond, cond_rows in conds.items():
        both = scores(a.phonrec, cond_rows, [])
        if not both:
            continue
        for label, k in (("mean", 0), ("worst 1 s", 1), ("speech share", 2)):
            s = sorted(x[k] for x in both)
            q = lambda p: s[min(len(s) - 1, int(p * len(s)))]
            print(f"{name:12s} {cond:18s} {label:9s} n={len(s):4d} min {s[0]:7.3f} q05 {q(0.05):7.3f} "
                  f"median {q(0.5):7.3f} q95 {q(0.95):7.3f}")
        for tm, tw in a.thresholds:
            flagged = sum(r[0] < tm or r[1] < tw for r in both) / len(both)
            print(f"{'':12s} {cond:18s} flagged at mean < {tm} or worst second < {tw}: {flagged:.3f}")
        flagged = sum(not r[3] for r in both) / len(both)
        print(f"{'':12s} {cond:18s} flagged by phonrec (matches_text false): {flagged:.3f}")


if __name__ == "__main__":
    main()
