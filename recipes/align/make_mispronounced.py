#!/usr/bin/env python3
"""Deliberate mispronunciations for evaluating `phonrec score`, spoken by the held-out voice (flite `rms`,
never in training): each held-out prompt with one word swapped for a minimal-pair partner, so that one
phone is substituted (`bat` -> `bet`) or deleted (`plight` -> `light`), scored against the ORIGINAL text.

Usage: python3 make_mispronounced.py [--meta /work/data/synth/meta.tsv] [--out /work/data/mispron]
       [--kind sub|del] [--seed 1]

For each `flite_rms` prompt of the synthetic corpus (the evaluation half of the prompt pool) a word of 3+
letters is chosen at random among those with a partner in CMUdict (first pronunciations, folded to the
39 set) whose pronunciation differs by exactly one substituted phone (or one deleted phone); flite then
says the changed sentence with the prompt's pitch and rate. flite's own phones (-ps) for the original
and the changed sentence must differ by exactly that edit, else the prompt is skipped.

Writes in --out: wav_KIND/ID.wav (16 kHz), KIND.tsv (`audio<TAB>text` with the ORIGINAL text, for
`phonrec score --manifest`) and KIND.jsonl: {"audio", "text", "word", "word_index" (0-based among the
normalised words), "partner", "phone_index" (within the word's CMUdict pronunciation), "expected",
"said" (the substituted phone, or null for a deletion)}.
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


def flite_phones(text, params, wav=None):
    cmd = ["flite", "-voice", "rms", "--setf", f"duration_stretch={params['stretch']}",
           "--setf", f"int_f0_target_mean={params['f0']}", "-ps", "-t", text]
    cmd += ["-o", wav] if wav else ["-o", "none"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return phonlib.cmu_engine_to_39(out.split())


def partners(lex, kind):
    """pronunciation (tuple) -> words, and for each word its one-edit partners."""
    by_pron = {}
    for w, p in lex.items():
        if w.isalpha():
            by_pron.setdefault(tuple(p), []).append(w)
    def edits(p):
        for i in range(len(p)):
            if kind == "del":
                yield i, None, p[:i] + p[i + 1:]
            else:
                for q in phonlib.LABEL_PHONES:
                    if q != p[i]:
                        yield i, q, p[:i] + (q,) + p[i + 1:]
    return by_pron, edits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", default="/work/data/synth/meta.tsv")
    ap.add_argument("--out", default="/work/data/mispron")
    ap.add_argument("--kind", choices=["sub", "del"], default="sub")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    lex = phonlib.load_cmudict()
    by_pron, edits = partners(lex, a.kind)
    rng = random.Random(a.seed)
    rows = []
    with open(a.meta, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            if row["group"] == "flite_rms":
                rows.append(row)
    wav_dir = os.path.join(a.out, f"wav_{a.kind}")
    os.makedirs(wav_dir, exist_ok=True)
    made = []
    for row in rows:
        params = json.loads(row["params"])
        words = phonlib.normalize_words(row["text"])
        options = []
        for k, w in enumerate(words):
            if len(w) < 3 or w not in lex:
                continue
            p = tuple(lex[w])
            for i, said, q in edits(p):
                for other in by_pron.get(q, []):
                    if other != w and len(other) >= 2:
                        options.append((k, w, other, i, p[i], said))
        if not options:
            continue
        k, word, partner, i, expected, said = rng.choice(options)
        changed_words = list(words)
        changed_words[k] = partner
        changed = " ".join(changed_words)
        original_phones = flite_phones(" ".join(words), params)
        wav = os.path.join(wav_dir, row["id"] + ".wav")
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "x.wav")
            changed_phones = flite_phones(changed, params, raw)
            subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
        ops = [(r, h) for r, h in phonlib.align(original_phones, changed_phones) if r != h]
        want = [(expected, said)]
        if ops != want:
            os.remove(wav)
            continue
        made.append({"audio": wav, "text": row["text"], "word": word, "word_index": k, "partner": partner,
                     "phone_index": i, "expected": expected, "said": said})
    with open(os.path.join(a.out, f"{a.kind}.tsv"), "w", encoding="utf-8") as f:
        f.write("audio\ttext\n")
        for m in made:
            f.write(f"{m['audio']}\t{m['text']}\n")
    with open(os.path.join(a.out, f"{a.kind}.jsonl"), "w", encoding="utf-8") as f:
        for m in made:
            f.write(json.dumps(m) + "\n")
    print(f"{len(made)} of {len(rows)} prompts with one {a.kind} in {a.out}")


if __name__ == "__main__":
    main()
