#!/bin/bash
# mtd.sh - the Magnetic Tile Defect dataset with the split list the project
# ships (datasets/mtd/split.txt): grey tiles; by default (MobileNetV2 features)
# a memory bank of the training tiles alone, else the GLAD pipeline.
#
#   recipes/mtd.sh --data MTD_ROOT [--out DIR] [--size N|native[:F]] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2] [--split-file F]
#                                  [--preset P] [--feat-layers LIST] [--image-score R] [--map-norm M]
#                                  [--tile N [--overlap P]] [--bank-mode M] [--bank-subsample F]
#                                  [--tune] [--show-defaults] [--global-weight W] [--no-calibrate]
#                                  [--standardize S] [--feat-also-size LIST] [--bank-norm M]
#
# Defaults (no option given): the MTD_* values below, printed by --show-defaults
# as the "chosen:" line of datasets/mtd/tuning.md (tests/cli/recipes.sh checks
# that they agree): the line recipes/mtd-tune.sh chose on the synthetic
# validation of mtd-train (the training split alone): with MobileNetV2 features
# (the ones tuned) the memory bank alone (--bank-mode replace: each position's
# distance to its nearest training patch), so no model is trained and no tile
# reconstructed; every tile standardised to standard deviation 1.2 first
# (glad-features --standardize, bank and test alike), block 12 at 256, 160, 192,
# 320 and 384 px with their maps summed (glad-features --also-size
# 160,192,320,384), each bank distance over its nearest bank vector's radius plus
# the median radius (glad-score --bank-norm ratio, the bank made with glad-bank
# --radius 0.25), no map normalisation, the top-250 mean as image score (the
# twenty-fourth run; no whole-image Gaussian); all that twice, the standardised
# tile clamped beyond +-1 and squashed by tanh, and the pixel-wise maximum of
# the two maps scored (glad-features --standardize-tail clip,tanh: the
# twenty-fifth run's two lines, combined after it on their validation maps).
# --size native keeps each tile's own size and aspect ratio (the 704 sizes of
# MTD's tiles are not squashed into squares), features included;
# native:F scales every tile by F (glad-encode --scale), the aspect ratio kept.
# A model is trained when asked for (--bank-mode none | union | add: the
# reconstruction's distance alone, the minimum with the bank's, their sum) and
# with the unet backbone (no weights; no bank unless --bank-mode asks): it then
# uses the sixth run's line (MTD_MODEL_*: 256 px unless --size or --tile, fixed
# T' 250, and with MobileNetV2 blocks 5,12 and top-250 unless given); with the
# unet backbone the layers and image score are glad's own, untuned.
# --global-weight W (bank alone only, untiled): the bank also holds a whole-image
# Gaussian of MobileNetV2 block 16 (glad-bank --global 16) and each tile's image
# score gains W times its Mahalanobis distance (glad-score --global-weight; 0: none).
# Its default is MTD_GLOBAL_WEIGHT (now 0) for the bank alone untiled, else 0; with --tune
# tune.sh's stage 4 chooses it unless given (then fixed).
# Decisions: the bank alone (no model to train) is calibrated by default, --tune
# or not: without --tune, tune.sh with every knob given (nothing chosen) holds out
# MTD_FOLDS shards of the training tiles in turn, puts the validation anomalies on
# half of each, scores it against a bank of the other shards and calibrates the
# decision threshold on every fold's validation images (glad-auroc --calibrate,
# target FPR 1 %; OUT/calibrate/); each test tile then gets decision and pred_mask
# (glad-score --threshold-file), OUT/decisions.txt has the figures at the threshold,
# OUT/images.csv the per-image list and table.md a second table. The test tiles
# are scored against the bank of every training tile as without it (the held-out
# tiles' banks lack their own shard, so their scores run a little higher: the
# threshold errs towards fewer false alarms). --no-calibrate leaves it out (no
# decisions; a model's pipeline gets them from --tune only). With --tile the
# folds' tiles are merged before the calibration and the test images decided
# on their merged scores (glad-auroc -t).
# Knobs as in run.sh (--help there) replace a default. With --tune,
# recipes/tune.sh holds out training normals of the split list and chooses on
# them afresh (OUT/tune/; validation anomalies of CutPaste's family, drawn small
# defects, broad uneven areas and chips out of the edge, as the defaults' run; with
# MobileNetV2 features and no --bank-mode,
# tune.sh --no-recon --folds MTD_FOLDS: the bank alone, each row's criterion
# averaged over that many hold-out shards); the test tiles are never looked at.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Chosen by recipes/mtd-tune.sh on mtd-train's synthetic validation (the
# training split alone; datasets/mtd/tuning.md has the run, every candidate's
# figures and the candidates that were not affordable). MTD_SIZE=native: each
# tile at its own size (with MTD_TILE N: N x N tiles of it, merged).
# The tenth run chose for the bank alone (tune.sh --no-recon, averaged over four
# hold-out folds, validation anomalies of three families): no denoising, each map
# less its own 10th percentile (tune.sh's stage 3); the seventeenth, with the tiles
# standardised (S 1.2, among 0.5-3 and none), neither that nor the Gaussian; the
# nineteenth, block 12 at 192 px too (among none, 192 and 192,320), and with it
# the 10th percentile again; the twentieth, the same runs decided by the
# one-standard-error rule (lib.sh's kept_row): 192 px, and no map normalisation
# (its +0.18 point was within the folds' standard error of 0.44); the twenty-first,
# the same candidates validated with a fourth family, chips out of the tile's edge
# (glad-synth --family edge): 192 and 320 px; the twenty-second, that validation with
# further sizes (192,320,384 and 160,192,320,384): 160 and 384 px too (+0.19 point,
# SE 0.13); the twenty-fourth, that line with its bank distances read against the
# radii (--bank-norm ratio or diff): ratio (+1.71 points, SE 0.46; diff +0.40 more,
# within its SE 0.46); the twenty-fifth, that line with the tanh tail instead of
# the clamp (+0.1 point, SE 1.0: kept), and after it, on the two lines' own
# validation maps, the pixel-wise maximum of their maps: +1.8 points (SE 0.35,
# every fold; their sum +0.9), so both tails (clip,tanh).
MTD_SIZE=256 MTD_TILE=0 MTD_OVERLAP=0 MTD_STEPS=300
# each tile standardised before the backbone (glad-features --standardize; 0:
# none), an input candidate of mtd-tune.sh like the size (size:256+std:S); the
# bank alone's, with or without --tune. clip,tanh: the features of the tile
# clamped beyond +-1 and of it squashed by tanh, each tail's map as its own
# line's, the pixel-wise maximum of the two (glad-features --standardize-tail
# clip,tanh; tuning.md's twenty-fifth run and the check after it)
MTD_STANDARDIZE=clip,tanh:1.2
# MobileNetV2's block at further input sides, maps summed (glad-features
# --also-size; none: 256 px only), an input candidate of mtd-tune.sh
# (size:256+std:1.2+also:LIST); the bank alone's, with or without --tune
MTD_ALSO_SIZE=160,192,320,384
# how the bank alone's distances are read (glad-score --bank-norm: none, or against
# each nearest bank vector's radius, ratio or diff; glad-bank --radius), an input
# candidate of mtd-tune.sh (size:256+std:1.2+also:LIST+bn:M); the bank alone's,
# with or without --tune
MTD_BANK_NORM=ratio
MTD_DENOISE=""
MTD_LAYERS=12 MTD_IMAGE_SCORE=topk-mean:250 MTD_BANK_MODE=replace MTD_BANK_SUBSAMPLE=1
# glad-score --map-norm of the bank alone's maps (quantile:0.1: the nineteenth run's line)
MTD_MAP_NORM=none
# the validation anomalies those were chosen on (tune.sh --val-family), used by --tune too
MTD_VAL_FAMILY=cutpaste-mix,defect-mix,uneven,edge
# the hold-out shards the bank-alone choice is averaged over (tune.sh --folds), used by --tune too
MTD_FOLDS=4
# the weight of block 16's whole-image Gaussian in the bank alone's image score
# (glad-score --global-weight): tune.sh's stage 4 in the fourteenth run (the tenth
# run's line and folds again, the grid and stage 3 the same to the byte)
MTD_GLOBAL_WEIGHT=0
# When a model is trained after all (the unet backbone, or --bank-mode none, union
# or add): the sixth run's line (tuning.md), the last run that tuned the
# reconstruction -- its size unless --size or --tile is given, its denoising, and
# with MobileNetV2 features its layers and image score unless given
MTD_MODEL_SIZE=256 MTD_MODEL_DENOISE="--steps 250 --skip 25" MTD_MODEL_LAYERS=5,12 MTD_MODEL_IMAGE_SCORE=topk-mean:250
case "$MTD_SIZE" in native) NATIVE=1 ;; native:*) NATIVE=1 NATIVE_SCALE=${MTD_SIZE#native:} ;; *) SIZE=$MTD_SIZE ;; esac
TILE=$MTD_TILE OVERLAP=$MTD_OVERLAP STEPS=$MTD_STEPS
SPLIT="$ROOT/datasets/mtd/split.txt"
args=() have_data=0 user_size=0 GLOBAL_W= CALIBRATE=1
while [ $# -gt 0 ]; do
    case "$1" in
    --show-defaults) echo "chosen: --size $MTD_SIZE --tile $MTD_TILE --overlap $MTD_OVERLAP --standardize $MTD_STANDARDIZE --feat-also-size $MTD_ALSO_SIZE --bank-norm $MTD_BANK_NORM --steps $MTD_STEPS --denoise '$MTD_DENOISE' --feat-layers $MTD_LAYERS --image-score $MTD_IMAGE_SCORE --bank-mode $MTD_BANK_MODE --bank-subsample $MTD_BANK_SUBSAMPLE --map-norm $MTD_MAP_NORM --global-weight $MTD_GLOBAL_WEIGHT"; exit 0 ;;
    --split-file) SPLIT=$2; shift 2 ;;
    --global-weight) GLOBAL_W=${2:-}; shift 2 ;;
    --no-calibrate) CALIBRATE=0; shift ;;
    --data) have_data=1; args+=("$1" "$2"); shift 2 ;;
    --size) user_size=1; args+=("$1" "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done
[ "$have_data" = 1 ] || { echo "mtd.sh: --data MTD_ROOT (the folder with MT_*/Imgs) is required" >&2; exit 2; }
CHANNELS=1 KNOBS=1
recipe_args "${args[@]}" --format mtd
if [ "$TUNE" = 0 ] && [ "$FEAT_BACKBONE" = mobilenetv2 ]; then
    BANK_MODE=${BANK_MODE:-$MTD_BANK_MODE} BANK_SUBSAMPLE=${BANK_SUBSAMPLE:-$MTD_BANK_SUBSAMPLE}
fi
# --bank-mode replace with MobileNetV2 features scores each tile against the bank
# alone (glad-score: the reconstruction's distance is not used), so no model is
# trained and no tile reconstructed: the same scores, without their cost. With
# --tune that is the mode tune.sh chooses in (--no-recon) unless another is given.
BANK_ONLY=0
if [ "$FEAT_BACKBONE" = mobilenetv2 ]; then
    case "$TUNE:${BANK_MODE:-none}" in 0:replace|1:none|1:replace) BANK_ONLY=1 ;; esac
fi
# the standardisation was chosen for the bank alone's features (as the size)
[ "$BANK_ONLY" = 0 ] || FEAT_STD=${FEAT_STD:-$MTD_STANDARDIZE} FEAT_ALSO=${FEAT_ALSO:-$MTD_ALSO_SIZE} BANK_NORM=${BANK_NORM:-$MTD_BANK_NORM}
L=$MTD_LAYERS R=$MTD_IMAGE_SCORE DEN=""
if [ "$BANK_ONLY" = 0 ]; then
    L=$MTD_MODEL_LAYERS R=$MTD_MODEL_IMAGE_SCORE DEN=$MTD_MODEL_DENOISE
    if [ "$user_size" = 0 ] && [ "$TILE" = 0 ]; then
        NATIVE=0 NATIVE_SCALE="" SIZE=$MTD_MODEL_SIZE
        echo "mtd.sh: a model is trained: the sixth run's size $SIZE and denoising (the defaults are the bank alone's)" >&2
    fi
    [ "$NATIVE" = 0 ] || [ "$TILE" != 0 ] || { echo "mtd.sh: a model is trained on images of one size: --size native needs --tile N, or the bank alone (MobileNetV2 features, --bank-mode replace)" >&2; exit 2; }
fi
if [ "$TUNE" = 0 ] && [ "$FEAT_BACKBONE" = mobilenetv2 ]; then
    FEAT_LAYERS=${FEAT_LAYERS:-$L} IMAGE_SCORE=${IMAGE_SCORE:-$R}
    # the map normalisation was chosen for the bank alone's maps, untiled
    [ "$BANK_ONLY" = 0 ] || [ "$TILE" != 0 ] || MAP_NORM=${MAP_NORM:-$MTD_MAP_NORM}
fi
# --global-weight: the Gaussian of block 16 beside the bank alone's (glad-score adds it
# to the image score only; a merged tile image's score would drop it). A weight given
# is checked here (with --tune tune.sh applies it, not tuned); with --tune the weight
# is tune.sh's choice (below), else MTD_GLOBAL_WEIGHT for the bank alone untiled
if [ -n "$GLOBAL_W" ]; then
    awk -v w="$GLOBAL_W" 'BEGIN { exit !(w ~ /^[0-9]*\.?[0-9]+$/) }' || { echo "mtd.sh: --global-weight takes a number >= 0, not '$GLOBAL_W'" >&2; exit 2; }
    if awk -v w="$GLOBAL_W" 'BEGIN { exit !(w > 0) }'; then
        [ "$BANK_ONLY" = 1 ] && [ "$TILE" = 0 ] \
            || { echo "mtd.sh: --global-weight needs the bank alone (MobileNetV2 features, --bank-mode replace), without --tile" >&2; exit 2; }
    fi
elif [ "$TUNE" = 0 ] && [ "$BANK_ONLY" = 1 ] && [ "$TILE" = 0 ]; then
    GLOBAL_W=$MTD_GLOBAL_WEIGHT
fi
ENC="glad-encode --format mtd $DATA --split-file $SPLIT $(size_opt) --channels 1"
MODEL=$OUT/model THR="" DECIDE=0   # DECIDE: a threshold file (TUNE_THRESHOLDS) decides the test tiles
if [ "$TUNE" = 1 ]; then
    if [ "$BANK_ONLY" = 1 ]; then TUNE_MODE=(--no-recon --folds "$MTD_FOLDS"); else TUNE_MODE=(--bank); fi
    tune_class "$OUT/tune" --split-file "$SPLIT" --fg none "${TUNE_MODE[@]}" --bank-subsample "$MTD_BANK_SUBSAMPLE" --val-family "$MTD_VAL_FAMILY" ${GLOBAL_W:+--global-weight "$GLOBAL_W"}
    MODEL=$TUNE_MODEL DEN=$TUNE_DENOISE GLOBAL_W=$TUNE_GLOBAL_WEIGHT DECIDE=1
    [ "$TUNE_BANK_MODE" = replace ] || BANK_ONLY=0
fi
# GLOBAL: a whole-image Gaussian in the image score; FL: the layers glad-features
# computes then -- FEAT_LAYERS with block 16 added (once); else FEAT_LAYERS
GLOBAL=0 FL=$FEAT_LAYERS
if awk -v w="${GLOBAL_W:-0}" 'BEGIN { exit !(w > 0) }'; then
    GLOBAL=1
    case ",$FEAT_LAYERS," in *,16,*) ;; *) FL=$FEAT_LAYERS,16 ;; esac
fi
if [ "$TUNE" = 0 ]; then
    if [ "$BANK_ONLY" = 1 ]; then
        cached "$OUT/train.msgpack" "$ENC --split train$(tile_split)"
    else
        cached "$OUT/train.msgpack" "$ENC --split train$(tile_split) | glad-synth --seed $SEED --fg none"
        cached "$OUT/model" "glad-train --preset $PRESET --loss atp --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"
    fi
    if [ "$BANK_ONLY" = 1 ] && [ "$CALIBRATE" = 1 ]; then
        # the threshold of this line (every knob given: tune.sh chooses nothing)
        calibrate_class "$OUT/calibrate" --split-file "$SPLIT" --fg none --no-recon --folds "$MTD_FOLDS" \
            --val-family "$MTD_VAL_FAMILY" --map-norm "${MAP_NORM:-none}" --global-weight "${GLOBAL_W:-0}"
        DECIDE=1
    fi
    # the memory bank of the training tiles' features (--bank-mode other than none)
    # (with --global-weight: the same layers' vectors and the Gaussian of block 16)
    if [ "$GLOBAL" = 1 ]; then
        BANK_FILE=$OUT/bank-global.safetensors
        FEAT_LAYERS=$FL bank_build "$MODEL" "$OUT/train.msgpack" "$BANK_FILE" --layers "$FEAT_LAYERS" --global 16
    else
        case "${BANK_MODE:-none}" in none) ;; *) BANK_FILE=$OUT/bank.safetensors; bank_build "$MODEL" "$OUT/train.msgpack" "$BANK_FILE" ;; esac
    fi
fi
# the test tiles; with a threshold (tune.sh's, chosen or calibrated) their stream's
# history says how the knobs were chosen and the threshold calibrated, and each tile
# is decided by glad-score (tiles: glad-auroc -t below, on the merged scores)
if [ "$DECIDE" = 1 ]; then
    [ "$TILE" != 0 ] || THR=" --threshold-file $TUNE_THRESHOLDS"
    cached "$OUT/test-plain.msgpack" "$ENC --split test$(tile_split)"
    tune_note "$OUT/test-plain.msgpack" "$OUT/test.msgpack"
else
    cached "$OUT/test.msgpack" "$ENC --split test$(tile_split)"
fi
# the features: of the test tiles themselves (bank alone) or with their reconstructions
FEATS="glad-denoise --model $MODEL $DEN --seed $SEED $OUT/test.msgpack | glad-features $(feat_opts $MODEL)"
[ "$BANK_ONLY" = 0 ] || FEATS="glad-features $(FEAT_LAYERS=$FL feat_opts $MODEL) --input image $OUT/test.msgpack"
GW=""
[ "$GLOBAL" = 0 ] || GW=" --global-weight $GLOBAL_W"
cached "$OUT/scored.msgpack" "$FEATS | glad-score --preset glad$(score_opts)$GW$THR$(tile_merge topk-mean:250)"
{
    if [ "$BANK_ONLY" = 1 ]; then row="memory bank alone ($FEAT_BACKBONE features, no reconstruction)"; else row="GLAD ($FEAT_BACKBONE features)"; fi
    [ -z "$(std_opt)" ] || row="$row, each tile standardised to std $(std_s "$FEAT_STD") (glad-features --standardize$(case "$(std_tail "$FEAT_STD")" in
        tanh) echo "; the values beyond ±1 squashed by tanh, --standardize-tail tanh" ;; open) echo "; the values beyond ±1 left as they are, --standardize-tail open" ;;
        *,*) t=$(std_tail "$FEAT_STD"); echo "; features under each tail beyond ±1 (${t//,/, }), the pixel-wise maximum of their maps, --standardize-tail $t" ;; esac))"
    # "160, 192, 320 and 384 px": commas, "and" before the last
    if [ -n "$(also_opt)" ]; then
        sizes=${FEAT_ALSO//,/, }
        case "$sizes" in *", "*) sizes="${sizes%, *} and ${sizes##*, }" ;; esac
        row="$row, block features also at $sizes px, maps summed (glad-features --also-size)"
    fi
    case "${BANK_NORM:-none}" in
    ratio) row="$row, each bank distance over its nearest bank vector's radius plus the median radius (glad-score --bank-norm ratio)" ;;
    diff) row="$row, each bank distance less its nearest bank vector's radius (glad-score --bank-norm diff)" ;;
    esac
    [ "$GLOBAL" = 0 ] || row="$row + whole-image Gaussian of block 16, weight $GLOBAL_W"
    md_header "MTD"; metrics_row "$row" "$OUT/scored.msgpack"
    if [ "$TUNE" = 1 ]; then echo; tune_md_header; tune_md_row MTD "$OUT/tune"; fi
    if [ "$DECIDE" = 1 ]; then
        echo; decision_md_header; decision_md_row MTD "$OUT/scored.msgpack" "$TUNE_THRESHOLDS"
        echo; decision_md_how "$TUNE_THRESHOLDS"
    fi
} | tee "$OUT/table.md"
glad-auroc --by defect "$OUT/scored.msgpack" > "$OUT/by-defect.txt"
rm -f "$OUT/decisions.txt" "$OUT/images.csv"   # a run without thresholds leaves no stale ones
[ "$DECIDE" = 0 ] || glad-auroc --by none -t "$TUNE_THRESHOLDS" --per-image "$OUT/images.csv" "$OUT/scored.msgpack" > "$OUT/decisions.txt"
