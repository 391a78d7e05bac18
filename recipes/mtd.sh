#!/bin/bash
# mtd.sh - the Magnetic Tile Defect dataset with the split list the project
# ships (datasets/mtd/split.txt): grey tiles, one model, the GLAD pipeline.
#
#   recipes/mtd.sh --data MTD_ROOT [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2] [--split-file F]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SPLIT="$ROOT/datasets/mtd/split.txt"
args=() have_data=0
while [ $# -gt 0 ]; do
    case "$1" in
    --split-file) SPLIT=$2; shift 2 ;;
    --data) have_data=1; args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done
[ "$have_data" = 1 ] || { echo "mtd.sh: --data MTD_ROOT (the folder with MT_*/Imgs) is required" >&2; exit 2; }
CHANNELS=1
recipe_args "${args[@]}" --format mtd
ENC="glad-encode --format mtd $DATA --split-file $SPLIT --size $SIZE --channels 1"
cached "$OUT/train.msgpack" "$ENC --split train | glad-synth --seed $SEED --fg none"
cached "$OUT/test.msgpack" "$ENC --split test"
cached "$OUT/model" "glad-train --preset tiny --loss atp --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"
cached "$OUT/scored.msgpack" "glad-denoise --model $OUT/model --steps 250 --skip 25 --ads --saff --threshold 0.05 --min-step 100 --seed $SEED $OUT/test.msgpack | glad-features $(feat_opts $OUT/model) | glad-score --preset glad"
{ md_header "MTD"; metrics_row "GLAD ($FEAT_BACKBONE features)" "$OUT/scored.msgpack"; } | tee "$OUT/table.md"
glad-auroc --by defect "$OUT/scored.msgpack" > "$OUT/by-defect.txt"
