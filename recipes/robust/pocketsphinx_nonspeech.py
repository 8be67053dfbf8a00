#!/usr/bin/env python3
"""Phones pocketsphinx allphone outputs on files that contain no speech (robust/nonspeech.tsv).

Usage (same venv as ../real/pocketsphinx_baseline.py, i.e. PyPI pocketsphinx + sox):
  /work/data/venv/bin/python recipes/robust/pocketsphinx_nonspeech.py [/work/data/robust/nonspeech.tsv] \
      [--default-beams] > /work/data/robust/pocketsphinx_nonspeech.tsv

Decodes exactly as pocketsphinx_baseline.py does (its Decoder settings, its sox conversion to 16 kHz
mono 16-bit, one fresh decoder for the manifest, its folding: SIL and fillers dropped, 39-phone set).
pocketsphinx_baseline.py would score these files too (their labels are empty, so PER there = total phones),
but prints only the sum; this prints one TSV line per file: file, seconds, phones (folded, as scored),
raw segments (pocketsphinx's own output incl. SIL/fillers), and the folded phone string.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "real"))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402
from pocketsphinx_baseline import fold, load16k  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest", nargs="?", default="/work/data/robust/nonspeech.tsv")
    ap.add_argument("--default-beams", action="store_true")
    a = ap.parse_args()
    from pocketsphinx import Decoder, get_model_path
    kw = dict(hmm=get_model_path("en-us/en-us"), allphone=get_model_path("en-us/en-us-phone.lm.bin"),
              lw=2.0, loglevel="FATAL")
    if not a.default_beams:
        kw.update(beam=1e-20, pbeam=1e-20)
    dec = Decoder(**kw)
    print("file\tseconds\tphones\traw_segments\thyp")
    t0 = time.time()
    total = 0
    for path, _ref in phonlib.read_manifest(a.manifest):
        pcm = load16k(path)
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        raw = [seg.word for seg in dec.seg()]
        hyp = fold(raw)
        total += len(hyp)
        print(f"{path}\t{len(pcm) / 32000.0:.2f}\t{len(hyp)}\t{len(raw)}\t{' '.join(hyp)}", flush=True)
    print(f"# total phones {total}; decode {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
