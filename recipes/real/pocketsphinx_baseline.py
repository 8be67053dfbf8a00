#!/usr/bin/env python3
"""Phone error rate of pocketsphinx's allphone decoder on a phonrec manifest (a peer baseline).

Usage (needs `pip install pocketsphinx` -- run.sh puts it in /work/data/venv -- and sox):
  /work/data/venv/bin/python pocketsphinx_baseline.py MANIFEST.tsv [MANIFEST2.tsv ...] [--verbose]
      [--default-beams] [--limit N]

Decoder as in shared/docs/DATA.md section 5: the en-us model the PyPI package ships,
Decoder(hmm=en-us/en-us, allphone=en-us/en-us-phone.lm.bin, beam=1e-20, pbeam=1e-20, lw=2.0).
Audio goes through sox to 16 kHz mono 16-bit (FSDD is 8 kHz, dc_tts 44.1 kHz).
Scoring: pocketsphinx phones lowercased and folded to the 39 set (ao->aa, zh->sh); SIL, fillers (+NSN+ ...)
and anything outside the set dropped on both sides; PER = sum of Levenshtein distances / reference phones.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402


def fold(phones):
    out = []
    for p in phones:
        q = p.lower()
        if q.startswith("+") or q.startswith("<"):
            continue
        q = phonlib.fold_cmu([q])[0]
        if q in phonlib.PHONESET and q != "sil":
            out.append(q)
    return out


def load16k(path, pad=0.0):
    cmd = ["sox", path, "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-L", "-"]
    if pad:
        cmd += ["pad", str(pad), str(pad)]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--verbose", action="store_true", help="print each utterance's ref/hyp")
    ap.add_argument("--default-beams", action="store_true", help="pocketsphinx's default beams instead")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--pad", type=float, default=0.0,
                    help="seconds of digital silence added at both ends (FSDD clips are trimmed tight)")
    a = ap.parse_args()
    from pocketsphinx import Decoder, get_model_path
    kw = dict(hmm=get_model_path("en-us/en-us"), allphone=get_model_path("en-us/en-us-phone.lm.bin"),
              lw=2.0, loglevel="FATAL")
    if not a.default_beams:
        kw.update(beam=1e-20, pbeam=1e-20)
    results = []
    for man in a.manifests:
        dec = Decoder(**kw)     # fresh decoder per manifest: live CMN state does not carry over
        rows = phonlib.read_manifest(man)
        if a.limit:
            rows = rows[:a.limit]
        errs = nref = 0
        audio_s = 0.0
        t0 = time.time()
        for path, ref in rows:
            ref = [p for p in ref if p in phonlib.PHONESET and p != "sil"]
            pcm = load16k(path, a.pad)
            audio_s += len(pcm) / 32000.0
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            hyp = fold(seg.word for seg in dec.seg())
            e = phonlib.levenshtein(ref, hyp)
            errs += e
            nref += len(ref)
            if a.verbose:
                print(f"{os.path.basename(path)}\tPER {e / max(1, len(ref)):.3f}\n  ref {' '.join(ref)}\n"
                      f"  hyp {' '.join(hyp)}")
        dt = time.time() - t0
        per = errs / max(1, nref)
        results.append((man, len(rows), nref, per, audio_s, dt))
        print(f"{man}\tutts {len(rows)}\tref_phones {nref}\tPER {per:.4f}\taudio {audio_s:.1f} s\t"
              f"decode {dt:.1f} s", flush=True)
    return results


if __name__ == "__main__":
    main()
