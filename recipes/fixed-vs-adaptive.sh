#!/bin/bash
# fixed-vs-adaptive.sh - GLAD's steps table: fixed denoising from T' = 350,
# 550, 750 against adaptive steps (ADS + SAFF), with the ATP model.
#
#   recipes/fixed-vs-adaptive.sh [--data DIR --format F] [--class C] [--out DIR]
#                                [--size N] [--steps N] [--batch N] [--seed S]
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
cached "$OUT/train-atp.msgpack" "$ENC --split train$(tile_split) | glad-synth --seed $SEED"
cached "$OUT/test.msgpack" "$ENC --split test$(tile_split)"
cached "$OUT/atp.model" "glad-train --preset $PRESET --loss atp --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train-atp.msgpack"
row() {
    local name=$1 opts=$2 tag
    tag=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-')
    cached "$OUT/$tag.scored.msgpack" \
        "glad-denoise --model $OUT/atp.model --seed $SEED $opts $OUT/test.msgpack | glad-features $(feat_opts $OUT/atp.model) | glad-score --preset glad$(score_opts)$(tile_merge topk-mean:250)"
    metrics_row "$name" "$OUT/$tag.scored.msgpack"
}
{
    md_header "$CLASS: denoising steps"
    for t in 350 550 750; do row "fixed $t" "--steps $t --inference-steps 10"; done
    row "adaptive (ADS + SAFF)" "--steps 750 --inference-steps 25 --ads --saff --threshold 0.05 --min-step 100"
    if [ "$TUNE" = 1 ]; then echo; tune_md_header; tune_md_row "$CLASS" "$OUT/tune"; fi
} | tee "$OUT/table.md"
