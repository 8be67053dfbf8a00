#!/usr/bin/env python3
"""Phone text for the built-in phone LM: English sentences run through CMUdict, one line of phones
each (the `phonrec lm --text` format). Standard library only.

Sources (none is redistributed; only phone n-gram counts reach the LM):
- `prompts`: the training half of the synthetic recipe's prompt pool, i.e. every Debian `fortunes`
  and flite Alice sentence the recipe may draw for training (recipes/synthetic/prompts.py), not only
  the ones it happened to draw;
- `fortunes-extra`: the English fortune files of Debian's `fortune-anarchism`, `fortunes-bofh-excuses`
  and `fortunes-debian-hints`, fetched with `apt-get download` and unpacked into --work (not installed:
  an installed fortune package would change the synthetic recipe's prompt pool);
- `wordnet`: the glosses and example sentences of WordNet 3.0 (Debian `wordnet-base`, fetched the same
  way).
Terms: fortune-anarchism and fortunes-bofh-excuses are public domain, fortunes-debian-hints
BSD-3-clause; WordNet 3.0 Copyright 2006 by Princeton University, WordNet 3.0 license (use and
derived works permitted with its notice, which models/README.md carries).

Every sentence whose prompt-pool hash puts it in the evaluation half (the synthetic recipe's
`is_eval`) is dropped from every source, so no dev or held-out-voice prompt can reach the LM, whatever
source repeats it; so are sentences with a word missing from CMUdict (first pronunciations, folded to
the 39 phones, as the recipe's labels are).

usage: lm_text.py --out phones.txt [--sources prompts,fortunes-extra,wordnet] [--work DIR]
"""
import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "synthetic"))
import phonlib  # noqa: E402
import prompts  # noqa: E402

EXTRA_FORTUNE_PACKAGES = ["fortune-anarchism", "fortunes-bofh-excuses", "fortunes-debian-hints"]
WORDNET_PACKAGE = "wordnet-base"


def is_eval(sentence):
    """The synthetic recipe's train/eval split of prompts (make_synth.py PromptPool)."""
    return int(hashlib.md5(sentence.lower().encode()).hexdigest(), 16) % 10 == 0


def unpack(packages, work):
    """apt-get download + dpkg -x into work/root (once); -> the unpacked root."""
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    for package in packages:
        stamp = os.path.join(work, package + ".unpacked")
        if os.path.exists(stamp):
            continue
        # (apt warns when its sandbox user cannot write to `work`; the download works all the same)
        fetched = subprocess.run(["apt-get", "download", package], cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if fetched.returncode != 0:
            raise SystemExit(f"apt-get download {package} failed (run apt-get update first?):\n"
                             f"{fetched.stderr}")
        debs = sorted(glob.glob(os.path.join(work, package + "_*.deb")))
        if not debs:
            raise SystemExit(f"apt-get download {package} left no .deb in {work}")
        subprocess.run(["dpkg", "-x", debs[-1], root], check=True)
        open(stamp, "w").close()
    return root


def extra_fortune_sentences(work):
    root = unpack(EXTRA_FORTUNE_PACKAGES, work)
    # only the top-level (English) files: the subfolders hold translations of debian-hints
    return prompts.fortune_sentences(os.path.join(root, "usr/share/games/fortunes"))


def wordnet_sentences(work):
    root = unpack([WORDNET_PACKAGE], work)
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(root, "usr/share/wordnet", "data." + pos)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue          # the licence header
                gloss = line.split("|", 1)[1]
                for piece in gloss.split(";"):
                    piece = piece.strip().strip('"').strip()
                    if len(piece.split()) >= 3:
                        out.append(piece)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="phone text to write")
    ap.add_argument("--sources", default="prompts,fortunes-extra,wordnet")
    ap.add_argument("--work", default="/tmp/phonrec-lm-text", help="where .debs are fetched and unpacked")
    ap.add_argument("--cmudict", default=None, help="CMUdict file (default: fetched as recipes/phonlib.py does)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    lex = phonlib.load_cmudict(args.cmudict)
    readers = {
        "prompts": lambda: prompts.fortune_sentences() + prompts.alice_sentences(),
        "fortunes-extra": lambda: extra_fortune_sentences(args.work),
        "wordnet": lambda: wordnet_sentences(args.work),
    }
    seen = set()
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(f"# phonrec LM phone text: recipes/default-model/lm_text.py --sources {args.sources}\n")
        for source in args.sources.split(","):
            if source not in readers:
                raise SystemExit(f"unknown source {source!r}; known: {', '.join(readers)}")
            kept = evaluation = oov = 0
            for sentence in readers[source]():
                key = re.sub(r"\s+", " ", sentence.lower()).strip()
                if key in seen:
                    continue
                seen.add(key)
                if is_eval(sentence):
                    evaluation += 1
                    continue
                phones, missing = phonlib.text_to_phones(sentence, lex)
                if missing or not phones:
                    oov += 1
                    continue
                out.write(" ".join(phones) + "\n")
                kept += 1
            print(f"{source}: {kept} sentences kept, {evaluation} in the evaluation half dropped, "
                  f"{oov} with words outside CMUdict dropped", file=sys.stderr)


if __name__ == "__main__":
    main()
