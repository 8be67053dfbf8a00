#!/usr/bin/env bash
# Transcribe a corpus on a Slurm cluster: one array task per shard, each writing its own files.
#
#   sbatch --array=0-99 recipes/cluster/slurm_transcribe.sh corpus.tsv out/
#
# corpus.tsv lists one recording per line (a path relative to the list's folder, optionally
# followed by a tab and anything else; or JSON Lines with "audio" and "id"). Every task reads the
# same list and takes the inputs whose hash falls in its shard, so no task needs to know about
# another. Outputs are written whole or not at all; a task that was killed or preempted is simply
# resubmitted (`sbatch --array=17 ...`): --resume skips the files it already wrote. The same lines
# work with `align --manifest` (audio<TAB>text) and `features --manifest`.
#
#SBATCH --job-name=phonrec
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=02:00:00
#SBATCH --output=logs/phonrec-%A_%a.log
set -euo pipefail
manifest=${1:?usage: slurm_transcribe.sh MANIFEST OUTPUT_DIR}
out=${2:?usage: slurm_transcribe.sh MANIFEST OUTPUT_DIR}
# phonrec uses as many threads as the cores it sees; keep it to the task's allocation.
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-2}
phonrec transcribe --manifest "$manifest" --format json --output-dir "$out" \
  --shard "${SLURM_ARRAY_TASK_ID:?run under sbatch --array}/${SLURM_ARRAY_TASK_COUNT:?}" \
  --resume
