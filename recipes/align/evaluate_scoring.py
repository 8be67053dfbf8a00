#!/usr/bin/env python3
"""Mispronunciation detection of `phonrec score` on make_mispronounced.py's sets: ROC AUC and equal-error
rate per error type, with the GOP of the changed phone as the detector.

Usage: python3 evaluate_scoring.py --phonrec target/release/phonrec [--data /work/data/mispron]
           [--correct /work/data/align/text.tsv] [--json OUT] [-- extra phonrec score flags]

Positives: the phone each changed utterance says wrongly (scored against the original text).
Negatives: every phone of the same prompts said correctly (--correct, make_timed.py's text.tsv: the
same voice, pitch and rate). AUC = P(GOP of a positive < GOP of a negative) (ties count half); EER where
the miss and false-alarm rates cross. Also reported: how often `heard` names the phone flite said
(substitutions), and the detection and false-alarm rates at phonrec's default threshold.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import phonlib  # noqa: E402
sys.path.insert(0, HERE)
from evaluate import split_extra  # noqa: E402


def score(binary, manifest, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "s.jsonl")
        subprocess.run([binary, "score", "--manifest", manifest, "--format", "json", "-o", out,
                        "--oov", "spell"] + extra, capture_output=True, text=True)
        with open(out, encoding="utf-8") as f:
            return {r["file"]: r for r in map(json.loads, f)}


def auc_eer(pos, neg):
    pos, neg = sorted(pos), sorted(neg)
    # AUC by ranks
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        r = (i + j + 1) / 2.0
        rank_sum += r * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    n1, n0 = len(pos), len(neg)
    # positives should have LOW gop: AUC = P(pos < neg)
    auc = 1.0 - (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    best = None
    for t in sorted(set(pos + neg)):
        miss = sum(v >= t for v in pos) / n1
        fa = sum(v < t for v in neg) / n0
        if best is None or abs(miss - fa) < best[0]:
            best = (abs(miss - fa), (miss + fa) / 2, t)
    return auc, best[1], best[2]


def main():
    argv, extra = split_extra(sys.argv[1:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--phonrec", required=True)
    ap.add_argument("--data", default="/work/data/mispron")
    ap.add_argument("--correct", default="/work/data/align/text.tsv")
    ap.add_argument("--threshold", type=float, default=-1.0,
                    help="where to report detection and false-alarm rates (phonrec's default -1.0)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    correct = score(a.phonrec, a.correct, extra)
    negatives = [p["gop"] for r in correct.values() for w in r.get("words", []) for p in w["phones"]]
    results = {}
    for kind in ("sub", "del"):
        path = os.path.join(a.data, f"{kind}.jsonl")
        if not os.path.exists(path):
            continue
        labels = [json.loads(l) for l in open(path, encoding="utf-8")]
        scored = score(a.phonrec, os.path.join(a.data, f"{kind}.tsv"), extra)
        positives, heard_right, located = [], 0, 0
        for lab in labels:
            rec = scored.get(lab["audio"])
            if rec is None:
                continue
            words = phonlib.normalize_words(lab["text"])
            nth = words[: lab["word_index"]].count(lab["word"])
            hits = [w for w in rec["words"] if w["word"] == lab["word"]]
            if nth >= len(hits):
                continue
            phones = hits[nth]["phones"]
            i = lab["phone_index"]
            if i >= len(phones) or phones[i]["expected"] != lab["expected"]:
                continue
            located += 1
            positives.append(phones[i]["gop"])
            if lab["said"] and phones[i]["heard"] == lab["said"]:
                heard_right += 1
        auc, eer, t = auc_eer(positives, negatives)
        results[kind] = {
            "utterances": len(labels), "located": located, "auc": round(auc, 3), "eer": round(eer, 3),
            "eer_threshold": round(t, 3),
            "detected_at_default": round(sum(v < a.threshold for v in positives) / len(positives), 3),
            "false_alarms_at_default": round(sum(v < a.threshold for v in negatives) / len(negatives), 3),
        }
        if kind == "sub":
            results[kind]["heard_is_said"] = round(heard_right / located, 3)
    results["negatives"] = len(negatives)
    for k, v in results.items():
        print(k, json.dumps(v))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
