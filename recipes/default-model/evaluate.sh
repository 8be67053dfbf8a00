#!/usr/bin/env bash
# Score a model on every evaluation set of the recipes and print one Markdown table row per set.
# usage: evaluate.sh MODEL [DATA_DIR=/work/data] [PHONREC=phonrec] [phonrec eval flags...]
#   e.g. evaluate.sh models/default.safetensors /work/data target/release/phonrec --lm models/default-lm.arpa.gz --lm-weight 0.4 --insertion-bonus 1.0
#   (a model given by path is decoded greedily unless --lm is passed)
set -euo pipefail
model=${1:?usage: evaluate.sh MODEL [DATA_DIR] [PHONREC]}
data=${2:-/work/data}
phonrec=${3:-phonrec}
shift $(( $# < 3 ? $# : 3 ))
echo "| set | utterances | PER | S | D | I | N |"
echo "|---|---|---|---|---|---|---|"
for set in synth/test_heldout_voice real/fsdd_eval real/psdata_eval real/librivox_eval real/dctts_eval; do
    json=$("$phonrec" eval --model "$model" --data "$data/$set.tsv" --json "$@")
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
cells = [sys.argv[1], r["utterances"], "%.3f" % r["per"], r["substitutions"], r["deletions"], r["insertions"], r["reference_phones"]]
print("| " + " | ".join(str(c) for c in cells) + " |")
' "$set" "$json"
done
