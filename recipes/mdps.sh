#!/bin/bash
# mdps.sh - the MDPS pipeline: DDPM training, a mask pass then masked,
# guided posterior samples averaged (eta 1, skip 20), MDPS scoring preset.
#
#   recipes/mdps.sh [--data DIR --format F] [--class C] [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
recipe_args "$@"
ddpm_setup
cached "$OUT/scored.msgpack" "glad-denoise --model $OUT/ddpm.model --mdps --samples 3 --mask-steps 200 --mask-skip 20 --mask-threshold 0.15 --steps 200 --skip 20 --guidance 1 --seed $SEED $OUT/test.msgpack | glad-features $(feat_opts $OUT/ddpm.model) | glad-score --preset mdps"
{ md_header "$CLASS: MDPS"; metrics_row "MDPS (3 samples)" "$OUT/scored.msgpack"; } | tee "$OUT/table.md"
