#!/bin/bash
# tune.sh - choose the knobs on synthetic validation, never on the test set.
# Holds out a seeded fraction of the training normals, trains the model on the
# rest (GLAD: glad-synth + ATP loss), makes a validation set of the held-out
# normals, half of them kept normal (label 0), the other half given a glad-synth
# anomaly (label 1, its mask), and chooses by validation metrics only: the denoising strategy (fixed
# T' or ADS tau / min step), the feature layers and the image score. Each
# strategy reconstructs the validation set once; features are computed once per
# strategy (all candidate layers) and rescored for every layer set and image
# score. The decision threshold is calibrated on the chosen validation run.
#
#   recipes/tune.sh [--data DIR --format F] [--class C] [--out DIR] [--size N]
#                   [--steps N] [--batch N] [--seed S] [--channels 1|3]
#                   [--backbone auto|unet|mobilenetv2] [--preset P]
#                   [--feat-layers LIST] [--image-score R] [--tile N [--overlap P]]
#                   [--holdout FRAC] [--min-holdout N] [--split-file F] [--fg M]
#                   [--grid full|quick] [--peek] [--bank] [--bank-mode M]
#                   [--bank-subsample F] [--val-family F] [--no-recon]
#                   [--folds K] [--fold J] [--map-norm M] [--global-weight W]
#                   [--standardize S] [--feat-also-size LIST] [--bank-norm M]
#
#   --feat-layers, --image-score, --map-norm   fix that knob (it is then not tuned)
#   --standardize S    glad-features --standardize S on every image the features
#                      see (bank, validation; not tuned: mtd-tune.sh's +std:S
#                      candidates compare values; tune.json records it); T:S with
#                      T tanh or open: glad-features --standardize-tail T too;
#                      T,U:S (clip,tanh:1.2): the features under each tail, the
#                      pixel-wise maximum of their maps (--standardize-tail T,U)
#   --feat-also-size LIST  glad-features --also-size LIST likewise (MobileNetV2's
#                      layers at these input sides too, maps summed; not tuned:
#                      mtd-tune.sh's +also:LIST candidates; tune.json records it)
#   --bank-norm M      glad-score --bank-norm M (none, ratio, diff) wherever a bank
#                      scores, every bank made with glad-bank --radius (not tuned:
#                      mtd-tune.sh's +bn:M candidates; tune.json records it)
#   --tile N --overlap P           train on N x N tiles, score at the native size
#                                  (images at their native size unless --size)
#   --holdout FRAC     fraction of the training normals held out (default 0.15;
#                      at least --min-holdout, default 4, images when the
#                      training set allows): half of them stay normal, the
#                      other half get a glad-synth anomaly
#   --fg M             glad-synth foreground mode of the training and validation
#                      anomalies (default auto; mtd.sh uses none)
#   --val-family F     the validation anomalies' family: draem (default: glad-synth's
#                      GLAD/DRAEM synthesis, the one the ATP training uses), or
#                      cutpaste / scar / cutpaste-mix (glad-synth --family:
#                      CutPaste's patch, scar or either of the image itself, unseen in
#                      training, so a reconstruction is not rewarded for having
#                      learnt to repair the validation anomalies), or crack / hole /
#                      stain / defect-mix (drawn thin dark cracks, small dark holes,
#                      faint stains: small, low-contrast, also unseen in training) or
#                      uneven (a broad faint change of a large part of the image) or
#                      edge (a dark ragged chip out of the object's edge); a
#                      comma-separated list (cutpaste-mix,defect-mix) splits the
#                      anomalous half evenly between the families, each family's
#                      anomalies named after it (glad-synth --defect), and reports the
#                      chosen row per family (val-family.tsv, tune.md, tune.json's
#                      family_metrics; not used for the choice)
#   --grid quick       two strategies, two layer sets, two image scores (tests)
#   --bank             then compare, on the chosen row, scoring against a memory
#                      bank of the training images' features (glad-bank, random
#                      --bank-subsample F of the positions, default 1) in each
#                      --bank-mode (replace, union, add) with none; a fixed
#                      --bank-mode M compares M with none only. A later mode must
#                      beat the earlier ones by more than 0.001 of the criterion
#                      and, with --folds, by more than the standard error of the
#                      per-fold differences (closer is a tie: the earlier, cheaper
#                      one is kept; kept_row in lib.sh)
#   --no-recon         choose for the memory bank alone (MobileNetV2 features): no
#                      model is trained and nothing reconstructed; each validation
#                      image's own features are scored against a bank of the other
#                      training normals' features (glad-score --bank-mode replace),
#                      the grid being the feature layers (blocks of stride 8 and 16:
#                      a bank of stride-4 blocks costs 16 times as much) and the
#                      image scores -- one nearest-neighbour search per layer set,
#                      rescored per image score (glad-score --rescore). With
#                      --size native the images keep their own size and aspect
#                      ratio, features too (no squashing into squares); --size
#                      native:F scales them by F first (glad-encode --scale)
#   --folds K          K-fold validation: the hold-out shards
#                      0..K-1 of the N above each held out in turn (fold J: shard
#                      J/N is the validation, the other N-1 shards the bank), the
#                      whole grid scored on every fold and each row's criterion
#                      averaged over the folds (val-cv-grid.tsv; the per-fold
#                      criteria too): the choice then rests on K times as many
#                      validation images, not on one shard's luck. Fold 0 is OUT
#                      itself (the single-fold run), fold J OUT/fold-J; the
#                      thresholds are calibrated on every fold's chosen run. K <= N;
#                      default 1 (one fold, shard 0). With a model (no --no-recon)
#                      each fold trains its own on its other shards (K trainings,
#                      K times the reconstructions), --bank's stage 2 scores every
#                      fold against its own model's bank, and the recipes get fold
#                      0's model (OUT/model). With --no-recon each training
#                      shard's features are computed once, in OUT
#                      (shard-S-of-N.feat.msgpack), and every fold's bank is made of
#                      the other shards' (the same vectors, in the same order, as
#                      from its bank-train.msgpack)
#   --fold J           hold out shard J instead of 0 (what --folds runs per fold)
#   (stage 3)          the chosen row's maps less their own quantile (glad-score
#                      --map-norm none, quantile:0.1, quantile:0.5; the maps rescored,
#                      on every fold): a later one is kept only when it beats the
#                      earlier by more than 0.001 of the criterion and by more than
#                      the standard error of the per-fold differences (val-norm.tsv).
#                      A fixed --map-norm M is applied after the grid, not tuned;
#                      with --tile the merged maps are normalised
#   (stage 4)          --no-recon, untiled: the image score plus W times the
#                      image's whole-image Gaussian distance (glad-bank --global 16:
#                      MobileNetV2's block 16 averaged over its positions,
#                      Mahalanobis distance in units of the training images' median;
#                      glad-score --global-weight W), W in 0, 0.01, 0.02, 0.05, 0.1,
#                      0.2, 0.5 (the thirteenth run's list in datasets/mtd/tuning.md),
#                      the chosen row's normalised maps rescored on every fold; as
#                      stage 3, a later weight is kept only when it beats the earlier
#                      by more than 0.001 of the criterion and the per-fold differences'
#                      standard error (val-global.tsv). The banks
#                      then hold block 16's Gaussian (every fold's, and the recipes')
#                      and the features block 16. A fixed --global-weight W is applied,
#                      not tuned; --global-weight 0 leaves the stage (and block 16) out
#   --peek             ALSO score the whole grid on the test split (peek.md) to
#                      report how the validation choice compares with the best
#                      choice by test metrics; nothing is chosen from it (the
#                      grid's rows are scored with the chosen stage 3 map
#                      normalisation and stage 4 weight, test-grid-staged.tsv,
#                      but without stage 2's bank, made for the chosen layers
#                      only; a last row scores the chosen line with all of them,
#                      as the recipes run it; test-grid.tsv has the rows bare)
#
# Outputs in OUT: model (trained on the non-held-out normals), val.msgpack,
# val-grid.tsv (every configuration's validation metrics), tune.json and tune.md
# (the choice, its validation figures, how it was chosen), thresholds.json
# (glad-auroc --calibrate on the chosen validation run, target FPR 1 %), and
# tune.env, sourced by the recipes (--tune): TUNE_MODEL, TUNE_DENOISE,
# TUNE_LAYERS, TUNE_IMAGE_SCORE, TUNE_MAP_NORM, TUNE_GLOBAL_WEIGHT, TUNE_THRESHOLDS, TUNE_NOTE (the history entry
# recipes/history-note.pl adds to the test stream before it is reconstructed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
HOLDOUT=0.15 MIN_HOLD=4 SPLIT_FILE="" FG=auto PEEK=0 VFAM=draem NO_RECON=0
KNOBS=1 args=() BANK_STAGE=0 FOLDS=1 FOLD=0 GLOBAL_FIX=""
# a fold's own run (--folds) gets these arguments without --out / --folds / --fold
CHILD=() a=("$@")
for ((i = 0; i < ${#a[@]}; i++)); do
    case "${a[i]}" in --out|--folds|--fold) i=$((i + 1)) ;; *) CHILD+=("${a[i]}") ;; esac
done
while [ $# -gt 0 ]; do
    case "$1" in
    --holdout) HOLDOUT=$2; shift 2 ;;
    --min-holdout) MIN_HOLD=$2; shift 2 ;;
    --split-file) SPLIT_FILE=$2; shift 2 ;;
    --fg) FG=$2; shift 2 ;;
    --val-family) VFAM=$2; shift 2 ;;
    --grid) args+=(--tune-grid "$2"); shift 2 ;;
    --peek) PEEK=1; shift ;;
    --bank) BANK_STAGE=1; shift ;;
    --no-recon) NO_RECON=1; shift ;;
    --folds) FOLDS=$2; shift 2 ;;
    --fold) FOLD=$2; shift 2 ;;
    --global-weight) GLOBAL_FIX=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done
recipe_args "${args[@]}"
command -v jq >/dev/null || { echo "tune.sh: jq is needed for tune.json (apt-get install jq)" >&2; exit 1; }
GRID=$TUNE_GRID
[ "$TUNE" = 0 ] || { echo "tune.sh: --tune is the recipes' option (tune.sh is what it runs)" >&2; exit 2; }
# knobs the user fixed are not tuned (a one-value grid); a fixed map normalisation
# applies after the grid, which is scored without it (tile_merge leaves it out)
FIX_LAYERS=$FEAT_LAYERS FEAT_LAYERS="" FIX_NORM=$MAP_NORM MAP_NORM=""
case "$GRID" in full|quick) ;; *) echo "tune.sh: --grid must be full or quick" >&2; exit 2 ;; esac
awk -v f="$HOLDOUT" 'BEGIN { exit !(f > 0 && f < 1) }' || { echo "tune.sh: --holdout must be in (0,1)" >&2; exit 2; }
[[ "$FOLDS" =~ ^[1-9][0-9]*$ ]] || { echo "tune.sh: --folds must be a positive integer" >&2; exit 2; }
[[ "$FOLD" =~ ^[0-9]+$ ]] || { echo "tune.sh: --fold must be a shard number (0, 1, ...)" >&2; exit 2; }
[ "$FOLDS" = 1 ] || [ "$FOLD" = 0 ] || { echo "tune.sh: --fold J is one fold's run; --folds K runs the folds 0..K-1 itself" >&2; exit 2; }
if [ "$NO_RECON" = 1 ]; then
    [ "$FEAT_BACKBONE" = mobilenetv2 ] || { echo "tune.sh: --no-recon scores against a memory bank of pretrained features: it needs MobileNetV2's (\$GLAD_WEIGHTS; the unet backbone's features are a trained model's)" >&2; exit 2; }
    case "$BANK_MODE" in ""|replace) ;; *) echo "tune.sh: --no-recon scores with the bank alone (--bank-mode replace), not $BANK_MODE" >&2; exit 2 ;; esac
    BANK_MODE=replace
fi
# stage 4's candidates: the weight of the whole-image Gaussian of block GLOBAL_L
# (0 first, so a tie keeps the score without it); the stage runs for the bank alone,
# untiled (glad-tile --merge drops a tile's score_global), unless --global-weight 0
GLOBAL_L=16 GWS=(0 0.01 0.02 0.05 0.1 0.2 0.5) GLOBAL_STAGE=0
if [ -n "$GLOBAL_FIX" ]; then
    awk -v w="$GLOBAL_FIX" 'BEGIN { exit !(w ~ /^[0-9]*\.?[0-9]+$/ && w + 0 <= 1e6) }' || { echo "tune.sh: --global-weight takes a number >= 0, not '$GLOBAL_FIX'" >&2; exit 2; }
    GLOBAL_FIX=$(awk -v w="$GLOBAL_FIX" 'BEGIN { print w + 0 }')   # .5 -> 0.5 (a JSON number)
    GWS=("$GLOBAL_FIX")
fi
if [ "$NO_RECON" = 1 ] && [ "$TILE" = 0 ]; then
    [ "${GWS[*]}" = 0 ] || GLOBAL_STAGE=1   # a fixed weight is normalised above (0.00 -> 0)
elif awk -v w="$GLOBAL_FIX" 'BEGIN { exit !(w + 0 > 0) }'; then
    echo "tune.sh: --global-weight needs --no-recon (the bank alone) and no --tile (a merged image's score has no whole-image Gaussian)" >&2; exit 2
fi
[ "$NATIVE" = 0 ] || [ "$TILE" != 0 ] || [ "$NO_RECON" = 1 ] || { echo "tune.sh: a model is trained on images of one size: --size native needs --tile N or --no-recon" >&2; exit 2; }
# the validation anomalies' glad-synth family (draem: the option left out, as before)
# (a comma-separated list: the anomalous half split evenly between the families,
# so the pooled pixel ranking mixes kinds of anomaly as a real test set does)
IFS=, read -r -a VFAMS <<< "$VFAM"
[ "${#VFAMS[@]}" -ge 1 ] || VFAMS=(draem)
VDESC="" VOPTS=()
for f in "${VFAMS[@]}"; do
    case "$f" in
    draem) VOPTS+=("") d="GLAD/DRAEM's family" ;;
    cutpaste|scar|cutpaste-mix) VOPTS+=(" --family $f") d="CutPaste's $f family" ;;
    crack|hole|stain|defect-mix|uneven|edge) VOPTS+=(" --family $f") d="drawn defects ($f family)" ;;
    *) echo "tune.sh: --val-family must be draem, cutpaste, scar, cutpaste-mix, crack, hole, stain, defect-mix, uneven or edge (or a comma-separated list of them)" >&2; exit 2 ;;
    esac
    VDESC+="${VDESC:+ / }$d"
done
# several families: each family's anomalies named after it (glad-synth --defect), so
# the chosen row can be reported per family (val-family.tsv); one family: as before
if [ "${#VFAMS[@]}" -gt 1 ]; then for j in "${!VFAMS[@]}"; do VOPTS[j]+=" --defect ${VFAMS[j]}"; done; fi
if [ "$VFAM" = draem ]; then VDESC="a glad-synth anomaly"      # the default's wording, as before
elif [ "${#VFAMS[@]}" = 1 ]; then VDESC="a glad-synth anomaly of $VDESC"
else VDESC="a glad-synth anomaly, the families in equal shares: $VDESC"; fi

# the encoder options of this dataset (MTD: the split list, no classes)
if [ "$FORMAT" = mtd ]; then
    ENC="glad-encode --format mtd $DATA ${SPLIT_FILE:+--split-file $SPLIT_FILE} $(size_opt) --channels $CHANNELS"
    NAME=mtd
else
    ENC="glad-encode --format $FORMAT $DATA --class $CLASS $(size_opt) --channels $CHANNELS"
    NAME=$CLASS
fi
VSEED=$((SEED + 1000))   # the validation anomalies' seed (not the training synthesis')

# --- hold-out: shard J (--fold, default 0) of N of the seeded shuffle; N from the
# fraction, lowered until the hold-out has at least MIN_HOLD images
cached "$OUT/all-train.msgpack" "$ENC --split train"
n=$(glad-info -s "$OUT/all-train.msgpack" | awk '/^# [0-9]+ records/ { print $2 }')
[ "$MIN_HOLD" -ge 2 ] || { echo "tune.sh: --min-holdout must be at least 2" >&2; exit 2; }
[ "${n:-0}" -ge 4 ] || { echo "tune.sh: $NAME has ${n:-0} training images: too few to hold some out" >&2; exit 1; }
N=$(awk -v f="$HOLDOUT" 'BEGIN { n = int(1 / f + 0.5); print (n < 2 ? 2 : n) }')
while [ "$N" -gt 2 ] && [ $(( (n + N - 1) / N )) -lt "$MIN_HOLD" ]; do N=$((N - 1)); done
[ "$FOLD" -lt "$N" ] || { echo "tune.sh: --fold $FOLD: the hold-out has shards 0..$((N - 1)) (--holdout $HOLDOUT, $n images)" >&2; exit 2; }
[ "$FOLDS" -le "$N" ] || { echo "tune.sh: --folds $FOLDS: the hold-out has $N shards (--holdout $HOLDOUT, $n images)" >&2; exit 2; }
# shard J's size: images i of the shuffle with i % N == J
NHOLD=$(( (n - FOLD + N - 1) / N ))
echo "tune.sh: [$NAME] $n training normals: $NHOLD held out (shard $FOLD/$N, seed $SEED), $((n - NHOLD)) for training" >&2
rest=""
for k in $(seq 0 $((N - 1))); do [ "$k" = "$FOLD" ] || rest+="$ENC --split train --seed $SEED --shard $k/$N; "; done
# the training stream (GLAD: with glad-synth's anomalies for ATP) or, with --no-recon,
# the clean normals the memory bank is made of
if [ "$NO_RECON" = 0 ]; then cached "$OUT/train.msgpack" "{ $rest}$(tile_split) | glad-synth --seed $SEED --fg $FG"
else cached "$OUT/bank-train.msgpack" "{ $rest}$(tile_split)"; fi
# validation: the held-out shard J/N is shards J/2N (kept normal) and (N+J)/2N
# (each image given a glad-synth anomaly): disjoint images, both classes present.
# With --tile the anomaly is put on the whole image, then it is split.
# With F families, the anomalous shard (N+J)/2N is the shards N + J + 2Nj of 2NF
# (j < F), family j on shard j (one family: (N+J)/2N itself, as before).
F=${#VFAMS[@]} vcmd="$ENC --split train --seed $SEED --shard $FOLD/$((2 * N))$(tile_split)"
for j in $(seq 0 $((F - 1))); do
    vcmd+="; $ENC --split train --seed $SEED --shard $((N + FOLD + 2 * N * j))/$((2 * N * F)) | glad-synth --as-test --p 1 --seed $VSEED --fg $FG${VOPTS[$j]}$(tile_split)"
done
cached "$OUT/val.msgpack" "$vcmd"
[ "$NO_RECON" = 1 ] || cached "$OUT/model" "glad-train --preset $PRESET --loss atp --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"

# --- the grid. Strategies: name|glad-denoise options (the first is the recipes'
# former default, so a tie keeps it)
STRATS=("ads-0.05-100|--steps 250 --skip 25 --ads --saff --threshold 0.05 --min-step 100"
        "fixed-250|--steps 250 --skip 25"
        "fixed-150|--steps 150 --skip 25"
        "fixed-350|--steps 350 --skip 25"
        "ads-0.1-50|--steps 250 --skip 25 --ads --saff --threshold 0.1 --min-step 50")
# MobileNetV2 blocks: 1-2 stride 4 (24 ch), 3-5 stride 8, 6-12 stride 16; "1,2,5"
# is the finest grid (thin cracks, small blowholes); "12" and "9,12" (stride 16
# only) were added after mtd-train's CutPaste validation favoured them in a
# memory bank (datasets/mtd/tuning.md, fifth run); appended, so ties keep the older rows
if [ "$FEAT_BACKBONE" = mobilenetv2 ]; then LAYERS=("5,12" "2,5" "2,5,12" "1,2,5" "12" "9,12") ALL_LAYERS=1,2,5,9,12
else LAYERS=("0,1" "1,2" "0,1,2") ALL_LAYERS=0,1,2; fi
# --no-recon: the bank alone, blocks of stride 8 and 16 (the first row the recipes'
# former bank-alone default; "5" and "5,9,12" added with this mode, before any run of it)
[ "$NO_RECON" = 0 ] || LAYERS=("5,12" "12" "9,12" "5" "5,9,12") ALL_LAYERS=5,9,12
# image scores: max and top-K means with K at most 1/8 of the map (native images:
# of the smallest validation image)
MAPN=$((SIZE * SIZE))
if [ "$NATIVE" = 1 ] && [ "$TILE" = 0 ]; then
    MAPN=$(glad-info "$OUT/val.msgpack" | sed -n 's/.*\timage:[^[]*\[[0-9]*,\([0-9]*\),\([0-9]*\)\].*/\1 \2/p' \
        | awk 'NR == 1 || $1 * $2 < m { m = $1 * $2 } END { print m + 0 }')
fi
SCORES=(topk-mean:50 max)
for k in 10 250; do [ $((k * 8)) -le "$MAPN" ] && SCORES+=("topk-mean:$k"); done
[ -z "$FIX_LAYERS" ] || LAYERS=("$FIX_LAYERS") ALL_LAYERS=$FIX_LAYERS
[ -z "$IMAGE_SCORE" ] || SCORES=("$IMAGE_SCORE")
if [ "$GRID" = quick ]; then STRATS=("${STRATS[@]:0:2}") LAYERS=("${LAYERS[@]:0:2}") SCORES=("${SCORES[@]:0:2}"); fi
# --no-recon: the layers glad-features computes (FEATL) and the banks' Gaussian
# (GBANK): with stage 4 block GLOBAL_L is added to the features (once) and every
# bank holds its Gaussian beside the candidate layers' vectors (glad-bank --global);
# without it the commands are as before the stage existed
FEATL=$ALL_LAYERS GBANK=""
if [ "$GLOBAL_STAGE" = 1 ]; then
    case ",$ALL_LAYERS," in *",$GLOBAL_L,"*) ;; *) FEATL=$ALL_LAYERS,$GLOBAL_L ;; esac
    GBANK=" --global $GLOBAL_L"
fi

# grid SET STREAM: every configuration on STREAM (val or test) -> OUT/SET-grid.tsv
grid() {
    local set=$1 in=$2 s name opts key
    for s in "${STRATS[@]}"; do
        name=${s%%|*} opts=${s#*|}
        cached "$OUT/$set-$name.feat.msgpack" \
            "glad-denoise --model $OUT/model $opts --seed $SEED $in | glad-features $(feat_opts "$OUT/model") --layers $ALL_LAYERS"
    done
    key=$({ printf '%s\n' "${STRATS[@]}" "${LAYERS[@]}" "${SCORES[@]}" "$(tile_merge)"
            for s in "${STRATS[@]}"; do cat "$OUT/$set-${s%%|*}.feat.msgpack.key"; done; } | sha256sum | cut -d' ' -f1)
    grid_tsv "$set" "$key" grid_rows
}
grid_rows() {   # grid's rows ($set from grid): every strategy x layer set x image score
    local s name l r
    for s in "${STRATS[@]}"; do
        name=${s%%|*}
        for l in "${LAYERS[@]}"; do
            for r in "${SCORES[@]}"; do
                eval "glad-score --preset glad --layers $l --image-score $r $OUT/$set-$name.feat.msgpack$(IMAGE_SCORE=$r tile_merge)" \
                    | val_row "$name\t$l\t$r"
            done
        done
    done
}
# keyed_tsv FILE KEY ROWS: FILE is what the function ROWS prints (its header
# included), remade only when KEY (what it is computed from: the cache keys of the
# streams it scores) differs from FILE.key's, so a rerun rescores nothing
keyed_tsv() {
    if [ -f "$1" ] && [ "$(cat "$1.key" 2>/dev/null)" = "$2" ]; then
        echo "cached: $(basename "$1")" >&2; return 0
    fi
    echo "making: $(basename "$1")" >&2
    "$3" > "$1.tmp"
    mv "$1.tmp" "$1"
    echo "$2" > "$1.key"
}
# grid_tsv SET KEY ROWS: OUT/SET-grid.tsv, the header then the val_row lines the
# function ROWS prints (grid and grid_bank)
grid_tsv() {
    GRID_ROWS=$3 keyed_tsv "$OUT/$1-grid.tsv" "$2" grid_tsv_rows
}
grid_tsv_rows() { printf 'strategy\tlayers\timage_score\ti_auroc\tp_auroc\taupro\tcriterion\n'; "$GRID_ROWS"; }
# grid_bank SET STREAM (--no-recon): the images' own features, one bank search per
# layer set (glad-score --bank-mode replace, kept as OUT/SET-none-L<layers>.scored),
# then every image score from those maps (glad-score --rescore, or the tiles' merge)
rescore() {   # rescore FILE R: FILE's maps with image score R (the tiles merged)
    if [ "$TILE" = 0 ]; then echo "glad-score --rescore --image-score $2 $1"; else echo "glad-tile --merge --image-score $2 $1"; fi
}
scored_file() { echo "${3:-$OUT}/$1-none-L${2//,/_}.scored.msgpack"; }   # SET LAYERS [DIR]
fold_dir() { echo "$OUT/fold-$1"; }   # fold J's directory (--folds; fold 0 is OUT)
# fold_means NKEY K WHAT: rows "KEY... i_auroc p_auroc aupro criterion" (val_row's, no
# header) with every key once per fold, K folds -> per key in first-seen order: the KEY
# columns, the three metrics averaged over the folds that define them (null: none),
# the per-fold criteria (comma-separated) and the criterion averaged likewise (-1:
# none defined); a key seen other than K times is an error ("WHAT differ")
fold_means() {
    awk -F'\t' -v nk="$1" -v k="$2" -v what="$3" '
        { key = $1; for (c = 2; c <= nk; c++) key = key FS $c
          if (!(key in seen)) order[++nr] = key
          seen[key]++
          for (c = 1; c <= 3; c++) if ($(nk + c) != "null" && $(nk + c) != "") { sum[key, c] += $(nk + c); cnt[key, c]++ }
          if ($(nk + 4) + 0 >= 0) { sum[key, 4] += $(nk + 4); cnt[key, 4]++ }
          per[key] = per[key] (seen[key] > 1 ? "," : "") sprintf("%.4f", $(nk + 4)) }
        END {
          for (r = 1; r <= nr; r++) if (seen[order[r]] != k) { print "tune.sh: " what " differ: " order[r] > "/dev/stderr"; exit 1 }
          for (r = 1; r <= nr; r++) {
              key = order[r]; line = key
              for (c = 1; c <= 3; c++) line = line "\t" (cnt[key, c] ? sprintf("%.6f", sum[key, c] / cnt[key, c]) : "null")
              printf "%s\t%s\t%.6f\n", line, per[key], cnt[key, 4] ? sum[key, 4] / cnt[key, 4] : -1 } }'
}
# md_fold_rows TSV NRAW PCT FOLDCOL: TSV's data rows as markdown: the first NRAW
# columns as they are, the columns listed in PCT in percent (n/a: null or -1), and
# with --folds the per-fold criteria in column FOLDCOL
md_fold_rows() {
    awk -F'\t' -v nraw="$2" -v pc="$3" -v fc="$4" -v k="$FOLDS" 'NR > 1 {
        s = "|"; for (c = 1; c <= nraw; c++) s = s " " $c " |"
        n = split(pc, pcs, ","); for (i = 1; i <= n; i++) s = s " " p($(pcs[i])) " |"
        if (k > 1) { n = split($fc, f, ","); t = ""; for (i = 1; i <= n; i++) t = t (i > 1 ? " / " : "") p(f[i]); s = s " " t " |" }
        print s }
        function p(x) { return (x == "" || x == "null" || x + 0 < 0) ? "n/a" : sprintf("%.1f", 100 * x) }' "$1"
}
grid_bank() {
    local set=$1 in=$2 l key
    cached "$OUT/$set-none.feat.msgpack" "glad-features $(FEAT_LAYERS=$FEATL feat_opts "") --input image $in"
    for l in "${LAYERS[@]}"; do
        cached "$(scored_file "$set" "$l")" "glad-score --preset glad --layers $l --bank $BANK_FILE --bank-mode replace$(bnorm_opt) $OUT/$set-none.feat.msgpack"
    done
    key=$({ printf '%s\n' "${LAYERS[@]}" "${SCORES[@]}" "$TILE"
            for l in "${LAYERS[@]}"; do cat "$(scored_file "$set" "$l").key"; done; } | sha256sum | cut -d' ' -f1)
    grid_tsv "$set" "$key" grid_bank_rows
}
grid_bank_rows() {   # grid_bank's rows ($set from grid_bank): every layer set x image score
    local l r
    for l in "${LAYERS[@]}"; do
        for r in "${SCORES[@]}"; do
            $(rescore "$(scored_file "$set" "$l")" "$r") | val_row "none\t$l\t$r"
        done
    done
}
# --no-recon: the training shards' features, each computed once in SHARDS (the
# parent's directory, shared by its --folds children: each fold's bank is the other
# shards', so every image's features would otherwise be computed once per fold);
# concatenated in shard order they are the features of bank-train.msgpack
SHARDS=${GLAD_TUNE_SHARDS:-$OUT}
shard_feats() {   # the feature files of every shard but FOLD's, in order (made when missing)
    local k f
    for k in $(seq 0 $((N - 1))); do
        [ "$k" = "$FOLD" ] && continue
        f=$SHARDS/shard-$k-of-$N.feat.msgpack
        cached "$f" "$ENC --split train --seed $SEED --shard $k/$N$(tile_split) | glad-features $(FEAT_LAYERS=$FEATL feat_opts "") --input image"
        printf '%s ' "$f"
    done
}
if [ "$NO_RECON" = 1 ]; then
    # the bank of every candidate layer (glad-score --layers picks); no model
    STRATS=("none|") BANK_FILE=$OUT/bank-all.safetensors
    SHARD_FEATS=$(shard_feats)
    cached "$BANK_FILE" "cat $SHARD_FEATS| glad-bank${GBANK:+ --layers $ALL_LAYERS$GBANK} --subsample ${BANK_SUBSAMPLE:-1}$(radius_opt) --seed $SEED -o @OUT"
    grid_bank val "$OUT/val.msgpack"
else
    grid val "$OUT/val.msgpack"
fi
# a fold's run for --folds stops at its grid (the parent chooses)
[ "${GLAD_TUNE_FOLD_GRID_ONLY:-0}" = 0 ] || exit 0
# --folds K: folds 1..K-1 in OUT/fold-J (each its own hold-out, bank and grid; the
# same arguments otherwise), then every row's metrics and criterion averaged over
# the folds -> OUT/val-cv-grid.tsv, the column before the criterion the per-fold
# criteria; the choice is made on that
GRID_TSV=$OUT/val-grid.tsv FOLD_GRIDS=("$OUT/val-grid.tsv") FOLD_DIRS=("$OUT")
if [ "$FOLDS" -gt 1 ]; then
    for j in $(seq 1 $((FOLDS - 1))); do
        echo "tune.sh: [$NAME] fold $j of 0..$((FOLDS - 1)) -> $(fold_dir "$j")" >&2
        GLAD_TUNE_FOLD_GRID_ONLY=1 GLAD_TUNE_SHARDS=$SHARDS bash "$0" "${CHILD[@]}" --fold "$j" --out "$(fold_dir "$j")" >&2
        FOLD_GRIDS+=("$(fold_dir "$j")/val-grid.tsv") FOLD_DIRS+=("$(fold_dir "$j")")
    done
    GRID_TSV=$OUT/val-cv-grid.tsv
    # rows in fold 0's order (fold_means)
    { printf 'strategy\tlayers\timage_score\ti_auroc\tp_auroc\taupro\tfold_criteria\tcriterion\n'
      for g in "${FOLD_GRIDS[@]}"; do tail -n +2 "$g"; done | fold_means 3 "$FOLDS" "fold grids"; } > "$GRID_TSV.tmp"
    mv "$GRID_TSV.tmp" "$GRID_TSV"
fi
# the choice: the highest criterion; ties keep the earlier configuration
best=$(best_row "$GRID_TSV")
[ -n "$best" ] || { echo "tune.sh: no configuration has validation metrics" >&2; exit 1; }
C_FOLDS=""
if [ "$FOLDS" -gt 1 ]; then IFS=$'\t' read -r C_STRAT C_LAYERS C_SCORE C_I C_P C_PRO C_FOLDS C_CRIT <<< "$best"
else IFS=$'\t' read -r C_STRAT C_LAYERS C_SCORE C_I C_P C_PRO C_CRIT <<< "$best"; fi
for s in "${STRATS[@]}"; do [ "${s%%|*}" = "$C_STRAT" ] && C_DEN=${s#*|}; done
# --- stage 2 (--bank or a fixed --bank-mode): the chosen row scored against a
# memory bank of the training images' features in each bank mode; "none" (the
# row as chosen) first, so a tie keeps it
C_BANK=none C_CRIT_ALL=$C_CRIT
if [ "$NO_RECON" = 1 ]; then
    # the bank alone was the grid (the recipes' bank is made after stage 4)
    C_BANK=replace
elif [ "$BANK_STAGE" = 1 ] || { [ -n "$BANK_MODE" ] && [ "$BANK_MODE" != none ]; }; then
    MODES=(replace union add)
    [ -z "$BANK_MODE" ] || MODES=("$BANK_MODE")
    [ "$BANK_MODE" = none ] && MODES=()
    # every fold's bank: its own model's features of its own training images
    for d in "${FOLD_DIRS[@]}"; do FEAT_LAYERS=$C_LAYERS bank_build "$d/model" "$d/train.msgpack" "$d/bank.safetensors"; done
    key=$({ printf '%s\n' "${MODES[@]}" "$best" "$(tile_merge)"
            for d in "${FOLD_DIRS[@]}"; do cat "$d/bank.safetensors.key" "$d/val-$C_STRAT.feat.msgpack.key"; done; } | sha256sum | cut -d' ' -f1)
    # the chosen row as it is (none: each fold's grid row), then each mode's rescoring
    # of every fold's chosen reconstructions, the fold means (one fold: its figures)
    bank_rows() {
        printf 'bank_mode\ti_auroc\tp_auroc\taupro\tfold_criteria\tcriterion\n'
        local m d g
        { for g in "${FOLD_GRIDS[@]}"; do
              awk -F'\t' -v s="$C_STRAT" -v l="$C_LAYERS" -v r="$C_SCORE" 'NR > 1 && $1 == s && $2 == l && $3 == r { print "none\t" $4 "\t" $5 "\t" $6 "\t" $7 }' "$g"
          done
          for m in "${MODES[@]}"; do
              for d in "${FOLD_DIRS[@]}"; do
                  eval "glad-score --preset glad --layers $C_LAYERS --image-score $C_SCORE --bank $d/bank.safetensors --bank-mode $m$(bnorm_opt) $d/val-$C_STRAT.feat.msgpack$(IMAGE_SCORE=$C_SCORE tile_merge)" \
                      | val_row "$m"
              done
          done; } | fold_means 1 "$FOLDS" "bank rows"
    }
    keyed_tsv "$OUT/val-bank.tsv" "$key" bank_rows
    # a mode is kept only when it beats the earlier ones by more than 0.1 point of the
    # criterion (on ~100 validation images, about ten swapped pairs of the I-AUROC alone)
    # and, with --folds, by more than the standard error of its per-fold differences
    # (kept_row): within that they are a tie, and the earlier is cheaper -- none needs no
    # bank, replace no reconstruction (mtd.sh then trains no model and reconstructs nothing)
    IFS=$'\t' read -r C_BANK s_i s_p s_pro s_folds s_crit <<< "$(kept_row "$OUT/val-bank.tsv" 0.001)"
    if [ "$C_BANK" != none ]; then C_I=$s_i C_P=$s_p C_PRO=$s_pro C_CRIT_ALL=$s_crit; [ "$FOLDS" = 1 ] || C_FOLDS=$s_folds; fi
fi
# bank_score DIR: glad-score's bank options of the chosen mode with fold DIR's bank
bank_score() { [ "$C_BANK" = none ] || echo " --bank $1/bank.safetensors --bank-mode $C_BANK$(bnorm_opt)"; }
BANK_SCORE=$(bank_score "$OUT")
# every fold's validation images scored with the chosen row (--folds: fold 0's
# val-chosen, fold J's val-cv-chosen in OUT/fold-J)
VAL_CHOSEN=()
for d in "${FOLD_DIRS[@]}"; do
    f=$d/val-cv-chosen.scored.msgpack
    [ "$d" != "$OUT" ] || f=$OUT/val-chosen.scored.msgpack
    if [ "$NO_RECON" = 1 ]; then cached "$f" "$(rescore "$(scored_file val "$C_LAYERS" "$d")" "$C_SCORE")"
    else cached "$f" "glad-score --preset glad --layers $C_LAYERS --image-score $C_SCORE$(bank_score "$d") $d/val-$C_STRAT.feat.msgpack$(IMAGE_SCORE=$C_SCORE tile_merge)"; fi
    VAL_CHOSEN+=("$f")
done
# --- stage 3: the map normalisation (glad-score --map-norm) of the chosen row,
# its maps rescored on every fold (no map recomputed): none first, then each map
# less its own 10th percentile or median; as the bank stage, a later one must
# beat the earlier by more than 0.001 of the fold-averaged criterion and by more
# than the standard error of the per-fold differences (kept_row). Fixed by
# --map-norm. With --tile the chosen runs are the merged images, so it is the
# merged maps that are normalised.
NORMS=(none quantile:0.1 quantile:0.5) NORM_STAGE=1
[ -z "$FIX_NORM" ] || NORMS=("$FIX_NORM")
[ "${NORMS[*]}" != none ] || NORM_STAGE=0
# norm_file FILE NORM: FILE (a chosen validation run) with NORM applied (none: FILE)
norm_file() { if [ "$2" = none ]; then echo "$1"; else echo "${1%.scored.msgpack}-${2//[:.]/_}.scored.msgpack"; fi; }
# rescore_stage TSV WHAT COLUMN OPTION FILEFN VALUE... (stages 3 and 4): every chosen run
# (VAL_CHOSEN, one per fold) rescored with glad-score OPTION VALUE into FILEFN RUN VALUE
# (which names RUN itself for the value that leaves it as it is), val_row of each run per
# value and fold, then the fold means (WHAT names them in fold_means' error) into TSV,
# COLUMN heading the values; STAGE_PICK the value kept by kept_row's rule and, unless it
# leaves the runs as they are, C_I C_P C_PRO C_CRIT_ALL (and C_FOLDS) its figures
rescore_stage() {
    local tsv=$1 v f key s_i s_p s_pro s_folds s_crit
    STAGE_WHAT=$2 STAGE_COL=$3 STAGE_FN=$5
    local opt=$4; shift 5
    STAGE_VALUES=("$@")
    for v in "$@"; do
        for f in "${VAL_CHOSEN[@]}"; do
            [ "$($STAGE_FN "$f" "$v")" = "$f" ] || cached "$($STAGE_FN "$f" "$v")" "glad-score --rescore --image-score $C_SCORE $opt $v $f"
        done
    done
    key=$({ printf '%s\n' "$@"; for v in "$@"; do for f in "${VAL_CHOSEN[@]}"; do cat "$($STAGE_FN "$f" "$v").key"; done; done; } | sha256sum | cut -d' ' -f1)
    keyed_tsv "$tsv" "$key" stage_rows
    IFS=$'\t' read -r STAGE_PICK s_i s_p s_pro s_folds s_crit <<< "$(kept_row "$tsv" 0.001)"
    if [ "$($STAGE_FN x "$STAGE_PICK")" != x ]; then
        C_I=$s_i C_P=$s_p C_PRO=$s_pro C_CRIT_ALL=$s_crit
        [ "$FOLDS" = 1 ] || C_FOLDS=$s_folds
    fi
}
# rescore_stage's rows: val_row per value and fold (in VAL_CHOSEN order), then the fold means
stage_rows() {
    printf '%s\ti_auroc\tp_auroc\taupro\tfold_criteria\tcriterion\n' "$STAGE_COL"
    local v f
    for v in "${STAGE_VALUES[@]}"; do
        for f in "${VAL_CHOSEN[@]}"; do val_row "$v" < "$($STAGE_FN "$f" "$v")"; done
    done | fold_means 1 "${#VAL_CHOSEN[@]}" "$STAGE_WHAT"
}
C_NORM=${NORMS[0]}
if [ "$NORM_STAGE" = 1 ]; then
    rescore_stage "$OUT/val-norm.tsv" "normalisation rows" map_norm --map-norm norm_file "${NORMS[@]}"
    C_NORM=$STAGE_PICK
fi
for i in "${!VAL_CHOSEN[@]}"; do VAL_CHOSEN[i]=$(norm_file "${VAL_CHOSEN[i]}" "$C_NORM"); done
# --- stage 4 (--no-recon, untiled): the weight W of the whole-image Gaussian, score =
# the normalised map's image score + W * score_global (every fold's bank held block
# GLOBAL_L's Gaussian, so each chosen run's records carry their score_global); the
# normalised runs rescored (glad-score --rescore --global-weight W: the maps as they
# are), 0 first, a later weight kept only when it beats the earlier by more than
# 0.001 of the fold-averaged criterion and the per-fold differences' standard error
# (kept_row). Fixed by --global-weight.
# gw_file FILE W: FILE (a chosen, normalised run) scored with weight W (0: FILE)
gw_file() { if [ "$2" = 0 ]; then echo "$1"; else echo "${1%.scored.msgpack}-g${2//./_}.scored.msgpack"; fi; }
C_GW=0
if [ "$GLOBAL_STAGE" = 1 ]; then
    rescore_stage "$OUT/val-global.tsv" "global-weight rows" global_weight --global-weight gw_file "${GWS[@]}"
    C_GW=$STAGE_PICK
fi
# --no-recon: the recipes' bank, the chosen layers only (of the same shard features:
# the layers' vectors are those glad-features gives for them alone), with block
# GLOBAL_L's Gaussian when stage 4 chose a weight
# (not for a caller that calibrates only, GLAD_TUNE_CALIBRATE_ONLY=1: lib.sh's
# calibrate_class, whose recipe makes its own bank of every training image)
CAL_ONLY=${GLAD_TUNE_CALIBRATE_ONLY:-0}
if [ "$NO_RECON" = 1 ] && [ "$CAL_ONLY" = 0 ]; then
    cached "$OUT/bank.safetensors" "cat $SHARD_FEATS| glad-bank --layers $C_LAYERS$([ "$C_GW" = 0 ] || echo "$GBANK") --subsample ${BANK_SUBSAMPLE:-1}$(radius_opt) --seed $SEED -o @OUT"
fi
# the thresholds from every fold's chosen run, normalised and weighted as chosen
for i in "${!VAL_CHOSEN[@]}"; do VAL_CHOSEN[i]=$(gw_file "${VAL_CHOSEN[i]}" "$C_GW"); done
cached "$OUT/thresholds.json" "glad-auroc --calibrate @OUT ${VAL_CHOSEN[*]} 2> >(grep -v \"have split 'train'\" >&2)"
# --- several --val-family: the chosen row (normalised as chosen) on each family's
# anomalies against all of the fold's normals (glad-auroc --by defect), averaged
# over the folds: which kind of anomaly the choice misses. Reported, not chosen on
# (the choice is the pooled criterion's above).
FAM_TSV=/dev/null
if [ "${#VFAMS[@]}" -gt 1 ]; then
    FAM_TSV=$OUT/val-family.tsv
    key=$({ printf '%s\n' "${VFAMS[@]}"; for f in "${VAL_CHOSEN[@]}"; do cat "$f.key"; done; } | sha256sum | cut -d' ' -f1)
    # every family once per fold, in --val-family order; a fold whose share of a
    # family made no anomaly (a tiny hold-out) gives it no metric there (n/a)
    family_rows() {
        printf 'family\ti_auroc\tp_auroc\taupro\tfold_criteria\tcriterion\n'
        local f v rows
        for f in "${VAL_CHOSEN[@]}"; do
            rows=$(val_rows_by_defect < "$f")
            for v in "${VFAMS[@]}"; do
                awk -F'\t' -v v="$v" '$1 == v { print; f = 1 } END { if (!f) printf "%s\tnull\tnull\tnull\t-1\n", v }' <<< "$rows"
            done
        done | fold_means 1 "${#VAL_CHOSEN[@]}" "family rows"
    }
    keyed_tsv "$FAM_TSV" "$key" family_rows
fi
pct() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "n/a"; else printf "%.1f", 100 * x }'; }
# what the grid's scores were made with (--no-recon: no model, the bank alone)
if [ "$NO_RECON" = 1 ]; then
    MADE="no model (--no-recon: each image's own $FEAT_BACKBONE features against a memory bank of the other $((n - NHOLD)) normals' features, the bank alone$([ "$NATIVE" = 0 ] || [ "$TILE" != 0 ] || echo ", images at their native size${NATIVE_SCALE:+ scaled by $NATIVE_SCALE}"))"
    C_DESC="none (the bank alone, no reconstruction)"
else
    MADE="model trained on the other $((n - NHOLD)) normals$([ "$FOLDS" = 1 ] || echo " (a model per fold, each on its fold's other normals)"), $STEPS steps, preset $PRESET, features $FEAT_BACKBONE"
    C_DESC="$C_STRAT (\`$C_DEN\`)"
fi
# the validation, said once: one shard, or K folds
if [ "$FOLDS" -gt 1 ]; then
    VWHO="$FOLDS folds (shards 0..$((FOLDS - 1)) of $N held out in turn, about $NHOLD training normals each, seed $SEED; the metrics averaged over the folds)"
    VSHORT="$FOLDS folds of about $NHOLD held-out training normals"
else
    VWHO="$NHOLD held-out training normals (shard $FOLD/$N, seed $SEED)"
    VSHORT="$NHOLD held-out training normals"
fi
# a knob the caller gave is marked so (not chosen here); with every knob given (the
# bank alone: no strategy to choose) nothing is chosen and the run only reports the
# given line's validation figures and calibrates its threshold (mtd.sh's default)
given() { [ -z "$1" ] || echo " (given)"; }
GIVEN_ALL=0
[ "$NO_RECON" = 0 ] || [ -z "$FIX_LAYERS" ] || [ -z "$IMAGE_SCORE" ] || [ -z "$FIX_NORM" ] \
    || { [ "$GLOBAL_STAGE" = 1 ] && [ -z "$GLOBAL_FIX" ]; } || GIVEN_ALL=1
if [ "$GIVEN_ALL" = 1 ]; then CHOSE="nothing chosen, every knob given:"; else CHOSE="chosen"; fi
HOW="validation: $VWHO, half of them with $VDESC (seed $VSEED)$([ "$NO_RECON" = 0 ] || echo "; no reconstruction, the memory bank alone"); criterion: mean of I-AUROC, P-AUROC, AUPRO; $CHOSE $C_STRAT, layers $C_LAYERS$(given "$FIX_LAYERS"), $C_SCORE$(given "$IMAGE_SCORE"), bank $C_BANK$([ "$C_BANK" = none ] || [ -z "$(bnorm_opt)" ] || echo " read by its radii, --bank-norm $BANK_NORM (given)"), map norm $C_NORM$(given "$FIX_NORM")$([ "$GLOBAL_STAGE" = 0 ] || echo ", whole-image Gaussian (block $GLOBAL_L) weight $C_GW$(given "$GLOBAL_FIX")"): I-AUROC $(pct "$C_I"), P-AUROC $(pct "$C_P"), AUPRO $(pct "$C_PRO") on validation"
VERSION=$(glad-score --version | awk '{ print $NF; exit }')
{
    echo "# tune.sh: $NAME"
    echo
    if [ "$GIVEN_ALL" = 1 ]; then
        echo "Nothing chosen: every knob was given (--feat-layers, --image-score, --map-norm$([ "$GLOBAL_STAGE" = 0 ] || echo ", --global-weight")); the"
        echo "tables report the given line on synthetic validation ($VSHORT, half of them given"
    else
        echo "Chosen on synthetic validation only ($VSHORT, half of them given"
    fi
    echo "$VDESC; $MADE)."
    echo "Criterion: the mean of validation I-AUROC, P-AUROC and AUPRO;"
    echo "ties keep the earlier row; in stages 2-4 a later option replaces the kept one only when its criterion is higher by"
    echo "more than 0.001$([ "$FOLDS" = 1 ] || echo " and by more than the standard error of the per-fold differences (the one-standard-error rule)")."
    echo "Threshold: glad-auroc --calibrate (target FPR 1 %) on the chosen run$([ "$FOLDS" = 1 ] || echo " of every fold")."
    [ "$FOLDS" = 1 ] || echo "Folds: $VWHO; per-fold criteria of the chosen row: $C_FOLDS."
    echo
    echo "| choice | value |"
    echo "|---|---|"
    echo "| denoising | $C_DESC |"
    echo "| feature layers | $C_LAYERS |"
    echo "| image score | $C_SCORE |"
    echo "| memory bank (glad-score --bank-mode) | $C_BANK$([ "$C_BANK" = none ] || echo " (subsample ${BANK_SUBSAMPLE:-1})") |"
    echo "| map normalisation (glad-score --map-norm) | $C_NORM |"
    [ "$GLOBAL_STAGE" = 0 ] || echo "| whole-image Gaussian of block $GLOBAL_L (glad-score --global-weight) | $C_GW |"
    echo "| validation I-AUROC / P-AUROC / AUPRO | $(pct "$C_I") / $(pct "$C_P") / $(pct "$C_PRO") |"
    echo
    # --folds: the fold means, then each fold's criterion
    echo "| strategy | layers | image score | val I-AUROC | val P-AUROC | val AUPRO |$([ "$FOLDS" = 1 ] || echo " criterion per fold |")"
    echo "|---|---|---|---:|---:|---:|$([ "$FOLDS" = 1 ] || echo "---|")"
    md_fold_rows "$GRID_TSV" 3 4,5,6 7
    if [ -f "$OUT/val-bank.tsv" ] && [ "$C_CRIT_ALL" != "$C_CRIT" -o "$BANK_STAGE" = 1 -o -n "$BANK_MODE" ]; then
        echo
        echo "Stage 2, the chosen row against a memory bank of the training images' features$([ "$FOLDS" = 1 ] || echo " (each fold's own model and training images, the metrics averaged over the folds)"):"
        echo
        echo "| bank mode | val I-AUROC | val P-AUROC | val AUPRO | criterion |$([ "$FOLDS" = 1 ] || echo " criterion per fold |")"
        echo "|---|---:|---:|---:|---:|$([ "$FOLDS" = 1 ] || echo "---|")"
        md_fold_rows "$OUT/val-bank.tsv" 1 2,3,4,6 5
        [ "$FOLDS" = 1 ] || { echo; kept_line "$OUT/val-bank.tsv" 0.001; }
    fi
    if [ "$NORM_STAGE" = 1 ]; then
        echo
        echo "Stage 3, the chosen row's maps less their own quantile (glad-score --map-norm; the maps rescored$([ "$FOLDS" = 1 ] || echo ", the metrics averaged over the folds")):"
        echo
        echo "| map norm | val I-AUROC | val P-AUROC | val AUPRO | criterion |$([ "$FOLDS" = 1 ] || echo " criterion per fold |")"
        echo "|---|---:|---:|---:|---:|$([ "$FOLDS" = 1 ] || echo "---|")"
        md_fold_rows "$OUT/val-norm.tsv" 1 2,3,4,6 5
        [ "$FOLDS" = 1 ] || { echo; kept_line "$OUT/val-norm.tsv" 0.001; }
    fi
    if [ "$GLOBAL_STAGE" = 1 ]; then
        echo
        echo "Stage 4, the image score plus W times the whole-image Gaussian's distance (block $GLOBAL_L; glad-score --global-weight W, the normalised maps rescored$([ "$FOLDS" = 1 ] || echo ", the metrics averaged over the folds")):"
        echo
        echo "| weight W | val I-AUROC | val P-AUROC | val AUPRO | criterion |$([ "$FOLDS" = 1 ] || echo " criterion per fold |")"
        echo "|---|---:|---:|---:|---:|$([ "$FOLDS" = 1 ] || echo "---|")"
        md_fold_rows "$OUT/val-global.tsv" 1 2,3,4,6 5
        [ "$FOLDS" = 1 ] || { echo; kept_line "$OUT/val-global.tsv" 0.001; }
    fi
    if [ "$FAM_TSV" != /dev/null ]; then
        echo
        echo "Per validation family, the chosen row$([ "$C_NORM" = none ] || echo " (map norm $C_NORM)")$([ "$C_GW" = 0 ] || echo " (global weight $C_GW)"): each family's anomalies against the same normals$([ "$FOLDS" = 1 ] || echo ", averaged over the folds") (reported only; the choice is the pooled criterion's):"
        echo
        echo "| family | val I-AUROC | val P-AUROC | val AUPRO | criterion |$([ "$FOLDS" = 1 ] || echo " criterion per fold |")"
        echo "|---|---:|---:|---:|---:|$([ "$FOLDS" = 1 ] || echo "---|")"
        md_fold_rows "$FAM_TSV" 1 2,3,4,6 5
    fi
} > "$OUT/tune.md"
jq -n --arg name "$NAME" --arg strat "$C_STRAT" --arg den "$C_DEN" --arg layers "$C_LAYERS" --arg score "$C_SCORE" \
    --argjson i "${C_I:-null}" --argjson p "${C_P:-null}" --argjson pro "${C_PRO:-null}" \
    --argjson n "$n" --argjson nhold "$NHOLD" --argjson shards "$N" --argjson seed "$SEED" --argjson vseed "$VSEED" --arg vdesc "$VDESC" \
    --arg backbone "$FEAT_BACKBONE" --arg preset "$PRESET" --argjson steps "$STEPS" --arg how "$HOW" \
    --slurpfile thr "$OUT/thresholds.json" --arg bank "$C_BANK" --arg banksub "${BANK_SUBSAMPLE:-1}" --argjson crit "$C_CRIT_ALL" \
    --argjson norecon "$([ "$NO_RECON" = 1 ] && echo true || echo false)" --argjson native "$([ "$NATIVE" = 1 ] && echo true || echo false)" --arg nscale "$NATIVE_SCALE" --arg std "$(std_s "${FEAT_STD:-0}")" --arg stail "$(std_tail "${FEAT_STD:-0}")" --arg also "$(also_opt)" --arg bnorm "${BANK_NORM:-none}" \
    --argjson fold "$FOLD" --argjson folds "$FOLDS" --arg foldcrit "$C_FOLDS" \
    --rawfile famtsv "$FAM_TSV" --arg norm "$C_NORM" --rawfile normtsv "$([ "$NORM_STAGE" = 1 ] && echo "$OUT/val-norm.tsv" || echo /dev/null)" \
    --argjson gw "$C_GW" --arg gl "$([ "$GLOBAL_STAGE" = 0 ] || echo "$GLOBAL_L")" --rawfile gwtsv "$([ "$GLOBAL_STAGE" = 1 ] && echo "$OUT/val-global.tsv" || echo /dev/null)" \
    --argjson givenall "$([ "$GIVEN_ALL" = 1 ] && echo true || echo false)" --rawfile grid "$GRID_TSV" '
    # a criterion below 0 is fold_means'"'"' marker of a row with no metric in any fold: null
    def crit: tonumber? // null | if . != null and . < 0 then null else . end;
    {
      name: $name, how: $how, nothing_chosen: $givenall,
      criterion: ("mean of validation I-AUROC, P-AUROC, AUPRO (defined ones)" + (if $folds > 1 then ", averaged over \($folds) folds" else "" end) + "; ties keep the earlier configuration; in stages 2-4 a later option must beat the kept one by more than 0.001" + (if $folds > 1 then " and by more than the standard error of the per-fold differences" else "" end)),
      validation: { train_normals: $n, held_out: $nhold, holdout_rule: (if $folds > 1 then "shards 0..\($folds - 1)/\($shards) of the seed-\($seed) shuffle, each held out in turn (fold 0: this directory, fold J: fold-J/)"
                                   else "shard \($fold)/" + ($shards|tostring) + " of the seed-\($seed) shuffle" end),
                    anomalies: (if $folds > 1 then "in fold J, shard \($shards)+J/\(2 * $shards) of the hold-out with \($vdesc) (seed \($vseed)), shard J/\(2 * $shards) kept normal"
                                else "shard \($shards + $fold)/\(2 * $shards) of the hold-out with \($vdesc) (seed \($vseed)), shard \($fold)/\(2 * $shards) kept normal" end),
                    folds: $folds,
                    fold_criteria: (if $folds > 1 then ($foldcrit | split(",") | map(tonumber)) else null end) },
      model: (if $norecon then null else { preset: $preset, steps: $steps, loss: "atp", trained_on: ($n - $nhold) } end),
      no_recon: $norecon, native_size: $native, native_scale: (if $nscale == "" then null else ($nscale | tonumber) end),
      standardize: ($std | tonumber),
      standardize_tail: (if ($std | tonumber) > 0 then $stail else null end),
      also_size: (if $also == "" then null else ($also | sub("^ --also-size "; "") | split(",") | map(tonumber)) end),
      bank_norm: $bnorm,
      features: $backbone,
      choice: { strategy: $strat, denoise: $den, layers: $layers, image_score: $score, bank_mode: $bank, bank_subsample: $banksub, map_norm: $norm,
                global_weight: $gw, global_layers: (if $gl == "" then null else $gl end) },
      criterion_value: $crit,
      validation_metrics: { i_auroc: $i, p_auroc: $p, aupro: $pro },
      thresholds: $thr[0],
      grid: ($grid | split("\n") | map(select(length > 0)) | .[1:] | map(
          split("\t") | { strategy: .[0], layers: .[1], image_score: .[2], i_auroc: (.[3] | tonumber? // null),
                           p_auroc: (.[4] | tonumber? // null), aupro: (.[5] | tonumber? // null) })),
      map_norm_stage: ($normtsv | split("\n") | map(select(length > 0)) | .[1:] | map(
          split("\t") | { map_norm: .[0], i_auroc: (.[1] | tonumber? // null), p_auroc: (.[2] | tonumber? // null),
                           aupro: (.[3] | tonumber? // null), criterion: (.[5] | crit) })),
      global_weight_stage: ($gwtsv | split("\n") | map(select(length > 0)) | .[1:] | map(
          split("\t") | { global_weight: (.[0] | tonumber), i_auroc: (.[1] | tonumber? // null), p_auroc: (.[2] | tonumber? // null),
                           aupro: (.[3] | tonumber? // null), criterion: (.[5] | crit) })),
      family_metrics: ($famtsv | split("\n") | map(select(length > 0)) | .[1:] | map(
          split("\t") | { family: .[0], i_auroc: (.[1] | tonumber? // null), p_auroc: (.[2] | tonumber? // null),
                           aupro: (.[3] | tonumber? // null), criterion: (.[5] | crit) }))
    }' > "$OUT/tune.json"
{
    printf 'TUNE_MODEL=%q\n' "$([ "$NO_RECON" = 1 ] || echo "$OUT/model")"
    printf 'TUNE_DENOISE=%q\n' "$C_DEN"
    printf 'TUNE_LAYERS=%q\n' "$C_LAYERS"
    printf 'TUNE_IMAGE_SCORE=%q\n' "$C_SCORE"
    printf 'TUNE_THRESHOLDS=%q\n' "$OUT/thresholds.json"
    printf 'TUNE_BANK_MODE=%q\n' "$C_BANK"
    printf 'TUNE_BANK=%q\n' "$([ "$C_BANK" = none ] || { [ "$NO_RECON" = 1 ] && [ "$CAL_ONLY" = 1 ]; } || echo "$OUT/bank.safetensors")"
    printf 'TUNE_MAP_NORM=%q\n' "$C_NORM"
    printf 'TUNE_GLOBAL_WEIGHT=%q\n' "$C_GW"
    printf 'TUNE_VERSION=%q\n' "$VERSION"
    printf 'TUNE_NOTE=(--denoise %q --layers %q --image-score %q --bank-mode %q --map-norm %q --global-weight %q --thresholds %q --chosen-by %q)\n' \
        "$C_DEN" "$C_LAYERS" "$C_SCORE" "$C_BANK" "$C_NORM" "$C_GW" "$OUT/thresholds.json" "$HOW"
} > "$OUT/tune.env"

if [ "$PEEK" = 1 ]; then
    # test-peeking, for the report only: the same grid scored on the test split
    cached "$OUT/test.msgpack" "$ENC --split test$(tile_split)"
    if [ "$NO_RECON" = 1 ]; then grid_bank test "$OUT/test.msgpack"; else grid test "$OUT/test.msgpack"; fi
    # the chosen line as the recipes run it -- stage 2's bank, stage 3's normalisation,
    # stage 4's weight, which the grid's rows are scored without -- on the test split
    if [ "$NO_RECON" = 1 ]; then cached "$OUT/test-chosen.scored.msgpack" "$(rescore "$(scored_file test "$C_LAYERS")" "$C_SCORE")"
    else cached "$OUT/test-chosen.scored.msgpack" "glad-score --preset glad --layers $C_LAYERS --image-score $C_SCORE$BANK_SCORE $OUT/test-$C_STRAT.feat.msgpack$(IMAGE_SCORE=$C_SCORE tile_merge)"; fi
    # stage_cmd R [FILE]: stage 3's normalisation and stage 4's weight (as chosen)
    # applied to FILE, or to stdin, with image score R; empty when both are off
    stage_cmd() {
        local c="" f=${2:+ $2}
        if [ "$C_NORM" != none ]; then c="glad-score --rescore --image-score $1 --map-norm $C_NORM$f"; f=""; fi
        if [ "$C_GW" != 0 ]; then c="${c:+$c | }glad-score --rescore --image-score $1 --global-weight $C_GW$f"; fi
        echo "$c"
    }
    TC=$OUT/test-chosen.scored.msgpack
    if [ -n "$(stage_cmd "$C_SCORE")" ]; then
        cached "$OUT/test-chosen-staged.scored.msgpack" "$(stage_cmd "$C_SCORE" "$TC")"
        TC=$OUT/test-chosen-staged.scored.msgpack
    fi
    # the grid's rows on the test split through the same stage_cmd (each row's maps
    # rescored), so that the rows compared with the chosen one are scored as it is;
    # stage 2's bank is in the last row only (it is made for the chosen layers).
    # test-grid.tsv keeps the rows without them
    PEEK_TSV=$OUT/test-grid.tsv PEEK_HOW=""
    if [ -n "$(stage_cmd "$C_SCORE")" ]; then
        PEEK_TSV=$OUT/test-grid-staged.tsv PEEK_HOW=" (each row's maps with map norm $C_NORM$([ "$C_GW" = 0 ] || echo ", global weight $C_GW") as chosen)"
        staged_rows() {
            printf 'strategy\tlayers\timage_score\ti_auroc\tp_auroc\taupro\tcriterion\n'
            local name l r src
            while IFS=$'\t' read -r name l r _; do
                if [ "$NO_RECON" = 1 ]; then src=$(rescore "$(scored_file test "$l")" "$r")
                else src="glad-score --preset glad --layers $l --image-score $r $OUT/test-$name.feat.msgpack$(IMAGE_SCORE=$r tile_merge)"; fi
                eval "$src | $(stage_cmd "$r")" | val_row "$name\t$l\t$r"
            done < <(tail -n +2 "$OUT/test-grid.tsv")
        }
        keyed_tsv "$PEEK_TSV" "$({ cat "$OUT/test-grid.tsv.key"; echo "$C_NORM $C_GW"; } | sha256sum | cut -d' ' -f1)" staged_rows
    fi
    {
        echo "| $NAME, on the TEST split$PEEK_HOW | strategy | layers | image score | I-AUROC | P-AUROC | AUPRO |"
        echo "|---|---|---|---|---:|---:|---:|"
        awk -F'\t' -v s="$C_STRAT" -v l="$C_LAYERS" -v r="$C_SCORE" '
            function p(x) { return (x == "" || x == "null") ? "n/a" : sprintf("%.1f", 100 * x) }
            NR > 1 {
                if ($1 == s && $2 == l && $3 == r) chosen = sprintf("| validation-chosen | %s | %s | %s | %s | %s | %s |", $1, $2, $3, p($4), p($5), p($6))
                if (NR == 2) first = sprintf("| first grid row (former default) | %s | %s | %s | %s | %s | %s |", $1, $2, $3, p($4), p($5), p($6))
                if ($7 > b) { b = $7; best = sprintf("| best on test (peeking) | %s | %s | %s | %s | %s | %s |", $1, $2, $3, p($4), p($5), p($6)) } }
            END { print chosen; print first; print best }' "$PEEK_TSV"
        val_row "" < "$TC" | awk -F'\t' -v s="$C_STRAT" -v l="$C_LAYERS" -v r="$C_SCORE" -v how="bank $C_BANK, map norm $C_NORM$([ "$GLOBAL_STAGE" = 0 ] || echo ", global weight $C_GW")" '
            function p(x) { return (x == "" || x == "null") ? "n/a" : sprintf("%.1f", 100 * x) }
            { printf "| validation-chosen line as the recipes run it (%s) | %s | %s | %s | %s | %s | %s |\n", how, s, l, r, p($2), p($3), p($4) }'
    } > "$OUT/peek.md"
    cat "$OUT/peek.md" >&2
fi
cat "$OUT/tune.md"
