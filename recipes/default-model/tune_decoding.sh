#!/usr/bin/env bash
# Choose the built-in model's phone LM and decoding weights on the dev set: estimate gzip-compressed
# phone LMs of several orders and count cut-offs from the training labels (plus, optionally, phone text
# from recipes/default-model/lm_text.py), decode dev with each at several LM weights and insertion
# bonuses (beam 8), and print one row per setting. Then apply the size rule: among the LMs that keep
# model + LM within MAX_BYTES (default 20 MB), the smallest whose dev PER is within 0.05 points of the
# best one's.
#
# usage: tune_decoding.sh MODEL TRAIN_TSV DEV_TSV [PHONREC=phonrec] [OUT_DIR=/tmp/phonrec-lms] [LM_TEXT]
# grid (override through the environment): ORDERS="5 6 7 8" MIN_COUNTS="2 3 4 5 6"
#   WEIGHTS="0.4 0.5 0.6" BONUSES="1.0 1.5 2.0" MAX_BYTES=20000000
set -euo pipefail
model=${1:?usage: tune_decoding.sh MODEL TRAIN_TSV DEV_TSV [PHONREC] [OUT_DIR] [LM_TEXT]}
train=${2:?training manifest}
dev=${3:?dev manifest}
phonrec=${4:-phonrec}
out=${5:-/tmp/phonrec-lms}
text=${6:-}
orders=${ORDERS:-5 6 7 8}
min_counts=${MIN_COUNTS:-2 3 4 5 6}
weights=${WEIGHTS:-0.4 0.5 0.6}
bonuses=${BONUSES:-1.0 1.5 2.0}
max_bytes=${MAX_BYTES:-20000000}
lm_budget=$(( max_bytes - $(stat -c %s "$model") ))
mkdir -p "$out"
results="$out/results.tsv"
: > "$results"
sources=(--data "$train")
if [ -n "$text" ]; then sources+=(--text "$text"); fi
for order in $orders; do
    for min_count in $min_counts; do
        lm="$out/phone$order-m$min_count.arpa.gz"
        "$phonrec" lm "${sources[@]}" --order "$order" --min-count "$min_count" --output "$lm" 2>/dev/null
        size=$(stat -c %s "$lm")
        if [ "$size" -gt "$lm_budget" ]; then
            echo "# order $order, cut-off $min_count: $size bytes, over the $lm_budget-byte budget: skipped"
            rm -f "$lm"
            continue
        fi
        for weight in $weights; do
            for bonus in $bonuses; do
                per=$("$phonrec" eval --model "$model" --data "$dev" --beam 8 --lm "$lm" \
                    --lm-weight "$weight" --insertion-bonus "$bonus" --json |
                    python3 -c 'import json, sys; print("%.4f" % json.load(sys.stdin)["per"])')
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$per" "$order" "$min_count" "$weight" "$bonus" "$size" |
                    tee -a "$results"
            done
        done
    done
done
echo "# columns: dev PER, order, cut-off, LM weight, insertion bonus, LM bytes (gzip)"
echo "# best:"
sort -k1,1n -k6,6n "$results" | head -1
echo "# chosen (the smallest LM within 0.05 points of the best; its best weight and bonus):"
best=$(sort -k1,1n "$results" | head -1 | cut -f1)
awk -v best="$best" '$1 <= best + 0.0005' "$results" | sort -k6,6n -k1,1n | head -1
