#!/usr/bin/env python3
"""Write phonrec manifests for the real human speech on this machine (see README.md beside this file).

Usage: python3 make_real.py [--shared /work/shared/data/real] [--out /work/data/real]
                            [--fsdd-heldout nicolas] [--seed 1]

Standard library + sox (for the one headerless pocketsphinx-testdata clip). Audio is never copied:
manifests hold absolute paths to the shared folder and to /usr/share/pocketsphinx (apt package
pocketsphinx-testdata); only goforward.raw, which has no WAV header, is wrapped into a WAV under --out.
Phones: CMUdict first pronunciation of each word, folded to the 39 set (recipes/README.md).

Writes: fsdd_train.tsv, fsdd_eval.tsv, dctts_train.tsv, dctts_eval.tsv, librivox_eval.tsv, psdata_eval.tsv,
dctts_skipped.tsv (utterances with words missing from CMUdict), summary.json.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PSDATA = "/usr/share/pocketsphinx/test/data"


def phones_or_die(words, lex, what):
    ph, missing = phonlib.words_to_phones(words, lex)
    if missing:
        raise SystemExit(f"{what}: words missing from CMUdict: {missing}")
    return ph


def secs(paths):
    return round(sum(phonlib.wav_seconds(p) for p in paths) / 3600, 4)


def sphinx_transcription(path):
    """Sphinx `<s> words </s> (uttid)` lines -> {uttid: [words]}."""
    out = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*(.*?)\s*\(([^()]+)\)\s*$", line)
        if not m:
            continue
        words = [w for w in m.group(1).lower().split() if w not in ("<s>", "</s>", "<sil>")]
        out[m.group(2)] = words
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data/real")
    ap.add_argument("--out", default=os.path.join(phonlib.DATA_ROOT, "real"))
    ap.add_argument("--fsdd-heldout", default="nicolas", help="FSDD speaker kept for evaluation only")
    ap.add_argument("--dctts-eval-frac", type=float, default=0.2)
    a = ap.parse_args()
    lex = phonlib.load_cmudict()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    summary = {}

    def emit(name, rows, header):
        n = phonlib.write_manifest(os.path.join(out, name), rows, header)
        summary[name] = {"utts": n, "hours": secs([r[0] for r in rows]),
                         "phones": sum(len(r[1]) for r in rows)}
        print(f"{name}: {n} utterances, {summary[name]['hours'] * 60:.2f} min", file=sys.stderr)

    conv = "labels: CMUdict first pronunciation folded to the 39 set; no sil, no dx (recipes/README.md)"

    # ---- FSDD: {digit}_{speaker}_{index}.wav, 8 kHz
    fsdd = os.path.join(a.shared, "fsdd", "recordings")
    tr, ev = [], []
    for p in sorted(glob.glob(os.path.join(fsdd, "*.wav"))):
        d, spk, _ = os.path.basename(p)[:-4].split("_")
        row = (p, phones_or_die([DIGITS[int(d)]], lex, p))
        (ev if spk == a.fsdd_heldout else tr).append(row)
    if not ev:
        raise SystemExit(f"no FSDD speaker {a.fsdd_heldout!r}")
    src = f"source: {a.shared}/fsdd (Free Spoken Digit Dataset, CC BY-SA 4.0, see its SOURCE.md)"
    emit("fsdd_train.tsv", tr, [src, f"speakers: all but {a.fsdd_heldout} (held out)", conv])
    emit("fsdd_eval.tsv", ev, [src, f"speaker: {a.fsdd_heldout} only (held out of fsdd_train.tsv)", conv])

    # ---- dc_tts self-recorded LJ prompts: transcript.csv = ID|text|normalized text
    lj = os.path.join(a.shared, "dc_tts-ljprompts-selfrec", "LJSpeech-1.1")
    texts = {}
    for line in open(os.path.join(lj, "transcript.csv"), encoding="utf-8"):
        parts = line.rstrip("\n").split("|")
        if len(parts) >= 3:
            texts[parts[0]] = parts[2]
    ok, skipped = [], []
    for p in sorted(glob.glob(os.path.join(lj, "wavs", "*.wav"))):
        uid = os.path.basename(p)[:-4]
        ph, missing = phonlib.text_to_phones(texts[uid], lex)
        if missing:
            skipped.append((uid, missing, texts[uid]))
        else:
            ok.append((uid, p, ph))
    # deterministic 80/20 split: rank by md5(id), the first 20 % are eval
    ranked = sorted(ok, key=lambda r: hashlib.md5(r[0].encode()).hexdigest())
    n_eval = round(len(ranked) * a.dctts_eval_frac)
    eval_ids = {r[0] for r in ranked[:n_eval]}
    src = (f"source: {a.shared}/dc_tts-ljprompts-selfrec (one non-native speaker reading LJ Speech prompts; "
           "Apache-2.0 by inclusion, see its SOURCE.md); text: normalized column of transcript.csv")
    split = "split: 80/20 by utterance, eval = the 20 % of ids first in md5(id) order"
    emit("dctts_train.tsv", [(p, ph) for u, p, ph in ok if u not in eval_ids], [src, split, conv])
    emit("dctts_eval.tsv", [(p, ph) for u, p, ph in ok if u in eval_ids], [src, split, conv])
    with open(os.path.join(out, "dctts_skipped.tsv"), "w", encoding="utf-8") as f:
        f.write("# dc_tts utterances left out: words missing from CMUdict\n")
        for uid, missing, text in skipped:
            f.write(f"{uid}\t{' '.join(missing)}\t{text}\n")
    summary["dctts_skipped"] = {"utts": len(skipped), "words": sorted({w for _, m, _ in skipped for w in m})}

    # ---- pocketsphinx LibriVox five (shared copy)
    lv = os.path.join(a.shared, "pocketsphinx-librivox", "test", "data", "librivox")
    trans = sphinx_transcription(os.path.join(lv, "transcription"))
    rows = [(os.path.join(lv, u + ".wav"), phones_or_die(w, lex, u)) for u, w in sorted(trans.items())]
    emit("librivox_eval.tsv", rows,
         [f"source: {lv} (LibriVox, public domain; CMU BSD-2 repo; see its SOURCE.md)",
          "words from `transcription`; its phone alignments are NOT used (CMUdict for consistency)", conv])

    # ---- apt pocketsphinx-testdata: librivox five + cards five + goforward
    if not os.path.isdir(PSDATA):
        raise SystemExit("pocketsphinx-testdata missing: apt-get install pocketsphinx-testdata")
    rows = []
    for sub in ("librivox", "cards"):
        tr_file = os.path.join(PSDATA, sub, "transcription" if sub == "librivox" else "cards.transcription")
        for u, w in sorted(sphinx_transcription(tr_file).items()):
            rows.append((os.path.join(PSDATA, sub, u + ".wav"), phones_or_die(w, lex, u)))
    gf = os.path.join(out, "psdata", "goforward.wav")
    os.makedirs(os.path.dirname(gf), exist_ok=True)
    subprocess.run(["sox", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-L",
                    os.path.join(PSDATA, "goforward.raw"), gf], check=True)
    # transcript: goforward.gram's first rule / goforward.fsg, the utterance pocketsphinx's tests decode
    rows.append((gf, phones_or_die("go forward ten meters".split(), lex, "goforward")))
    emit("psdata_eval.tsv", rows,
         [f"source: Debian package pocketsphinx-testdata, {PSDATA} (CMU, BSD-2; "
          "/usr/share/doc/pocketsphinx-testdata/copyright)",
          "transcripts: librivox/transcription, cards/cards.transcription, goforward.gram "
          "('go forward ten meters'); goforward.raw (16 kHz s16le) wrapped as psdata/goforward.wav", conv])

    summary["fsdd_heldout_speaker"] = a.fsdd_heldout
    json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
