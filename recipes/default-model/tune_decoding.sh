#!/usr/bin/env bash
# Choose the built-in model's phone LM and decoding weights on the dev set: estimate phone LMs of
# several orders (count cut-offs 1, 2, 3) from the training labels, decode dev with each
# at several LM weights (beam 8, insertion bonus 0.5), print one row per setting, best last.
# usage: tune_decoding.sh MODEL TRAIN_TSV DEV_TSV [PHONREC=phonrec] [OUT_DIR=/tmp/phonrec-lms]
set -euo pipefail
model=${1:?usage: tune_decoding.sh MODEL TRAIN_TSV DEV_TSV [PHONREC] [OUT_DIR]}
train=${2:?training manifest}
dev=${3:?dev manifest}
phonrec=${4:-phonrec}
out=${5:-/tmp/phonrec-lms}
mkdir -p "$out"
results="$out/results.tsv"
: > "$results"
for order in 4 5 6 7; do
    for min_count in 1 2 3; do
        lm="$out/phone$order-m$min_count.arpa"
        "$phonrec" lm --data "$train" --order "$order" --min-count "$min_count" --output "$lm" 2>/dev/null
        size=$(stat -c %s "$lm")
        for weight in 0.2 0.3 0.4; do
            per=$("$phonrec" eval --model "$model" --data "$dev" --beam 8 --lm "$lm" \
                --lm-weight "$weight" --insertion-bonus 0.5 --json |
                python3 -c 'import json, sys; print("%.4f" % json.load(sys.stdin)["per"])')
            printf '%s\t%s\t%s\t%s\t%s\n' "$per" "$order" "$min_count" "$weight" "$size" | tee -a "$results"
        done
    done
done
echo "best (dev PER, order, min-count, weight, LM bytes); ties go to the smaller LM:"
sort -k1,1n -k5,5n "$results" | head -1
