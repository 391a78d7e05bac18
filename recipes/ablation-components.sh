#!/bin/bash
# ablation-components.sh - GLAD's component table on one class: baseline fixed
# step / + ADS / + ATP / + ADS + ATP without SAFF / full (ADS + ATP + SAFF).
# Two models (DDPM and ATP loss) serve the five rows; every intermediate stream
# is cached by the hash of its command line and inputs, so reruns are cheap.
#
#   recipes/ablation-components.sh [--data DIR --format F] [--class C] [--out DIR]
#                                  [--size N] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2]
#                                  [--preset P] [--feat-layers LIST] [--image-score R] [--map-norm M]
#                                  [--tile N [--overlap P]] [--tune]
#
# Knobs as in run.sh; without them the recipe is unchanged. --tune runs
# recipes/tune.sh (OUT/tune/) and takes its feature layers and image score
# only: the denoising strategies and the models are what this table compares.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
KNOBS=1
recipe_args "$@"
if [ "$TUNE" = 1 ]; then tune_class "$OUT/tune"; fi
ENC="glad-encode --format $FORMAT $DATA --class $CLASS $(size_opt) --channels $CHANNELS"
DEN="--steps 250 --skip 25 --seed $SEED"
ADS="--ads --threshold 0.05 --min-step 100"
cached "$OUT/train.msgpack" "$ENC --split train$(tile_split)"
cached "$OUT/train-atp.msgpack" "glad-synth --seed $SEED $OUT/train.msgpack"
cached "$OUT/test.msgpack" "$ENC --split test$(tile_split)"
cached "$OUT/ddpm.model" "glad-train --preset $PRESET --loss ddpm --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"
cached "$OUT/atp.model" "glad-train --preset $PRESET --loss atp --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train-atp.msgpack"
row() {   # row NAME MODEL DENOISE-OPTIONS
    local name=$1 model=$2 opts=$3 tag
    tag=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-')
    cached "$OUT/$tag.scored.msgpack" \
        "glad-denoise --model $model $DEN $opts $OUT/test.msgpack | glad-features $(feat_opts $model) | glad-score --preset glad$(score_opts)$(tile_merge topk-mean:250)"
    metrics_row "$name" "$OUT/$tag.scored.msgpack"
}
{
    md_header "$CLASS: components"
    row "baseline (fixed step)" "$OUT/ddpm.model" ""
    row "+ ADS" "$OUT/ddpm.model" "$ADS --saff"
    row "+ ATP" "$OUT/atp.model" ""
    row "+ ADS + ATP, no SAFF" "$OUT/atp.model" "$ADS"
    row "full (ADS + ATP + SAFF)" "$OUT/atp.model" "$ADS --saff"
    if [ "$TUNE" = 1 ]; then echo; tune_md_header; tune_md_row "$CLASS" "$OUT/tune"; fi
} | tee "$OUT/table.md"
