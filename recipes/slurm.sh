#!/bin/bash
# slurm.sh - submit the evaluation pipeline as a Slurm job array: task K of N
# runs denoise -> features -> score on shard K/N; a dependent job merges the
# shards with glad-auroc. Prints the job ids. With --dry-run it only writes
# and shows the two batch scripts.
#
#   recipes/slurm.sh --model MODEL --test TEST.msgpack [--shards N] [--out DIR]
#                    [--partition P] [--time HH:MM:SS] [--cpus C] [--dry-run]
#                    [--backbone auto|unet|mobilenetv2] [-- DENOISE-OPTIONS...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MODEL="" TEST="" N=8 OUT="$ROOT/results/slurm" PART="" TIME=02:00:00 CPUS=4 DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --model) MODEL=$(realpath "$2"); shift 2 ;;
    --test) TEST=$(realpath "$2"); shift 2 ;;
    --shards) N=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --partition) PART=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "slurm.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$MODEL" ] && [ -n "$TEST" ] || { echo "slurm.sh: --model and --test are required" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
FEATS=$(feat_opts "$MODEL")
DEN="${*:---steps 250 --skip 25 --ads --saff --threshold 0.05 --min-step 100}"
BIN="$ROOT/build"
cat > "$OUT/shard.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=glad-eval
#SBATCH --array=0-$((N - 1))
#SBATCH --cpus-per-task=$CPUS
#SBATCH --time=$TIME
#SBATCH --output=$OUT/shard-%a.log
${PART:+#SBATCH --partition=$PART}
set -euo pipefail
export PATH="$BIN:\$PATH" OMP_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-$CPUS}
glad-denoise --model "$MODEL" --shard "\$SLURM_ARRAY_TASK_ID/$N" $DEN "$TEST" \\
    | glad-features $FEATS | glad-score --preset glad > "$OUT/shard\$SLURM_ARRAY_TASK_ID.msgpack"
SB
cat > "$OUT/merge.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=glad-merge
#SBATCH --time=00:20:00
#SBATCH --output=$OUT/merge.log
${PART:+#SBATCH --partition=$PART}
set -euo pipefail
export PATH="$BIN:\$PATH"
glad-auroc --format markdown "$OUT"/shard*.msgpack > "$OUT/table.md"
glad-auroc --format json "$OUT"/shard*.msgpack > "$OUT/table.json"
SB
if [ "$DRY" = 1 ]; then cat "$OUT/shard.sbatch" "$OUT/merge.sbatch"; exit 0; fi
command -v sbatch >/dev/null || { echo "slurm.sh: sbatch not found (use --dry-run to see the scripts)" >&2; exit 1; }
array=$(sbatch --parsable "$OUT/shard.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"$array" "$OUT/merge.sbatch")
echo "array job $array, merge job $merge; the table will be $OUT/table.md"
