#!/usr/bin/env python3
"""Fit the boundary model of `phonrec align` (src/ctc/boundaries.rs): for each phone, how long it
typically starts before the network's first spike frame and lasts after its last, as medians over
speech with exact timings from TRAINING voices (make_timed.py --groups flite_kal16,flite_awb,flite_slt
--split train), never the held-out voice that evaluate.py scores.

Usage: python3 fit_boundaries.py --phonrec target/release/phonrec [--data /work/data/align_fit]
           [--model MODEL] [--out models/default-boundaries.tsv]

Runs `phonrec align --manifest DATA/phones.tsv --spike-spans` (spans = the Viterbi path's spike
frames) and writes `phone<TAB>before_s<TAB>after_s<TAB>count`, plus a `*` row (medians over all
phones) for phones seen fewer than 10 times.
"""
import argparse
import collections
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evaluate  # noqa: E402

MIN_COUNT = 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phonrec", required=True)
    ap.add_argument("--data", default="/work/data/align_fit")
    ap.add_argument("--model")
    ap.add_argument("--out", default="models/default-boundaries.tsv")
    a = ap.parse_args()
    refs = evaluate.load_refs(os.path.join(a.data, "reference.jsonl"))
    extra = ["--spike-spans"] + (["--model", a.model] if a.model else [])
    hyps = evaluate.run_phonrec(a.phonrec, os.path.join(a.data, "phones.tsv"), extra)
    before, after = collections.defaultdict(list), collections.defaultdict(list)
    for ref in refs:
        spikes = hyps[ref["audio"]]["phones"]
        assert [p[0] for p in spikes] == [p[0] for p in ref["phones"]], ref["id"]
        for (phone, start, end), (_, spike_start, spike_end) in zip(ref["phones"], spikes):
            before[phone].append(spike_start - start)
            after[phone].append(end - spike_end)
    every_before = [x for v in before.values() for x in v]
    every_after = [x for v in after.values() for x in v]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("# phonrec boundary model: per phone, median seconds from the phone's start to its first\n"
                "# spike frame (before_s) and from its last spike frame's end to the phone's end (after_s)\n"
                f"# fitted by recipes/align/fit_boundaries.py on {len(refs)} files of {a.data}\n")
        f.write("phone\tbefore_s\tafter_s\tcount\n")
        f.write(f"*\t{statistics.median(every_before):.4f}\t{statistics.median(every_after):.4f}\t"
                f"{len(every_before)}\n")
        for phone in sorted(before):
            if len(before[phone]) >= MIN_COUNT:
                f.write(f"{phone}\t{statistics.median(before[phone]):.4f}\t"
                        f"{statistics.median(after[phone]):.4f}\t{len(before[phone])}\n")
    print(f"wrote {a.out} from {len(every_before)} phones")


if __name__ == "__main__":
    main()
