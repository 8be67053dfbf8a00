#!/usr/bin/env python3
"""Speech with exact phone timings for measuring alignment: the held-out synthetic voice (flite `rms`,
never in phonrec's training data) saying the held-out prompts, with flite's own phone end times.

Usage: python3 make_timed.py [--meta /work/data/synth/meta.tsv] [--out /work/data/align] [--limit N]
       [--pad] [--groups flite_rms] [--split test]
  boundary-model data from training voices:
       python3 make_timed.py --groups flite_kal16,flite_awb,flite_slt --split train --limit 150 \
           --out /work/data/align_fit

For each `flite_rms` row of the synthetic corpus's meta.tsv (200 prompts from the evaluation half of the
prompt pool, with the pitch and rate drawn for them), runs
`flite -voice rms --setf duration_stretch=S --setf int_f0_target_mean=F -psdur -o x.wav -t TEXT` and
writes, in --out:
  wav/ID.wav            16 kHz mono 16-bit (sox)
  phones.tsv            `audio<TAB>phones` header, then the reference phones (39 set) per file, for
                        `phonrec align --manifest`
  text.tsv              `audio<TAB>text`: the prompt text, for word-level alignment
  reference.jsonl       per file: {"id", "audio", "text", "phones": [[phone, start, end], ...]} with
                        flite's pauses left out (their time is silence)
With --pad, each file also gets 0.5-1.5 s of low noise floor (-60 dBFS white) before and after, times
shifted accordingly (alignment of untrimmed recordings), in wav_pad/ and *_pad.* files.

Phones are folded as the synthetic recipe folds them (recipes/phonlib.py cmu_engine_to_39: ax->ah,
ao->aa, zh->sh, dx->t); flite's `pau` is silence.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402

SILENCES = {"pau", "h#", "sil", "brth", "#", "ssil"}


def flite_timed(voice, text, stretch, f0, wav_out, tmp):
    raw = os.path.join(tmp, "f.wav")
    r = subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}",
                        "--setf", f"int_f0_target_mean={f0}", "-psdur", "-o", raw, "-t", text],
                       check=True, capture_output=True, text=True)
    segments, start = [], 0.0
    for token in r.stdout.split():
        name, end = token.rsplit(":", 1)
        end = float(end)
        name = name.lower()
        if name not in SILENCES:
            q = phonlib.fold_cmu([name])[0]
            q = "t" if q == "dx" else q
            segments.append([q, round(start, 4), round(end, 4)])
        start = end
    subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav_out], check=True)
    return segments


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", default="/work/data/synth/meta.tsv")
    ap.add_argument("--out", default="/work/data/align")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--pad", action="store_true")
    ap.add_argument("--groups", default="flite_rms",
                    help="synthetic-corpus groups to take rows from (flite voices only); the default is "
                         "the held-out voice; training voices (flite_kal16,flite_awb,flite_slt) give "
                         "data to fit the boundary model on")
    ap.add_argument("--split", default="test", help="meta.tsv split the rows come from")
    a = ap.parse_args()
    groups = a.groups.split(",")
    rows = []
    with open(a.meta, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            if row["group"] in groups and row["split"] == a.split:
                rows.append(row)
    if a.limit:
        rows = [r for g in groups for r in [x for x in rows if x["group"] == g][: a.limit]]
    os.makedirs(os.path.join(a.out, "wav"), exist_ok=True)
    if a.pad:
        os.makedirs(os.path.join(a.out, "wav_pad"), exist_ok=True)
    refs = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            params = json.loads(row["params"])
            wav = os.path.join(a.out, "wav", row["id"] + ".wav")
            voice = row["group"].split("_", 1)[1]
            segments = flite_timed(voice, row["text"], params["stretch"], params["f0"], wav, tmp)
            refs.append({"id": row["id"], "audio": wav, "text": row["text"], "phones": segments})
    write_sets(a.out, "", refs)
    if a.pad:
        rng = random.Random(7)
        padded = []
        for ref in refs:
            before, after = rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5)
            wav = os.path.join(a.out, "wav_pad", ref["id"] + ".wav")
            # pad with zeros, then mix in a -60 dBFS white floor over the whole file
            with tempfile.TemporaryDirectory() as tmp:
                padded_raw = os.path.join(tmp, "p.wav")
                noise = os.path.join(tmp, "n.wav")
                subprocess.run(["sox", ref["audio"], padded_raw, "pad", f"{before:.3f}", f"{after:.3f}"],
                               check=True)
                length = float(subprocess.run(["soxi", "-D", padded_raw], check=True,
                                              capture_output=True, text=True).stdout)
                subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", noise, "synth",
                                f"{length:.4f}", "whitenoise", "vol", "0.001"], check=True)
                subprocess.run(["sox", "-R", "-m", padded_raw, noise, "-b", "16", wav], check=True)
            padded.append({**ref, "audio": wav,
                           "phones": [[p, round(s + before, 4), round(e + before, 4)]
                                      for p, s, e in ref["phones"]]})
        write_sets(a.out, "_pad", padded)
    print(f"{len(refs)} files in {a.out}")
    if not refs:
        sys.exit("no rows of those groups and split in the meta file")


def write_sets(out, suffix, refs):
    with open(os.path.join(out, f"phones{suffix}.tsv"), "w", encoding="utf-8") as f:
        f.write("audio\tphones\n")
        for r in refs:
            f.write(f"{r['audio']}\t{' '.join(p for p, _, _ in r['phones'])}\n")
    with open(os.path.join(out, f"text{suffix}.tsv"), "w", encoding="utf-8") as f:
        f.write("audio\ttext\n")
        for r in refs:
            f.write(f"{r['audio']}\t{r['text']}\n")
    with open(os.path.join(out, f"reference{suffix}.jsonl"), "w", encoding="utf-8") as f:
        for r in refs:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
