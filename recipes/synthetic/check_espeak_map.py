#!/usr/bin/env python3
"""Compare engine phone labels (mapped to the 39 set) with CMUdict on isolated words.

Usage: python3 check_espeak_map.py [--words 3000] [--flite-words 300] [--seed 1]

Words are drawn (seeded) half from the prompt vocabulary (fortunes + Alice, i.e. common words) and half
uniformly from CMUdict's alphabetic entries. Prints the phone error rate of espeak-ng's mapped output
(and flite kal16's) against CMUdict's first pronunciation, the most frequent confusions, and any
espeak mnemonics the table does not know. Standard library only.
"""
import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import phonlib  # noqa: E402
import prompts  # noqa: E402  (recipes/synthetic/prompts.py)


def espeak_words(words):
    """-> list of raw `-x` outputs, one per word (batched: one input line per word)."""
    out = []
    for i in range(0, len(words), 200):
        chunk = words[i:i + 200]
        r = subprocess.run(["espeak-ng", "-q", "-x", "--sep=|", "-v", "en-us"],
                           input="".join(w + ".\n" for w in chunk), capture_output=True, text=True,
                           check=True)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        if len(lines) != len(chunk):          # fall back to one call per word
            lines = [subprocess.run(["espeak-ng", "-q", "-x", "--sep=|", "-v", "en-us", w],
                                    capture_output=True, text=True, check=True).stdout.replace("\n", " ")
                     for w in chunk]
        out.extend(lines)
    return out


def flite_word(w, tmp):
    r = subprocess.run(["flite", "-voice", "kal16", "-psdur", "-o", os.path.join(tmp, "w.wav"), "-t", w],
                       capture_output=True, text=True, check=True)
    return [t.split(":")[0] for t in r.stdout.split()]


def report(name, pairs):
    errs = sum(phonlib.levenshtein(r, h) for r, h in pairs)
    n = sum(len(r) for r, _ in pairs)
    conf = collections.Counter()
    for r, h in pairs:
        for a, b in phonlib.align(r, h):
            if a != b:
                conf[(a or "-", b or "-")] += 1
    print(f"{name}: {len(pairs)} words, {n} CMUdict phones, PER {errs / n:.4f}")
    print("  top confusions (cmudict -> engine):",
          ", ".join(f"{a}->{b} {c}" for (a, b), c in conf.most_common(20)))
    return errs / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=3000)
    ap.add_argument("--flite-words", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=0, help="print this many differing words")
    a = ap.parse_args()
    lex = phonlib.load_cmudict()
    rng = random.Random(a.seed)
    vocab = sorted({w for s in prompts.fortune_sentences() + prompts.alice_sentences()
                    for w in phonlib.normalize_words(s) if w in lex and w.isalpha()})
    alpha = sorted(w for w in lex if w.isalpha())
    words = rng.sample(vocab, min(a.words // 2, len(vocab)))
    words += rng.sample(alpha, a.words - len(words))
    unknown = {}
    raw = espeak_words(words)
    pairs, shown = [], 0
    for w, x in zip(words, raw):
        hyp = phonlib.espeak_to_39(x, unknown)
        pairs.append((lex[w], hyp))
        if shown < a.show and lex[w] != hyp:
            print(f"  {w}: cmu [{' '.join(lex[w])}] espeak [{' '.join(hyp)}] raw {x.strip()}")
            shown += 1
    report("espeak-ng en-us", pairs)
    report("espeak-ng en-us, common words", pairs[:len(pairs) // 2])
    print("  unknown espeak mnemonics:", unknown or "none")
    if a.flite_words:
        with tempfile.TemporaryDirectory() as tmp:
            fw = words[:a.flite_words // 2] + words[len(words) // 2:len(words) // 2 + a.flite_words // 2]
            fp = [(lex[w], phonlib.cmu_engine_to_39(flite_word(w, tmp))) for w in fw]
        report("flite kal16", fp)


if __name__ == "__main__":
    main()
