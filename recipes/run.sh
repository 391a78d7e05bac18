#!/bin/bash
# run.sh - the main job: train -> synth -> denoise -> features -> score -> auroc
# for every class of a dataset, then one metric table. With no arguments it
# runs on the built-in demo dataset (generated on first use, no download).
#
#   recipes/run.sh [--data DIR] [--format mvtec|mpdd|visa|btad|mtd] [--classes LIST]
#                  [--denoise 'GLAD-DENOISE OPTIONS'] [--show-defaults]
#                  [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                  [--backbone auto|unet|mobilenetv2] [--preset P] [--feat-layers LIST]
#                  [--image-score R] [--map-norm M] [--tile N [--overlap P]] [--tune]
#                  [--vit WEIGHTS --dino-ft-epochs N|auto [--dino-ft-max N]]
#                  [--precision f32|bf16] [--standardize S] [--feat-also-size LIST]
#
# Defaults: the RUN_* values below, printed by --show-defaults as the "chosen:"
# line of datasets/demo/tuning.md (recipes/demo-tune.sh chose them on the
# demo's synthetic validation, training split only; tests/cli/recipes.sh checks
# that they agree). The layers apply to the unet backbone; MobileNetV2 keeps
# glad-features' blocks 5,12 (not tuned here: mtd.sh and --tune tune them).
# Knobs (without them the recipe is unchanged): --denoise (glad-denoise's
# strategy options), --threshold T (ADS with tau T instead of the default
# strategy), --preset (glad-train preset, default tiny), --feat-layers,
# --image-score, --map-norm (glad-score's), --tile N --overlap P (train on N x N
# tiles of the images at their native size, or at --size; score every tile and
# merge the maps per image), --standardize S (glad-features --standardize: each
# image, bank and test alike, to standard deviation S before the feature
# backbone; not tuned; tanh:S or open:S: its tails squashed or left instead of
# clipped, glad-features --standardize-tail), --feat-also-size LIST (MobileNetV2 features: the layers
# at these input sides too, glad-features --also-size, maps summed; not tuned), --tune (per class, recipes/tune.sh chooses the
# denoising strategy, layers, image score and map normalisation on synthetic validation and
# calibrates the decision threshold; its model is used; OUT/images.csv lists
# the per-image decisions, OUT/<class>/decisions.txt the figures at the threshold). Knobs given explicitly are not tuned.
#
# --precision bf16 (issue #19; CPUs with AVX512_BF16): glad-train trains in
# mixed precision, glad-denoise and glad-features compute in bf16 (f32, the
# default, passes nothing). With --tune, tune.sh's validation runs and its
# model stay f32; the test's denoising and features take the precision.
#
# GLAD's DINO fine-tuning (issue #21): --vit WEIGHTS (a DINO ViT, safetensors)
# scores with that ViT fine-tuned per class for --dino-ft-epochs N (glad-adapt
# -m dino-ft, 0 = the ViT as given) on glad-denoise reconstructions of the
# training split (same strategy as the test); "auto" (needs --tune) chooses N in
# 0..--dino-ft-max (default 15, GLAD's) on tune.sh's synthetic validation split,
# never the test set, and calibrates the threshold again with those features.
# OUT/<class>/dino/ holds the weights and val.tsv; the table lists the choice.
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
# chosen by recipes/demo-tune.sh (datasets/demo/tuning.md)
RUN_DENOISE="--steps 250 --skip 25 --ads --saff --threshold 0.05 --min-step 100"
RUN_LAYERS=0,1 RUN_IMAGE_SCORE=topk-mean:50
DENOISE=$RUN_DENOISE THRESHOLD="" MIN_STEP=100
VIT="" DINO_FT=0 DINO_MAX=15 PRECISION=f32
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$2; shift 2 ;;
    --format) FORMAT=$2; shift 2 ;;
    --classes) CLASSES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --size) SIZE=$2; SIZE_GIVEN=1; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --threshold) THRESHOLD=$2; shift 2 ;;
    --denoise) DENOISE=$2; shift 2 ;;
    --show-defaults) echo "chosen: --denoise '$RUN_DENOISE' --feat-layers $RUN_LAYERS --image-score $RUN_IMAGE_SCORE"; exit 0 ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    --vit) VIT=$2; shift 2 ;;
    --dino-ft-epochs) DINO_FT=$2; shift 2 ;;
    --dino-ft-max) DINO_MAX=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *)  k=0; KNOBS=1; knob_arg "$1" "${2:-}" || k=$?
        case $k in 1) shift 2 ;; 2) shift ;; *) echo "run.sh: unknown option $1" >&2; exit 2 ;; esac ;;
    esac
done
knob_check
case "$PRECISION" in f32) PREC=() ;; bf16) PREC=(--precision bf16) ;; *) echo "run.sh: --precision takes f32 or bf16" >&2; exit 2 ;; esac
# --threshold T: GLAD's adaptive steps with tau T (the former option), else the strategy
[ -z "$THRESHOLD" ] || DENOISE="--steps 250 --skip 25 --ads --saff --threshold $THRESHOLD --min-step $MIN_STEP"
[ "$TUNE" = 0 ] || [ "$DENOISE" = "$RUN_DENOISE" ] || { echo "run.sh: --denoise/--threshold and --tune: tune.sh chooses the strategy" >&2; exit 2; }
if [ -n "$VIT" ]; then   # GLAD's DINO fine-tuning (issue #21)
    case "$DINO_FT" in auto) [ "$TUNE" = 1 ] || { echo "run.sh: --dino-ft-epochs auto needs --tune (its validation split)" >&2; exit 2; } ;;
    ''|*[!0-9]*) echo "run.sh: --dino-ft-epochs takes a number or 'auto'" >&2; exit 2 ;; esac
    case "$DINO_MAX" in ''|*[!0-9]*|0) echo "run.sh: --dino-ft-max takes a positive number" >&2; exit 2 ;; esac
    [ "$TILE" = 0 ] || { echo "run.sh: --vit does not combine with --tile" >&2; exit 2; }
    DINO_SIZE=$SIZE
elif [ "$DINO_FT" != 0 ]; then echo "run.sh: --dino-ft-epochs needs --vit WEIGHTS" >&2; exit 2; fi
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
scored=() tuned=()
declare -A THRS   # each tuned class's thresholds file
for c in ${CLASSES//,/ }; do
    d="$OUT/$c"
    mkdir -p "$d"
    model="$d/model" thr=()
    read -r -a den <<< "$DENOISE"
    if [ "$TUNE" = 1 ]; then
        echo "run.sh: [$c] tune.sh: hold out training normals, choose the knobs on synthetic validation" >&2
        (bash "$ROOT/recipes/tune.sh" --data "$DATA" --format "$FORMAT" --class "$c" $(size_opt) --steps "$STEPS" \
            --batch "$BATCH" --seed "$SEED" --backbone "$FEAT_BACKBONE" $(knob_args) --out "$d/tune") >&2
        fl=$FEAT_LAYERS is=$IMAGE_SCORE mn=$MAP_NORM
        tune_load "$d/tune"
        model=$TUNE_MODEL
        # decisions per record (a tile's decision would not be its image's: with
        # --tile they are taken from the merged scores by glad-auroc -t below)
        [ "$TILE" != 0 ] || thr=(--threshold-file "$TUNE_THRESHOLDS")
        read -r -a den <<< "$TUNE_DENOISE"
        tuned+=("$c")
    else
        echo "run.sh: [$c] encode + synthesise the training set" >&2
        glad-encode --format "$FORMAT" "$DATA" --class "$c" --split train $(size_opt) --channels 3 \
            | tile_split_f | glad-synth --seed "$SEED" > "$d/train.msgpack"
        echo "run.sh: [$c] train ($STEPS steps, ATP loss)" >&2
        glad-train --preset "$PRESET" --loss atp --steps "$STEPS" --batch "$BATCH" --lr 1e-3 --seed "$SEED" "${PREC[@]}" \
            --log "$d/loss.csv" -o "$d/model" "$d/train.msgpack"
    fi
    echo "run.sh: [$c] reconstruct the test set (${den[*]}), features, scores" >&2
    glad-encode --format "$FORMAT" "$DATA" --class "$c" --split test $(size_opt) --channels 3 | tile_split_f > "$d/test.msgpack"
    # the test stream's history says how the knobs were chosen
    [ "$TUNE" = 0 ] || tune_note "$d/test.msgpack" "$d/test.msgpack"
    glad-denoise --model "$model" "${den[@]}" --seed "$SEED" "${PREC[@]}" "$d/test.msgpack" > "$d/recon.msgpack"
    # the encoder's two finest levels; GLAD's top-250 mean is 0.1 % of a 512x512 map,
    # at 64x64 the image score takes the top 50 (1.2 %)
    feat=($(feat_opts "$model" "--layers $RUN_LAYERS"))
    if [ -n "$VIT" ]; then   # GLAD's DINO fine-tuning (lib.sh dino_ft)
        if [ "$TUNE" = 1 ]; then tr=$d/tune/train.msgpack val=$d/tune/val.msgpack; else tr=$d/train.msgpack val=""; fi
        e=$(dino_ft "$d" "$model" "$tr" "$val" "$DINO_FT" "$DINO_MAX" "${den[*]}" "--preset glad --image-score ${IMAGE_SCORE:-$RUN_IMAGE_SCORE}$(norm_opts)")
        feat=(--backbone vit --size "$DINO_SIZE" --weights "$d/dino/feat$e.safetensors")
        echo "$e" > "$d/dino/epochs"
        [ "$TUNE" = 0 ] || { TUNE_THRESHOLDS=$d/dino/thresholds.json; thr=(--threshold-file "$TUNE_THRESHOLDS"); }
    fi
    glad-features "${feat[@]}" "${PREC[@]}" "$d/recon.msgpack" \
        | glad-score --preset glad --image-score "${IMAGE_SCORE:-$RUN_IMAGE_SCORE}" $(norm_opts) "${thr[@]}" \
        | tile_merge_f "$RUN_IMAGE_SCORE" > "$d/scored.msgpack"
    if [ "$TUNE" = 1 ]; then
        glad-auroc --by none -t "$TUNE_THRESHOLDS" --per-image "$d/images.csv" "$d/scored.msgpack" > "$d/decisions.txt"
        THRS[$c]=$TUNE_THRESHOLDS
        FEAT_LAYERS=$fl IMAGE_SCORE=$is MAP_NORM=$mn   # the next class is tuned afresh
    fi
    scored+=("$d/scored.msgpack")
done
glad-auroc --format json "${scored[@]}" > "$OUT/table.json"
# the per-image decisions of every class (at its own calibrated threshold)
[ "$TUNE" = 0 ] || for c in "${tuned[@]}"; do
    if [ "$c" = "${tuned[0]}" ]; then cat "$OUT/$c/images.csv"; else tail -n +2 "$OUT/$c/images.csv"; fi
done > "$OUT/images.csv"
{
    glad-auroc --format markdown "${scored[@]}"
    echo
    echo "feature backbone: $FEAT_BACKBONE"
    [ "$PRECISION" = f32 ] || { echo; echo "precision: $PRECISION (glad-train mixed precision, glad-denoise and glad-features in $PRECISION)"; }
    if [ -n "$VIT" ]; then
        echo
        echo "features: the ViT $VIT fine-tuned per class (GLAD's DINO fine-tuning), epochs:$(for c in ${CLASSES//,/ }; do printf ' %s %s' "$c" "$(cat "$OUT/$c/dino/epochs")"; done)$([ "$DINO_FT" = auto ] && echo " (chosen on synthetic validation, 0..$DINO_MAX: OUT/<class>/dino/val.tsv)")"
    fi
    if [ "$TUNE" = 1 ]; then
        echo
        tune_md_header
        for c in "${tuned[@]}"; do tune_md_row "$c" "$OUT/$c/tune"; done
        # each class at its own threshold (tune.sh's, or the fine-tuned ViT's)
        echo
        decision_md_header
        for c in "${tuned[@]}"; do decision_md_row "$c" "$OUT/$c/scored.msgpack" "${THRS[$c]}"; done
        echo
        echo "Thresholds: glad-auroc --calibrate on each class's synthetic validation (tune.sh's; with a fine-tuned ViT, again with its features), target FPR 1 %; the validation figures at each in its thresholds file (OUT/<class>/tune/ or dino/thresholds.json)."
    fi
} > "$OUT/table.md"
if command -v glad-view >/dev/null 2>&1; then
    cat "${scored[@]}" | glad-view --out "$OUT/pictures" >/dev/null 2>&1 || echo "run.sh: glad-view failed (pictures skipped)" >&2
fi
cat "$OUT/table.md"
echo
echo "run.sh: done in $(( $(date +%s) - start )) s; results in $OUT (feature backbone: $FEAT_BACKBONE)" >&2
