#!/bin/bash
# benchmark.sh - every class of an MVTec-layout dataset (MVTec AD, VisA, MPDD,
# BTAD; or MTD with its split list) through tune -> train -> evaluate: per class
# recipes/run.sh --tune (recipes/mtd.sh --tune for MTD), the classes sharded
# over local cores with GNU parallel or over a Slurm job array with a dependent
# merge job. Ends in the paper-style table OUT/table.md (one row per class and
# the mean; I-F1 at the threshold calibrated on validation; wall time; the knobs
# tune.sh chose per class and how) and OUT/table.json.
#
#   recipes/benchmark.sh --data DIR [--format mvtec|mpdd|visa|btad|mtd]
#                        [--classes LIST] [--out DIR] [--jobs N]
#                        [--slurm [--partition P] [--time HH:MM:SS] [--cpus C] [--dry-run]]
#                        [--size N] [--steps N] [--batch N] [--seed S]
#                        [--backbone auto|unet|mobilenetv2] [--preset P]
#                        [--feat-layers LIST] [--image-score R] [--tile N [--overlap P]]
#                        [--split-file F] [--no-tune] [--tune-grid full|quick]
#
#   --jobs N       classes run at once with GNU parallel (default 1)
#   --slurm        submit one array task per class and a merge job
#                  (afterany: a failed class is reported, not hidden); prints
#                  the job ids; --dry-run writes and shows the batch scripts
#   --no-tune      the recipes' fixed defaults instead of tune.sh's choices
#
# Every class writes OUT/runs/<class>/ and OUT/runs/<class>.wall (seconds).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DATA="" FORMAT=mvtec CLASSES="" OUT="$ROOT/results/benchmark" JOBS=1 SLURM=0 DRY=0
PART="" TIME=12:00:00 CPUS=2 MODE=run IDX="" TUNE_OPT=--tune
pass=()   # the options handed to run.sh / mtd.sh
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$(realpath "$2"); shift 2 ;;
    --format) FORMAT=$2; shift 2 ;;
    --classes) CLASSES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --slurm) SLURM=1; shift ;;
    --partition) PART=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --no-tune) TUNE_OPT=""; shift ;;
    --run-class) MODE=class IDX=$2; shift 2 ;;   # internal: one class (the Slurm task)
    --merge) MODE=merge; shift ;;                # internal: the table
    --size|--steps|--batch|--seed|--backbone|--preset|--feat-layers|--image-score|--tile|--overlap|--split-file|--tune-grid)
        pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "benchmark.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v jq >/dev/null || { echo "benchmark.sh: jq is needed (apt-get install jq)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

if [ "$MODE" = run ]; then
    [ -n "$DATA" ] || { echo "benchmark.sh: --data DIR is required" >&2; exit 2; }
    case "$FORMAT" in mvtec|mpdd|visa|btad|mtd) ;; *) echo "benchmark.sh: --format must be mvtec, mpdd, visa, btad or mtd" >&2; exit 2 ;; esac
    if [ "$FORMAT" = mtd ]; then CLASSES=mtd
    elif [ -z "$CLASSES" ] && [ "$FORMAT" = visa ]; then   # VisA: the objects of split_csv/1cls.csv
        CLASSES=$(awk -F, 'NR > 1 && !seen[$1]++ { printf "%s,", $1 }' "$DATA/split_csv/1cls.csv" 2>/dev/null)
        CLASSES=${CLASSES%,}
    elif [ -z "$CLASSES" ]; then
        CLASSES=$(cd "$DATA" && for d in */; do [ -d "$d/train" ] && printf '%s,' "${d%/}"; done)
        CLASSES=${CLASSES%,}
    fi
    [ -n "$CLASSES" ] || { echo "benchmark.sh: no class folders (CLASS/train) in $DATA" >&2; exit 1; }
    # the run's settings, read back by every class job and the merge (Slurm tasks too)
    {
        printf 'DATA=%q FORMAT=%q TUNE_OPT=%q\n' "$DATA" "$FORMAT" "$TUNE_OPT"
        printf 'pass=('; printf '%q ' "${pass[@]}"; printf ')\n'
    } > "$OUT/bench.env"
    echo "${CLASSES//,/ }" | tr ' ' '\n' > "$OUT/classes.txt"
    date +%s > "$OUT/start.txt"
fi
. "$OUT/bench.env"
mapfile -t CLS < "$OUT/classes.txt"

# one class: tune -> train -> evaluate, timed
run_class() {
    local c=${CLS[$1]} t0 rc=0
    t0=$(date +%s)
    mkdir -p "$OUT/runs"
    if [ "$FORMAT" = mtd ]; then
        bash "$ROOT/recipes/mtd.sh" --data "$DATA" --out "$OUT/runs/$c" $TUNE_OPT "${pass[@]}" > /dev/null || rc=$?
    else
        bash "$ROOT/recipes/run.sh" --data "$DATA" --format "$FORMAT" --classes "$c" --out "$OUT/runs/$c" $TUNE_OPT "${pass[@]}" > /dev/null || rc=$?
    fi
    echo $(( $(date +%s) - t0 )) > "$OUT/runs/$c.wall"
    return $rc
}
scored_of() { if [ "$FORMAT" = mtd ]; then echo "$OUT/runs/$1/scored.msgpack"; else echo "$OUT/runs/$1/$1/scored.msgpack"; fi; }
tune_of() { if [ "$FORMAT" = mtd ]; then echo "$OUT/runs/$1/tune"; else echo "$OUT/runs/$1/$1/tune"; fi; }

merge() {
    local c s files=() missing=()
    for c in "${CLS[@]}"; do
        s=$(scored_of "$c")
        if [ -f "$s" ]; then files+=("$s"); else missing+=("$c"); fi
    done
    [ ${#files[@]} -gt 0 ] || { echo "benchmark.sh: no class finished" >&2; exit 1; }
    glad-auroc --format json "${files[@]}" > "$OUT/table.json"
    {
        echo "| class | I-AUROC | P-AUROC | AUPRO | I-F1 @ thr | wall (s) | denoising | layers | image score |"
        echo "|---|---:|---:|---:|---:|---:|---|---|---|"
        glad-auroc --by class --format csv "${files[@]}" 2>/dev/null | awk -F, 'NR > 1 { print }' | while IFS=, read -r -a f; do
            c=${f[0]}
            pct() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null" || x == "nan") print "n/a"; else printf "%.1f", 100 * x }'; }
            if [ "$c" = mean ] || [ "$c" = all ]; then
                printf '| **%s** | %s | %s | %s | %s | %s | | | |\n' "$c" "$(pct "${f[3]}")" "$(pct "${f[6]}")" "$(pct "${f[9]}")" "$(pct "${f[13]:-}")" "$(( $(date +%s) - $(cat "$OUT/start.txt") ))"
                continue
            fi
            local k=$c; [ "$FORMAT" = mtd ] && k=mtd
            if [ -f "$(tune_of "$k")/tune.json" ]; then
                ch=$(jq -r '"\(.choice.strategy) | \(.choice.layers) | \(.choice.image_score)"' "$(tune_of "$k")/tune.json")
            else ch="recipe default | recipe default | recipe default"; fi
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$(pct "${f[3]}")" "$(pct "${f[6]}")" "$(pct "${f[9]}")" "$(pct "${f[13]:-}")" "$(cat "$OUT/runs/$k.wall" 2>/dev/null || echo '?')" "$ch"
        done
        echo
        if [ -n "$TUNE_OPT" ]; then
            echo "Knobs: chosen per class by recipes/tune.sh on synthetic validation only (held-out training"
            echo "normals, half given a glad-synth anomaly; the mean of validation I-AUROC, P-AUROC, AUPRO);"
            echo "I-F1 at the image threshold calibrated on that validation set (target FPR 1 %). The test"
            echo "split was used only for this table. Per class: runs/<class>/.../tune/tune.md."
        else
            echo "Knobs: the recipes' fixed defaults (--no-tune); no calibrated threshold."
        fi
        echo "Options: ${pass[*]:-(defaults)}. The wall time of the mean row is the whole run's."
        [ ${#missing[@]} -eq 0 ] || echo "FAILED classes (no scored stream): ${missing[*]}"
    } > "$OUT/table.md"
    cat "$OUT/table.md"
    [ ${#missing[@]} -eq 0 ]
}

case "$MODE" in
class) run_class "$IDX"; exit $? ;;
merge) merge; exit $? ;;
esac

K=${#CLS[@]}
if [ "$SLURM" = 1 ]; then
    cat > "$OUT/class.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=glad-bench
#SBATCH --array=0-$((K - 1))
#SBATCH --cpus-per-task=$CPUS
#SBATCH --time=$TIME
#SBATCH --output=$OUT/class-%a.log
${PART:+#SBATCH --partition=$PART}
set -euo pipefail
export OMP_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-$CPUS}
bash "$ROOT/recipes/benchmark.sh" --out "$OUT" --run-class "\$SLURM_ARRAY_TASK_ID"
SB
    cat > "$OUT/merge.sbatch" <<SB
#!/bin/bash
#SBATCH --job-name=glad-bench-merge
#SBATCH --time=00:20:00
#SBATCH --output=$OUT/merge.log
${PART:+#SBATCH --partition=$PART}
set -euo pipefail
bash "$ROOT/recipes/benchmark.sh" --out "$OUT" --merge
SB
    if [ "$DRY" = 1 ]; then cat "$OUT/class.sbatch" "$OUT/merge.sbatch"; exit 0; fi
    command -v sbatch >/dev/null || { echo "benchmark.sh: sbatch not found (use --dry-run to see the scripts)" >&2; exit 1; }
    array=$(sbatch --parsable "$OUT/class.sbatch")
    merge=$(sbatch --parsable --dependency=afterany:"$array" "$OUT/merge.sbatch")
    echo "array job $array ($K classes), merge job $merge; the table will be $OUT/table.md"
    exit 0
fi
if [ "$JOBS" -gt 1 ]; then
    command -v parallel >/dev/null || { echo "benchmark.sh: GNU parallel is not installed (apt-get install parallel)" >&2; exit 1; }
    rc=0
    seq 0 $((K - 1)) | parallel --will-cite -j "$JOBS" bash "$ROOT/recipes/benchmark.sh" --out "$OUT" --run-class {} || rc=$?
else
    rc=0
    for i in $(seq 0 $((K - 1))); do run_class "$i" || rc=$?; done
fi
merge || rc=1
exit $rc
