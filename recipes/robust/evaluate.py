#!/usr/bin/env python3
"""Score a model on the clean and degraded evaluation sets and on non-speech; print Markdown tables.

usage: evaluate.py [--phonrec target/release/phonrec] [--data /work/data] [--sets a,b] [--conditions c,d]
                   [--json out.json] [--nonspeech FILE.tsv]
                   [-- phonrec eval/transcribe flags, e.g. --model M --lm L --no-segment]

Rows: evaluation sets; columns: clean and each condition of make_robust.py that exists for the set
(PER with the given decoding; "-" where the set has no such condition). Then the number of phones
output on each non-speech file of robust/nonspeech.tsv. Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys

SETS = {
    "heldout_voice": "synth/test_heldout_voice",
    "fsdd": "real/fsdd_eval",
    "psdata": "real/psdata_eval",
    "librivox": "real/librivox_eval",
    "dctts": "real/dctts_eval",
    "dev": "synth/dev",
}
CONDITIONS = ["clean", "pad", "padfloor", "joined", "levels", "background", "dcoffset", "8k", "tel8k", "8k16k", "tel16k", "reverb", "room", "snr20", "snr10", "snr5", "quiet", "clip",
              "clipmild", "gated", "loss", "music20", "music10", "denoised", "echo", "talker", "clicks", "strings"]


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("--phonrec", default="phonrec")
    ap.add_argument("--data", default=os.environ.get("PHONREC_DATA", "/work/data"))
    ap.add_argument("--sets", default="heldout_voice,fsdd,psdata,librivox,dctts")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--nonspeech", help="non-speech manifest [default: DATA/robust/nonspeech.tsv]")
    a = ap.parse_args(argv)
    sets = a.sets.split(",")
    conditions = a.conditions.split(",")
    results = {}
    for name in sets:
        base = SETS[name]
        results[name] = {}
        for cond in conditions:
            if cond == "clean":
                manifest = os.path.join(a.data, base + ".tsv")
            else:
                manifest = os.path.join(a.data, "robust", os.path.basename(base) + "_" + cond + ".tsv")
            if not os.path.exists(manifest):
                continue
            out = subprocess.run([a.phonrec, "eval", "--data", manifest, "--json", *extra],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"phonrec eval failed on {manifest}: {out.stderr.strip()}")
            r = json.loads(out.stdout)
            results[name][cond] = {"per": r["per"], "phones": r["reference_phones"]}
            print(f"{name} {cond}: {r['per']:.3f}", file=sys.stderr)
    print("| set | " + " | ".join(conditions) + " |")
    print("|---|" + "---|" * len(conditions))
    for name in sets:
        cells = [f"{results[name][c]['per']:.3f}" if c in results[name] else "-" for c in conditions]
        pers = [r["per"] for r in results[name].values()]
        mean = f" (mean {sum(pers) / len(pers):.4f})" if pers else ""
        print(f"| {name}{mean} | " + " | ".join(cells) + " |")

    nonspeech = a.nonspeech or os.path.join(a.data, "robust", "nonspeech.tsv")
    if os.path.exists(nonspeech):
        paths = [line.split("\t", 1)[0] for line in open(nonspeech, encoding="utf-8")
                 if line.strip() and not line.startswith("#")]
        out = subprocess.run([a.phonrec, "transcribe", "--format", "json", *extra, *paths],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"phonrec transcribe failed on non-speech: {out.stderr.strip()}")
        counts = {}
        for line in out.stdout.splitlines():
            r = json.loads(line)
            counts[os.path.basename(r["file"])] = len(r["spans"])
        results["nonspeech"] = counts
        print()
        print("| non-speech file (10 s) | phones output |")
        print("|---|---|")
        for file, n in counts.items():
            print(f"| {file} | {n} |")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
