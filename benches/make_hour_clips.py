#!/usr/bin/env python3
"""Write the "hour of 0.3-5 s clips" of BENCHMARKS.md (issue 16's many-short-files row).

usage: make_hour_clips.py [--shared ../shared/data/real] [--out /work/data/hour] [--seed 3]

FSDD's 2,000 clips (0.3-1 s, 8 kHz) whole, and the 141 dc_tts recordings (16 kHz) cut into pieces of
U(0.3, 5) s from their start (a remainder under 0.3 s dropped): about 2,000 s in all, so they are
listed in shuffled passes (random.seed(SEED), each pass reshuffled) until the list holds an hour. Writes the pieces to OUT/clips/ and the list, one path per line, to
OUT/hour_clips.txt, which is what the benchmark reads:

    /usr/bin/time -f "%e s %M KB" phonrec transcribe --quiet - < OUT/hour_clips.txt > /dev/null

Python's standard library only. The files are derived from the shared recordings (see their SOURCE.md
files): keep them outside the repository.
"""
import argparse
import os
import random
import sys
import wave

HOUR = 3600.0


def duration(path):
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def cut(path, out_dir, rng):
    """Pieces of U(0.3, 5) s of one recording, written as WAVs; returns [(path, seconds)]."""
    pieces = []
    with wave.open(path, "rb") as w:
        params = w.getparams()
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    width = params.sampwidth * params.nchannels
    total = len(frames) // width
    start = 0
    stem = os.path.splitext(os.path.basename(path))[0]
    while True:
        length = int(rng.uniform(0.3, 5.0) * rate)
        if start + length > total:
            length = total - start
        if length < int(0.3 * rate):
            break
        name = os.path.join(out_dir, f"{stem}_{len(pieces):02d}.wav")
        with wave.open(name, "wb") as o:
            o.setparams(params)
            o.writeframes(frames[start * width:(start + length) * width])
        pieces.append((name, length / rate))
        start += length
    return pieces


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared", "data", "real"))
    ap.add_argument("--out", default="/work/data/hour")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    fsdd = os.path.join(a.shared, "fsdd", "recordings")
    dctts = os.path.join(a.shared, "dc_tts-ljprompts-selfrec", "LJSpeech-1.1", "wavs")
    for folder in (fsdd, dctts):
        if not os.path.isdir(folder):
            sys.exit(f"make_hour_clips.py: {folder} not found (give --shared)")
    rng = random.Random(a.seed)
    clips_dir = os.path.join(a.out, "clips")
    os.makedirs(clips_dir, exist_ok=True)
    clips = [(os.path.join(fsdd, f), None) for f in sorted(os.listdir(fsdd)) if f.endswith(".wav")]
    for f in sorted(os.listdir(dctts)):
        if f.endswith(".wav"):
            clips.extend(cut(os.path.join(dctts, f), clips_dir, rng))
    clips = [(path, length if length is not None else duration(path)) for path, length in clips]
    listed, seconds = [], 0.0
    while seconds < HOUR:
        rng.shuffle(clips)
        for path, length in clips:
            if seconds >= HOUR:
                break
            listed.append(path)
            seconds += length
    with open(os.path.join(a.out, "hour_clips.txt"), "w") as out:
        out.write("".join(os.path.abspath(p) + "\n" for p in listed))
    print(f"{len(listed)} files, {seconds:.1f} s -> {os.path.join(a.out, 'hour_clips.txt')}")


if __name__ == "__main__":
    main()
