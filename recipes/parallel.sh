#!/bin/bash
# parallel.sh - the evaluation pipeline (denoise -> features -> score) over N
# shards with GNU parallel, on local cores or on --sshlogin hosts (which need
# the glad programs on their PATH and the same paths), merged by glad-auroc.
# The merged table equals the unsharded one: noise depends on the seed and
# the record id only.
#
#   recipes/parallel.sh --model MODEL --test TEST.msgpack [--shards N] [--out DIR]
#                       [--sshlogin HOSTS] [--backbone auto|unet|mobilenetv2]
#                       [-- GLAD-DENOISE-OPTIONS...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MODEL="" TEST="" N=2 OUT="$ROOT/results/parallel" SSH=""
while [ $# -gt 0 ]; do
    case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --test) TEST=$2; shift 2 ;;
    --shards) N=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --sshlogin) SSH=$2; shift 2 ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "parallel.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$MODEL" ] && [ -n "$TEST" ] || { echo "parallel.sh: --model and --test are required" >&2; exit 2; }
command -v parallel >/dev/null || { echo "parallel.sh: GNU parallel is not installed (apt-get install parallel)" >&2; exit 1; }
mkdir -p "$OUT"
DEN_OPTS=("$@")
[ ${#DEN_OPTS[@]} -eq 0 ] && DEN_OPTS=(--steps 250 --skip 25 --ads --saff --threshold 0.05 --min-step 100)
FEATS=$(feat_opts "$MODEL")
export MODEL TEST OUT N FEATS
# each job: one shard of the test stream through the whole evaluation chain
job() {
    glad-denoise --model "$MODEL" --shard "$1/$N" "${@:2}" "$TEST" \
        | glad-features $FEATS | glad-score --preset glad > "$OUT/shard$1.msgpack"
}
export -f job
SSHARGS=()
[ -n "$SSH" ] && SSHARGS=(--sshlogin "$SSH" --env job --env MODEL --env TEST --env OUT --env N --env FEATS)
seq 0 $((N - 1)) | parallel --will-cite --halt now,fail=1 -j "$N" "${SSHARGS[@]}" job {} "${DEN_OPTS[@]}"
glad-auroc "$OUT"/shard*.msgpack | tee "$OUT/table.txt"
