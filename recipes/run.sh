#!/bin/bash
# run.sh - the main job: train -> synth -> denoise -> features -> score -> auroc
# for every class of a dataset, then one metric table. With no arguments it
# runs on the built-in demo dataset (generated on first use, no download).
#
#   recipes/run.sh [--data DIR] [--format mvtec|mpdd|visa|btad|mtd] [--classes LIST]
#                  [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                  [--backbone auto|unet|mobilenetv2]
#
# Feature backbone (auto): MobileNetV2 when its .tflite weights are in
# $GLAD_WEIGHTS or datasets/weights/ (datasets/weights/fetch.sh), else the
# built-in unet backbone (the trained model's encoder, levels 0 and 1).
#
# Results: OUT/<class>/{train,test,recon,scored}.msgpack, OUT/<class>/model,
# OUT/table.md, OUT/table.json, OUT/pictures/ (when glad-view is built).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DATA="" FORMAT=mvtec CLASSES="" OUT="$ROOT/results/main" SIZE=64 STEPS=300 BATCH=8 SEED=1
THRESHOLD=0.05 MIN_STEP=100
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$2; shift 2 ;;
    --format) FORMAT=$2; shift 2 ;;
    --classes) CLASSES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --threshold) THRESHOLD=$2; shift 2 ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$DATA" ]; then
    DATA="$ROOT/results/demo-data"
    if [ ! -f "$DATA/.complete" ]; then
        echo "run.sh: generating the built-in demo dataset in $DATA" >&2
        rm -rf "$DATA"
        glad-synth --make-dataset "$DATA" --size "$SIZE"
        touch "$DATA/.complete"
    fi
    CLASSES=${CLASSES:-fabric,pill}
fi
if [ -z "$CLASSES" ]; then
    CLASSES=$(cd "$DATA" && for d in */; do [ -d "$d/train" ] || [ -d "$d/test" ] && printf '%s,' "${d%/}"; done)
    CLASSES=${CLASSES%,}
fi
mkdir -p "$OUT"
FEAT_BACKBONE=$(feat_backbone) || exit 2
echo "run.sh: feature backbone: $FEAT_BACKBONE" >&2
start=$(date +%s)
scored=()
for c in ${CLASSES//,/ }; do
    d="$OUT/$c"
    mkdir -p "$d"
    echo "run.sh: [$c] encode + synthesise the training set" >&2
    glad-encode --format "$FORMAT" "$DATA" --class "$c" --split train --size "$SIZE" --channels 3 \
        | glad-synth --seed "$SEED" > "$d/train.msgpack"
    echo "run.sh: [$c] train ($STEPS steps, ATP loss)" >&2
    glad-train --preset tiny --loss atp --steps "$STEPS" --batch "$BATCH" --lr 1e-3 --seed "$SEED" \
        --log "$d/loss.csv" -o "$d/model" "$d/train.msgpack"
    echo "run.sh: [$c] reconstruct the test set (GLAD: ADS + SAFF), features, scores" >&2
    glad-encode --format "$FORMAT" "$DATA" --class "$c" --split test --size "$SIZE" --channels 3 > "$d/test.msgpack"
    glad-denoise --model "$d/model" --steps 250 --skip 25 --ads --saff --threshold "$THRESHOLD" --min-step "$MIN_STEP" \
        --seed "$SEED" "$d/test.msgpack" > "$d/recon.msgpack"
    # the encoder's two finest levels; GLAD's top-250 mean is 0.1 % of a 512x512 map,
    # at 64x64 the image score takes the top 50 (1.2 %)
    glad-features $(feat_opts "$d/model" "--layers 0,1") "$d/recon.msgpack" \
        | glad-score --preset glad --image-score topk-mean:50 > "$d/scored.msgpack"
    scored+=("$d/scored.msgpack")
done
glad-auroc --format json "${scored[@]}" > "$OUT/table.json"
{ glad-auroc --format markdown "${scored[@]}"; echo; echo "feature backbone: $FEAT_BACKBONE"; } > "$OUT/table.md"
if command -v glad-view >/dev/null 2>&1; then
    cat "${scored[@]}" | glad-view --out "$OUT/pictures" >/dev/null 2>&1 || echo "run.sh: glad-view failed (pictures skipped)" >&2
fi
cat "$OUT/table.md"
echo
echo "run.sh: done in $(( $(date +%s) - start )) s; results in $OUT (feature backbone: $FEAT_BACKBONE)" >&2
