#!/usr/bin/env python3
"""Phone boundary accuracy of `phonrec align` (and of pocketsphinx's aligner on the same files) against
the exact timings of make_timed.py.

Usage:
  python3 evaluate.py --phonrec target/release/phonrec [--data /work/data/align] [--suffix _pad]
      [--pocketsphinx] [--json OUT] [-- extra phonrec align flags]

Systems:
  phonrec-phones  `phonrec align --manifest phones.tsv`: the reference phone sequence given
  phonrec-text    `phonrec align --manifest text.tsv --oov spell`: words through the built-in lexicon
  pocketsphinx    pocketsphinx 5 (PyPI, en-us model and dictionary): Decoder.set_align_text(words),
                  decode, set_alignment(), decode again, get_alignment() -> phones (needs the venv's
                  pocketsphinx; words outside its dictionary make the file count as failed)

Scoring: each system's phone sequence is matched to the reference by minimum edit distance; for every
reference phone matched to an identical hypothesis phone, |start error| and |end error| are boundary
errors (a boundary between two matched phones is counted from both sides). Reported: mean absolute
boundary error (ms), the share within 25 ms and 50 ms, and the share of reference phones matched.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402


def load_refs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_phonrec(binary, manifest, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.jsonl")
        cmd = [binary, "align", "--manifest", manifest, "--format", "json", "-o", out] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 1):
            sys.exit(f"phonrec failed: {r.stderr}")
        hyps = {}
        with open(out, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                hyps[rec["file"]] = {
                    "phones": [[p["phone"], p["start"], p["end"]] for p in rec["phones"]],
                    "match_score": rec["match_score"],
                }
        return hyps


def run_pocketsphinx(refs):
    from pocketsphinx import Decoder, get_model_path
    hyps = {}
    dictionary = {}
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                dictionary.setdefault(parts[0], parts[1:])
    for ref in refs:
        words = phonlib.normalize_words(ref["text"])
        words = [w if w in dictionary else w.strip("'") for w in words]
        if any(w not in dictionary for w in words):
            continue
        audio = subprocess.run(["sox", ref["audio"], "-t", "raw", "-r", "16000", "-e", "signed", "-b",
                                "16", "-c", "1", "-L", "-"], check=True, capture_output=True).stdout
        decoder = Decoder(samprate=16000, bestpath=False, loglevel="FATAL")
        try:
            decoder.set_align_text(" ".join(words))
            decoder.start_utt()
            decoder.process_raw(audio, full_utt=True)
            decoder.end_utt()
            decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(audio, full_utt=True)
            decoder.end_utt()
            phones = []
            for word in decoder.get_alignment():
                for phone in word:
                    name = phone.name.lower()
                    if name == "sil" or name.startswith("+"):
                        continue
                    q = phonlib.fold_cmu([name])[0]
                    # frames are 10 ms
                    phones.append([q, phone.start / 100.0, (phone.start + phone.duration) / 100.0])
            hyps[ref["audio"]] = {"phones": phones}
        except RuntimeError:
            continue
    return hyps


def score(refs, hyps):
    errors, matched, total, failed = [], 0, 0, 0
    for ref in refs:
        total += len(ref["phones"])
        hyp = hyps.get(ref["audio"])
        if hyp is None:
            failed += 1
            continue
        # minimum-edit alignment over labels, carrying the times along
        pairs = phonlib.align(ref["phones"], hyp["phones"], key=lambda p: p[0])
        for r, h in pairs:
            if r is not None and h is not None and r[0] == h[0]:
                matched += 1
                errors.append(abs(r[1] - h[1]))
                errors.append(abs(r[2] - h[2]))
    if not errors:
        return {"files_failed": failed}
    errors.sort()
    n = len(errors)
    return {
        "mean_abs_ms": round(1000 * sum(errors) / n, 1),
        "median_ms": round(1000 * errors[n // 2], 1),
        "within_25ms": round(sum(e <= 0.025 for e in errors) / n, 3),
        "within_50ms": round(sum(e <= 0.050 for e in errors) / n, 3),
        "phones_matched": round(matched / total, 3),
        "files_failed": failed,
        "boundaries": n,
    }


def split_extra(argv):
    """Arguments before `--` for the script, after it for phonrec."""
    if "--" in argv:
        k = argv.index("--")
        return argv[:k], argv[k + 1:]
    return argv, []


def main():
    argv, extra = split_extra(sys.argv[1:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--phonrec", required=True)
    ap.add_argument("--data", default="/work/data/align")
    ap.add_argument("--suffix", default="")
    ap.add_argument("--pocketsphinx", action="store_true")
    ap.add_argument("--systems", default="phones,text")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    refs = load_refs(os.path.join(a.data, f"reference{a.suffix}.jsonl"))
    results = {}
    systems = a.systems.split(",")
    if "phones" in systems:
        hyps = run_phonrec(a.phonrec, os.path.join(a.data, f"phones{a.suffix}.tsv"), extra)
        results["phonrec-phones"] = score(refs, hyps)
    if "text" in systems:
        hyps = run_phonrec(a.phonrec, os.path.join(a.data, f"text{a.suffix}.tsv"),
                           ["--oov", "spell"] + extra)
        results["phonrec-text"] = score(refs, hyps)
    if a.pocketsphinx:
        results["pocketsphinx"] = score(refs, run_pocketsphinx(refs))
    for name, r in results.items():
        print(f"{name:16s} {json.dumps(r)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
