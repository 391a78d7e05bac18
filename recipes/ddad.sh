#!/bin/bash
# ddad.sh - the DDAD pipeline: DDPM training, conditioned reconstruction
# (w 3, T' 250, skip 25, eta 1, DDAD's timestep spacing), same-position
# feature + pixel distance (the ddad preset).
#
#   recipes/ddad.sh [--data DIR --format F] [--class C] [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
recipe_args "$@"
ddpm_setup
cached "$OUT/scored.msgpack" "glad-denoise --model $OUT/ddpm.model --steps 250 --skip 25 --eta 1 --cond-w 3 --compat ddad --seed $SEED $OUT/test.msgpack | glad-features $(feat_opts $OUT/ddpm.model) | glad-score --preset ddad"
{ md_header "$CLASS: DDAD"; metrics_row "DDAD (w 3)" "$OUT/scored.msgpack"; } | tee "$OUT/table.md"
