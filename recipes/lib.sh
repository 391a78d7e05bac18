# lib.sh - sourced by the recipes: programs on PATH, common options, make-like
# caching of intermediate streams, and markdown table rows from glad-auroc.
#
#   cached OUT 'PIPELINE'   run PIPELINE (a shell string) with stdout to OUT, unless
#                           OUT exists and was made by the same command line from
#                           the same input files (sha256 of the command and of every
#                           existing file named in it, stored in OUT.key). A
#                           pipeline that writes its own file uses @OUT in place of
#                           the path; stdout is then ignored. Writes are atomic.
#   metrics_row NAME FILE...  "| NAME | I-AUROC | P-AUROC | AUPRO |" (percent) of the
#                           scored streams FILE...

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -d "$ROOT/build" ] && export PATH="$ROOT/build:$PATH"

# defaults shared by the recipes; each recipe parses its own arguments with recipe_args
DATA="" FORMAT=mvtec CLASS=pill OUT="" SIZE=64 STEPS=300 BATCH=8 SEED=1 CHANNELS=3
# The knobs (recipes that take them set KNOBS=1 before recipe_args; unset, the
# options are refused as before): --preset P (glad-train preset), --feat-layers
# LIST, --image-score R, --tile N [--overlap P] (train on N x N tiles, score at
# the native size: glad-tile split / merge), --tune (recipes/tune.sh first; its
# model, strategy, layers, image score and threshold), --bank-mode
# none|replace|union|add (score against a memory bank of the training images'
# features too: glad-bank, glad-score --bank) with --bank-subsample F (the
# random fraction of the training positions the bank keeps; default 1),
# --map-norm none|quantile:Q (glad-score --map-norm: each map less its own
# Q-quantile before the image score; with --tile the merged map's),
# --standardize S (glad-features --standardize: every image fed to the feature
# backbone, bank and test alike, first brought to mean 0 and standard deviation
# S on the [-1,1] scale, clipped; 0 = none; T:S with T tanh or open: the values
# beyond +-1 squashed or left, glad-features --standardize-tail T), --feat-also-size LIST
# (glad-features --also-size: MobileNetV2's layers at these input sides too,
# their maps summed with those at FEAT_SIZE; none = no other size),
# --bank-norm none|ratio|diff (glad-score --bank-norm: each bank distance read
# against its nearest bank vector's radius; the banks then made with glad-bank
# --radius BANK_RADIUS).
# Empty = the recipe's own.
# --size native (NATIVE=1): images at their own size and aspect ratio (native:F:
# scaled by F, glad-encode --scale, the aspect ratio kept); without
# --tile only for what trains no model (tune.sh --no-recon, mtd.sh's bank alone)
# and MobileNetV2 features then run on the native image too (no --size).
KNOBS=${KNOBS:-0} PRESET=tiny FEAT_LAYERS="" IMAGE_SCORE="" TILE=0 OVERLAP=0 TUNE=0 SIZE_GIVEN=0 TUNE_GRID=full NATIVE=0 NATIVE_SCALE=""
BANK_MODE="" BANK_SUBSAMPLE="" BANK_FILE="" MAP_NORM="" FEAT_STD="" FEAT_ALSO="" BANK_NORM=""
# the radii's reference fraction (glad-bank --radius) of a bank read with a bank
# norm: a seeded quarter of the bank's vectors (the radii cost F x the square of
# the vectors; a quarter is what session 35's numpy check on mtd-train's
# validation used, before the recipes took the knob)
BANK_RADIUS=0.25
knob_arg() {   # knob_arg OPTION VALUE: 1 (consume 2), 2 (consume 1) or 0 (not a knob)
    [ "$KNOBS" = 1 ] || return 0
    case "$1" in
    --preset) PRESET=$2; return 1 ;;
    --feat-layers) FEAT_LAYERS=$2; return 1 ;;
    --image-score) IMAGE_SCORE=$2; return 1 ;;
    --tile) TILE=$2; return 1 ;;
    --overlap) OVERLAP=$2; return 1 ;;
    --tune) TUNE=1; return 2 ;;
    --tune-grid) TUNE_GRID=$2; return 1 ;;   # tune.sh --grid (quick: the tests)
    --bank-mode) BANK_MODE=$2; return 1 ;;
    --bank-subsample) BANK_SUBSAMPLE=$2; return 1 ;;
    --map-norm) MAP_NORM=$2; return 1 ;;
    --standardize) FEAT_STD=$2; return 1 ;;
    --feat-also-size) FEAT_ALSO=$2; return 1 ;;
    --bank-norm) BANK_NORM=$2; return 1 ;;
    esac
    return 0
}
knob_check() {
    [[ "$TILE" =~ ^[0-9]+$ ]] && [[ "$OVERLAP" =~ ^[0-9]+$ ]] || { echo "$(basename "$0"): --tile and --overlap take pixel counts" >&2; exit 2; }
    [ "$TILE" = 0 ] || [ "$OVERLAP" -lt "$TILE" ] || { echo "$(basename "$0"): --overlap must be below --tile" >&2; exit 2; }
    [ "$TILE" != 0 ] || [ "$OVERLAP" = 0 ] || { echo "$(basename "$0"): --overlap needs --tile" >&2; exit 2; }
    case "$BANK_MODE" in ""|none|replace|union|add) ;; *) echo "$(basename "$0"): --bank-mode is none, replace, union or add" >&2; exit 2 ;; esac
    case "$BANK_NORM" in ""|none|ratio|diff) ;; *) echo "$(basename "$0"): --bank-norm is none, ratio or diff" >&2; exit 2 ;; esac
    case "$MAP_NORM" in ""|none) ;; quantile:*) awk -v q="${MAP_NORM#quantile:}" 'BEGIN { exit !(q ~ /^[0-9]*\.?[0-9]+$/ && q <= 1) }' \
        || { echo "$(basename "$0"): --map-norm quantile:Q takes Q from 0 to 1" >&2; exit 2; } ;;
        *) echo "$(basename "$0"): --map-norm is none or quantile:Q" >&2; exit 2 ;; esac
    [ -z "$FEAT_STD" ] || is_std "$FEAT_STD" \
        || { echo "$(basename "$0"): --standardize takes a number S, 0 (none) < S <= 8, or T:S with T clip, tanh or open or a list of them such as clip,tanh (glad-features --standardize-tail)" >&2; exit 2; }
    [ -z "$FEAT_ALSO" ] || is_also "$FEAT_ALSO" \
        || { echo "$(basename "$0"): --feat-also-size takes none or sizes N,M (multiples of 32, at most 4)" >&2; exit 2; }
    [ -z "$BANK_SUBSAMPLE" ] || awk -v f="$BANK_SUBSAMPLE" 'BEGIN { exit !(f > 0 && f <= 1) }' || { echo "$(basename "$0"): --bank-subsample must be in (0,1]" >&2; exit 2; }
}
# is_factor F: F is a plain decimal number (native:F's scale factor)
is_factor() { [[ "$1" =~ ^[0-9]*\.?[0-9]+$ ]]; }
# is_std S: S is a plain decimal number up to glad-features' 8 (--standardize;
# 0 = none), or T:S with S above 0 and T the values' tail beyond +-1, clip
# (the default), tanh or open (glad-features --standardize-tail T), or a list
# of them without one twice, T,U:S (the features under each tail, the pixel-wise
# maximum of their maps: glad-features --standardize-tail T,U)
is_std() {
    case "$1" in
    *:*) [[ "${1%%:*}" =~ ^(clip|tanh|open)(,(clip|tanh|open)){0,2}$ ]] && [ -z "$(echo "${1%%:*}" | tr , '\n' | sort | uniq -d)" ] \
        && is_factor "${1#*:}" && awk -v s="${1#*:}" 'BEGIN { exit !(s > 0 && s <= 8) }' ;;
    *) is_factor "$1" && awk -v s="$1" 'BEGIN { exit !(s <= 8) }' ;;
    esac
}
# std_s / std_tail: S and T (or T,U) of an --standardize value S or T:S (T clip when not given)
std_s() { echo "${1#*:}"; }
std_tail() { case "$1" in *:*) echo "${1%%:*}" ;; *) echo clip ;; esac; }
# is_also LIST: none, or 1-4 comma-separated multiples of 32 up to 8192
# (--feat-also-size; glad-features refuses one twice or equal to --size)
is_also() { [ "$1" = none ] || { [[ "$1" =~ ^[1-9][0-9]*(,[1-9][0-9]*){0,3}$ ]] && awk -v l="$1" 'BEGIN { n = split(l, a, ","); for (i = 1; i <= n; i++) if (a[i] % 32 || a[i] > 8192) exit 1 }'; }; }
recipe_args() {
    local k
    while [ $# -gt 0 ]; do
        k=0; knob_arg "$1" "${2:-}" || k=$?
        if [ "$k" = 1 ]; then shift 2; continue; elif [ "$k" = 2 ]; then shift; continue; fi
        case "$1" in
        --data) DATA=$2; shift 2 ;;
        --format) FORMAT=$2; shift 2 ;;
        --class) CLASS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --size)
            case "$KNOBS:$2" in
            1:native) NATIVE=1 NATIVE_SCALE="" SIZE_GIVEN=0 ;;
            1:native:*) NATIVE=1 NATIVE_SCALE=${2#native:} SIZE_GIVEN=0
                is_factor "$NATIVE_SCALE" || { echo "$(basename "$0"): --size native:F takes a scale factor F" >&2; exit 2; } ;;
            *) SIZE=$2 SIZE_GIVEN=1 NATIVE=0 ;;
            esac
            shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --channels) CHANNELS=$2; shift 2 ;;
        --backbone) BACKBONE=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "$(basename "$0"): unknown option $1" >&2; exit 2 ;;
        esac
    done
    if [ -z "$DATA" ]; then
        DATA="$ROOT/results/demo-data-$SIZE"
        if [ ! -f "$DATA/.complete" ]; then
            rm -rf "$DATA"
            glad-synth --make-dataset "$DATA" --size "$SIZE" >&2
            touch "$DATA/.complete"
        fi
    fi
    knob_check
    OUT=${OUT:-$ROOT/results/$(basename "$0" .sh)}
    mkdir -p "$OUT"
    FEAT_BACKBONE=$(feat_backbone) || exit 2
    echo "$(basename "$0"): feature backbone: $FEAT_BACKBONE" >&2
}

cached() {
    local out=$1 cmd=$2 key w
    key=$({
        printf '%s\n' "$cmd"
        for w in $cmd; do
            w=${w%;}; w=${w%\'}; w=${w#\'}
            if [ -f "$w" ]; then sha256sum "$w" | cut -d' ' -f1; fi
        done
    } | sha256sum | cut -d' ' -f1)
    if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
        echo "cached: $(basename "$out")" >&2
        return 0
    fi
    echo "making: $(basename "$out")" >&2
    if [[ "$cmd" == *@OUT* ]]; then
        bash -c "set -eo pipefail; ${cmd//@OUT/$out.tmp}" > /dev/null
    else
        bash -c "set -eo pipefail; $cmd" > "$out.tmp"
    fi
    mv "$out.tmp" "$out"
    echo "$key" > "$out.key"
}

# the encoded train/test streams and a DDPM model of the class (DDAD, MDPS)
ddpm_setup() {
    local enc="glad-encode --format $FORMAT $DATA --class $CLASS --size $SIZE --channels $CHANNELS"
    cached "$OUT/train.msgpack" "$enc --split train"
    cached "$OUT/test.msgpack" "$enc --split test"
    cached "$OUT/ddpm.model" "glad-train --preset tiny --loss ddpm --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"
}

# The feature backbone of the recipes. BACKBONE=auto (default) takes MobileNetV2
# (ImageNet features read from a .tflite file) when its weights are in
# $GLAD_WEIGHTS (a folder) or in datasets/weights/ (datasets/weights/fetch.sh
# puts them there), and the built-in unet backbone (the trained model's own
# encoder, no download) otherwise; BACKBONE=unet or mobilenetv2 forces one.
# FEAT_SIZE is the MobileNetV2 input side (images are upsampled to it).
BACKBONE=${BACKBONE:-auto} FEAT_SIZE=${FEAT_SIZE:-256}
mobilenet_weights() {
    local d f
    for d in ${GLAD_WEIGHTS:-} "$ROOT/datasets/weights"; do
        for f in tf2_mobilenet_v2_1.0_224_ptq.tflite mobilenet_v2_1.0_224_quant.tflite; do
            [ -f "$d/$f" ] && { echo "$d/$f"; return 0; }
        done
    done
    return 0
}
# feat_backbone: the backbone the recipes use ("mobilenetv2" or "unet")
feat_backbone() {
    case "$BACKBONE" in
    unet) echo unet ;;
    mobilenetv2)
        [ -n "$(mobilenet_weights)" ] || { echo "recipes: BACKBONE=mobilenetv2 but no weights in \$GLAD_WEIGHTS or datasets/weights (datasets/weights/fetch.sh)" >&2; exit 2; }
        echo mobilenetv2 ;;
    auto) if [ -n "$(mobilenet_weights)" ]; then echo mobilenetv2; else echo unet; fi ;;
    *) echo "recipes: BACKBONE must be auto, unet or mobilenetv2" >&2; exit 2 ;;
    esac
}
# feat_opts MODEL [UNET_OPTIONS]: the glad-features options of that backbone
# (--feat-layers replaces the layers of UNET_OPTIONS and the backbone's default;
# --standardize S appended when S is set and not 0)
feat_opts() {
    local b
    b=${FEAT_BACKBONE:-$(feat_backbone)} || return 2
    if [ "$b" = mobilenetv2 ]; then
        local fs=""
        ! feat_at_size || fs=" --size $FEAT_SIZE"   # native images: features at their own size
        echo "--backbone mobilenetv2 --weights $(mobilenet_weights)$fs${FEAT_LAYERS:+ --layers $FEAT_LAYERS}$(std_opt)$(also_opt)"
    elif [ -n "$FEAT_LAYERS" ]; then
        echo "--backbone unet --model $1 --layers $FEAT_LAYERS$(std_opt)"
    else
        echo "--backbone unet --model $1${2:+ $2}$(std_opt)"
    fi
}
# std_opt: " --standardize S" when S is set and not 0 (else nothing: the command
# lines, and so the caches, are as before)
# and " --standardize-tail T" after it for a tail other than clip (T:S)
std_opt() {
    local s t
    s=$(std_s "${FEAT_STD:-0}") t=$(std_tail "${FEAT_STD:-0}")
    awk -v s="$s" -v t="$t" 'BEGIN { if (s > 0) printf " --standardize %s%s", s, (t != "clip" ? " --standardize-tail " t : "") }'
}
# feat_at_size: MobileNetV2 runs at FEAT_SIZE (not on native images, which
# without --tile run at their own size)
feat_at_size() { [ "$NATIVE" = 0 ] || [ "$TILE" != 0 ]; }
# also_opt: " --also-size LIST" when LIST is set and not none and MobileNetV2
# runs at FEAT_SIZE (what feat_opts passes, and so what tune.json and table.md say)
also_opt() {
    case "${FEAT_ALSO:-none}" in none) return 0 ;; esac
    feat_at_size && [ "${FEAT_BACKBONE:-$(feat_backbone)}" = mobilenetv2 ] && echo " --also-size $FEAT_ALSO"
    return 0
}

# --- knob helpers (empty strings when the knob is not given: commands unchanged)
# size_opt: glad-encode's --size SIZE, except with --size native (nothing, or --scale F)
# or --tile and no --size (native size)
size_opt() {
    if [ "$NATIVE" = 1 ]; then echo "${NATIVE_SCALE:+--scale $NATIVE_SCALE}"
    elif [ "$TILE" != 0 ] && [ "$SIZE_GIVEN" = 0 ]; then echo ""
    else echo "--size $SIZE"; fi
}
# size_arg: the --size option as the recipes take it (native[:F] or N)
size_arg() { if [ "$NATIVE" = 1 ]; then echo "--size native${NATIVE_SCALE:+:$NATIVE_SCALE}"; else size_opt; fi; }
# tile_split / tile_merge DEFAULT_IMAGE_SCORE: pipeline tails (" | glad-tile ...")
tile_split() { [ "$TILE" = 0 ] || echo " | glad-tile --tile $TILE --overlap $OVERLAP"; }
# (with --tile and a map normalisation: the merged map normalised and rescored,
# glad-score --rescore, not each tile's)
tile_merge() { [ "$TILE" = 0 ] || echo " | glad-tile --merge --image-score ${IMAGE_SCORE:-$1}$(norm_merged "${IMAGE_SCORE:-$1}")"; }
# score_opts: glad-score options after the preset
score_opts() { echo "${IMAGE_SCORE:+ --image-score $IMAGE_SCORE}$(bank_opts)$(norm_opts)"; }
# norm_opts: glad-score's --map-norm when one other than none is set (none: the
# option left out, so the command lines and their caches are as before); with
# --tile nothing here: a tile's own baseline is not the image's (norm_merged)
norm_opts() { [ "$TILE" != 0 ] || case "$MAP_NORM" in ""|none) ;; *) echo " --map-norm $MAP_NORM" ;; esac; }
# norm_merged R: with --tile and a map normalisation, the tail that normalises the
# merged maps and scores them with image score R
norm_merged() { case "$MAP_NORM" in ""|none) ;; *) echo " | glad-score --rescore --image-score $1 --map-norm $MAP_NORM" ;; esac; }
# bank_opts: glad-score's bank options when a bank mode other than none is set
bank_opts() { case "$BANK_MODE" in ""|none) ;; *) echo " --bank $BANK_FILE --bank-mode $BANK_MODE$(bnorm_opt)" ;; esac; }
# bnorm_opt / radius_opt: glad-score's " --bank-norm M" and glad-bank's " --radius F"
# when a bank norm other than none is set (none: left out, commands and caches as before)
bnorm_opt() { case "$BANK_NORM" in ""|none) ;; *) echo " --bank-norm $BANK_NORM" ;; esac; }
radius_opt() { case "$BANK_NORM" in ""|none) ;; *) echo " --radius $BANK_RADIUS" ;; esac; }
# bank_build MODEL TRAIN OUT [GLAD_BANK_OPTION...]: the memory bank of TRAIN's clean
# images (their features as glad-features computes the test's, --bank-subsample,
# seeded; the options passed on to glad-bank)
bank_build() {
    local m=$1 t=$2 o=$3; shift 3
    cached "$o" "glad-features $(feat_opts "$m") --input image $t | glad-bank --subsample ${BANK_SUBSAMPLE:-1}$(radius_opt) --seed $SEED${*:+ $*} -o @OUT"
}
# the same as filters (cat when not tiling), for recipes that run pipelines directly
tile_split_f() { if [ "$TILE" = 0 ]; then cat; else glad-tile --tile "$TILE" --overlap "$OVERLAP"; fi; }
tile_merge_f() { if [ "$TILE" = 0 ]; then cat; else local t; t=$(tile_merge "$1"); eval "${t# | }"; fi; }
# knob_args: the knobs as options again (to pass them on to tune.sh; not --size)
knob_args() {
    echo "--preset $PRESET --grid $TUNE_GRID${FEAT_LAYERS:+ --feat-layers $FEAT_LAYERS}${IMAGE_SCORE:+ --image-score $IMAGE_SCORE}$([ "$TILE" = 0 ] || echo " --tile $TILE --overlap $OVERLAP")${BANK_MODE:+ --bank-mode $BANK_MODE}${BANK_SUBSAMPLE:+ --bank-subsample $BANK_SUBSAMPLE}${MAP_NORM:+ --map-norm $MAP_NORM}${FEAT_STD:+ --standardize $FEAT_STD}${FEAT_ALSO:+ --feat-also-size $FEAT_ALSO}${BANK_NORM:+ --bank-norm $BANK_NORM}"
}
# tune_md_row NAME DIR: "| NAME | strategy | layers | image score | validation figures |"
tune_md_header() {
    echo "| knobs chosen by tune.sh | denoising | feature layers | image score | how (validation only) |"
    echo "|---|---|---|---|---|"
}
# JQ_MAP_NORM: a jq expression, ", map NORM" when tune.json's choice has a map
# normalisation, else "", then ", global W" when it has a whole-image Gaussian
# weight (tune_md_row and mtd-tune.sh's candidate rows)
JQ_MAP_NORM='(if (.choice.map_norm // "none") != "none" then ", map " + .choice.map_norm else "" end) + (if (.choice.global_weight // 0) > 0 then ", global \(.choice.global_weight)" else "" end)'
tune_md_row() {
    jq -r --arg n "$1" '"| \($n) | \(.choice.strategy) | \(.choice.layers) | \(.choice.image_score)\(if (.choice.bank_mode // "none") != "none" then ", bank " + .choice.bank_mode else "" end)\('"$JQ_MAP_NORM"') | \(.how) |"' "$2/tune.json"
}
# tune_class DIR [OPTION...]: tune.sh on the recipe's class (its data, size, steps
# and knobs; the OPTIONs before the knobs, so a knob the user gave wins) into DIR,
# then tune_load DIR (the ablation recipes' and mtd.sh's --tune)
tune_class() {
    tune_run "$@" || return
    tune_load "$1"
}
tune_run() {
    local dir=$1; shift
    (bash "$ROOT/recipes/tune.sh" --data "$DATA" --format "$FORMAT" --class "$CLASS" --channels "$CHANNELS" $(size_arg) \
        --steps "$STEPS" --batch "$BATCH" --seed "$SEED" --backbone "$FEAT_BACKBONE" "$@" $(knob_args) --out "$dir") >&2
}
# calibrate_class DIR [OPTION...]: tune.sh as tune_class, every knob given by the
# caller (so nothing is chosen), for the decision threshold alone: sets
# DIR/tune.env's TUNE_* (TUNE_THRESHOLDS: DIR/thresholds.json; TUNE_NOTE) and no
# knob (tune_load is what takes the choices)
calibrate_class() {
    # (GLAD_TUNE_CALIBRATE_ONLY: tune.sh makes no recipes' bank, which the caller
    # does not use: the bank alone's of the held-out shards would cost a search
    # of its radii for nothing)
    (export GLAD_TUNE_CALIBRATE_ONLY=1; tune_run "$@") || return
    . "$1/tune.env"
}
# the figures at a calibrated threshold (glad-auroc -t) as a markdown table:
# decision_md_header, then decision_md_row NAME SCORED THRESHOLDS per class, then
# decision_md_how THRESHOLDS (how that threshold was calibrated, one sentence)
decision_md_header() {
    echo "| decisions at the calibrated threshold | image threshold | I-Prec | I-Rec | I-F1 | I-Acc | P-Prec | P-Rec | P-F1 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
}
decision_md_row() {
    glad-auroc --by none --format csv -t "$3" "$2" \
        | awk -F, -v n="$1" -v t="$(jq -r '.image_threshold' "$3")" 'NR > 1 && $1 == "all" {
            printf "| %s | %.4g | %s | %s | %s | %s | %s | %s | %s |\n", n, t, p($12), p($13), p($14), p($15), p($16), p($17), p($18) }
        function p(x) { return x ~ /^[0-9.eE+-]+$/ ? sprintf("%.1f", 100 * x) : "n/a" }'
}
decision_md_how() {
    jq -r '"Threshold: glad-auroc --calibrate, \(.method)\(if .target_fpr then " \(.target_fpr * 100) %" else "" end), on the validation of \(.counts.normal) held-out normal and \(.counts.anomalous) synthetic anomalous training images: there false-positive rate \(.validation.image.fpr * 1000 | round / 10) %, recall \(.validation.image.tpr * 1000 | round / 10) %."' "$1"
}
# tune_load DIR: source DIR/tune.env (written by tune.sh) and take its choices
# for the knobs the user did not set
tune_load() {
    . "$1/tune.env"
    FEAT_LAYERS=${FEAT_LAYERS:-$TUNE_LAYERS}
    IMAGE_SCORE=${IMAGE_SCORE:-$TUNE_IMAGE_SCORE}
    BANK_MODE=${TUNE_BANK_MODE:-none} BANK_FILE=${TUNE_BANK:-}
    MAP_NORM=${MAP_NORM:-${TUNE_MAP_NORM:-}}
    # stage 4's weight (0: no whole-image Gaussian; tune.env files from before the stage)
    TUNE_GLOBAL_WEIGHT=${TUNE_GLOBAL_WEIGHT:-0}
}
# val_row LABEL: a scored validation stream (stdin) -> "LABEL<TAB>I-AUROC<TAB>P-AUROC<TAB>
# AUPRO<TAB>criterion", the criterion being the mean of the defined ones of the three
# (tune.sh's grid and bank stage, adapt_choose); LABEL may hold tabs
# VAL_AWK: awk's row(LABEL) printing that line from a glad-auroc --format csv row
VAL_AWK='function row(pre,   n, c, i, m) { n = 0; c = 0; split($4 "," $7 "," $10, m, ",")
    for (i = 1; i <= 3; i++) if (m[i] ~ /^[0-9.eE+-]+$/) { c += m[i]; n++ } else m[i] = "null"
    printf "%s\t%s\t%s\t%s\t%.6f\n", pre, m[1], m[2], m[3], n ? c / n : -1 }'
val_row() {
    glad-auroc --by none --format csv 2> >(grep -v "have split 'train'" >&2) \
        | awk -F, -v pre="$1" "$VAL_AWK"' NR > 1 && $1 == "all" { row(pre) }'
}
# kept_line TSV TOL: kept_row's trace as one sentence for the tables (after the first row)
kept_line() {
    kept_row "$1" "$2" trace | awk -F'\t' 'NR > 1 { s = s (s ? "; " : "") $1 " " ($2 == "n/a" ? "no criterion" : $2 " points (SE " $3 ")") ": " $4 }
        END { if (s) printf "Kept by the one-standard-error rule (each row against the one kept so far: its gain in points of the criterion and the standard error of the per-fold differences; it replaces the kept row only when the gain exceeds %s): %s.\n", (f > 0 ? sprintf("both that and %.1f point", 100 * f) : "that"), s }' f="$2"
}
# val_rows_by_defect: a scored validation stream (stdin) -> one val_row line per
# defect (glad-auroc --by defect: that defect's images and every normal one), the
# defect's name as LABEL (the class/ prefix dropped); the mean row left out
val_rows_by_defect() {
    glad-auroc --by defect --format csv 2> >(grep -v "have split 'train'" >&2) \
        | awk -F, "$VAL_AWK"' NR > 1 && $1 != "mean" { s = $1; sub(/^[^\/]*\//, "", s); row(s) }'
}
# best_row TSV [COLUMN]: the data row of TSV (a header line first) with the highest
# criterion in COLUMN (default the last), the first of equal ones; empty when no row
# has one (val_row's -1: no metric defined) -- tune.sh's grid, adapt_choose. (The later
# stages, which keep an earlier option within a margin, use kept_row below.)
best_row() {
    awk -F'\t' -v c="${2:-0}" 'NR > 1 { v = c ? $c : $NF; if (v + 0 >= 0 && (l == "" || v + 0 > b)) { b = v + 0; l = $0 } } END { print l }' "$1"
}
# kept_row TSV TOL: tune.sh's later stages and mtd-tune.sh's candidates, whose rows
# end in the per-fold criteria (comma-separated) and their mean, the row kept so
# far first. A later row replaces it only when its criterion is higher by more than
# the margin max(TOL, SE) (with per-fold criteria, "higher" is the mean of the paired
# differences), SE the standard error of the paired per-fold differences,
# sd(d_j) / sqrt(K) with d_j = crit_j(row) - crit_j(kept) over the K folds (no SE
# with one fold, or a fold without a criterion). A gain smaller than the folds'
# own disagreement about it is not evidence (the one-standard-error rule, Hastie,
# Tibshirani & Friedman, ESL 7.10): the earlier, simpler option stays.
# With a third argument "trace": per data row its first column, its gain over the row
# kept when it came (percentage points; "-" for the first, "n/a" without a criterion),
# that standard error and "kept" / "replaces" / "stays" (the first row kept, a later
# one replacing it, or not) -- what the tables print beside the rows.
kept_row() {
    awk -F'\t' -v tol="${2:-0}" -v trace="${3:-}" '
        NR > 1 { v = $NF + 0
                 if (v < 0) { if (trace) print $1 "\tn/a\tn/a\tstays"; next }
                 if (l == "") { b = v; bf = $(NF - 1); l = $0; if (trace) print $1 "\t-\t-\tkept"; next }
                 # with per-fold criteria the gain is their mean difference, the quantity the SE is of
                 m = tol; g = v - b; se = paired_se($(NF - 1), bf); if (se > m) m = se; if (PN > 1) g = PG
                 w = g > m ? "replaces" : "stays"
                 if (trace) printf "%s\t%+.2f\t%.2f\t%s\n", $1, 100 * g, 100 * se, w
                 if (w == "replaces") { b = v; bf = $(NF - 1); l = $0 } }
        END { if (!trace) print l }
        # paired_se X Y: the standard error of the mean of X_j - Y_j (comma-separated), PN
        # the number of pairs and PG their mean (PN 0 and SE 0: no pairs to use)
        function paired_se(x, y,    n, k, a, c, i, d, s, ss) {
            PN = 0; n = split(x, a, ","); k = split(y, c, ",")
            if (n != k || n < 2) return 0
            for (i = 1; i <= n; i++) { if (a[i] + 0 < 0 || c[i] + 0 < 0) return 0; d = a[i] - c[i]; s += d; ss += d * d }
            PN = n; PG = s / n; s = (ss - s * s / n) / (n - 1)
            return s > 0 ? sqrt(s / n) : 0 }' "$1"
}
# tune_note IN OUT: IN with tune.sh's history entry (how the knobs were chosen)
tune_note() { perl "$ROOT/recipes/history-note.pl" tune.sh "$TUNE_VERSION" "${TUNE_NOTE[@]}" < "$1" > "$2.tmp" && mv "$2.tmp" "$2"; }

md_header() {
    echo "| $1 (features: ${FEAT_BACKBONE:-unet}) | I-AUROC | P-AUROC | AUPRO |"
    echo "|---|---:|---:|---:|"
}

metrics_row() {
    local name=$1; shift
    glad-auroc --by none --format csv "$@" \
        | awk -F, -v n="$name" 'NR > 1 && $1 == "all" {
            printf "| %s | %s | %s | %s |\n", n, p($4), p($7), p($10) }
        # an undefined metric (no anomalous image or pixel: an empty field) is n/a, not 0.0
        function p(x) { return x ~ /^[0-9.eE+-]+$/ ? sprintf("%.1f", 100 * x) : "n/a" }'
}

# --- feature extractors that learn (issue #21): choosing the epochs of
# glad-adapt on synthetic validation, never on the test set (ddad.sh
# --adapt-epochs auto, run.sh --dino-ft-epochs auto)
# holdout_shards N: the shard count of tune.sh's hold-out of N training normals
# (15 %, at least 4 images when the set allows; shard 0 is held out)
holdout_shards() {
    local n=$1 N
    N=$(awk 'BEGIN { n = int(1 / 0.15 + 0.5); print (n < 2 ? 2 : n) }')
    while [ "$N" -gt 2 ] && [ $(( (n + N - 1) / N )) -lt 4 ]; do N=$((N - 1)); done
    echo "$N"
}
# adapt_choose DIR MAX VAL 'FEATURE OPTIONS' 'SCORE OPTIONS': scores the
# validation stream VAL (reconstructed, labelled) with each DIR/feat{0..MAX},
# writes DIR/val.tsv (epochs, I-AUROC, P-AUROC, AUPRO, criterion: tune.sh's mean
# of the defined ones) and prints the epoch count of the highest criterion
# (ties keep the fewer epochs; feat0 is the backbone unadapted)
adapt_choose() {
    local dir=$1 max=$2 val=$3 fo=$4 so=$5 k
    printf 'epochs\ti_auroc\tp_auroc\taupro\tcriterion\n' > "$dir/val.tsv.tmp"
    for k in $(seq 0 "$max"); do
        cached "$dir/val-feat$k.scored.msgpack" "glad-features $fo --weights $dir/feat$k.safetensors $val | glad-score $so"
        val_row "$k" < "$dir/val-feat$k.scored.msgpack" >> "$dir/val.tsv.tmp"
    done
    mv "$dir/val.tsv.tmp" "$dir/val.tsv"
    k=$(best_row "$dir/val.tsv" 5 | cut -f1)
    echo "${k:-0}"
}
# adapt_md WHAT NAME DIR K HOW: the choice as a markdown table (like tune.sh's)
adapt_md() {
    echo "| $1 chosen on synthetic validation | epochs | how (validation only) |"
    echo "|---|---:|---|"
    echo "| $2 | $4 | $5 |"
    echo
    echo "| epochs | val I-AUROC | val P-AUROC | val AUPRO |"
    echo "|---:|---:|---:|---:|"
    awk -F'\t' 'function p(x) { return (x == "" || x == "null") ? "n/a" : sprintf("%.1f", 100 * x) }
        NR > 1 { printf "| %d | %s | %s | %s |\n", $1, p($2), p($3), p($4) }' "$3/val.tsv"
}
# dino_ft D MODEL TRAIN VAL EPOCHS MAX 'DENOISE OPTIONS' 'SCORE OPTIONS': GLAD's
# DINO fine-tuning of $VIT for one class, in D/dino: the training split TRAIN
# reconstructed with MODEL (glad-denoise DENOISE OPTIONS), glad-adapt -m dino-ft
# at $DINO_SIZE for EPOCHS (auto: MAX, then the count adapt_choose picks on the
# validation stream VAL). With VAL (tune.sh's) the decision threshold is
# calibrated again on it with the chosen weights (D/dino/thresholds.json).
# Prints the chosen epoch count; the weights are D/dino/feat{that}.safetensors.
dino_ft() {
    local d=$1 model=$2 train=$3 val=$4 e=$5 max=$6 den=$7 so=$8 E
    E=$e; [ "$E" = auto ] && E=$max
    mkdir -p "$d/dino"
    cached "$d/dino/train-recon.msgpack" "glad-denoise --model $model $den --seed $SEED $train"
    cached "$d/dino/feat$E.safetensors" "glad-adapt -m dino-ft -b $VIT --epochs $E --size $DINO_SIZE --seed $SEED -o $d/dino $d/dino/train-recon.msgpack; cp $d/dino/feat$E.safetensors @OUT"
    if [ -n "$val" ]; then
        cached "$d/dino/val-recon.msgpack" "glad-denoise --model $model $den --seed $SEED $val"
        if [ "$e" = auto ]; then e=$(adapt_choose "$d/dino" "$max" "$d/dino/val-recon.msgpack" "--backbone vit --size $DINO_SIZE" "$so")
        else cached "$d/dino/val-feat$e.scored.msgpack" "glad-features --backbone vit --size $DINO_SIZE --weights $d/dino/feat$e.safetensors $d/dino/val-recon.msgpack | glad-score $so"; fi
        cached "$d/dino/thresholds.json" "glad-auroc --calibrate @OUT $d/dino/val-feat$e.scored.msgpack 2> >(grep -v \"have split 'train'\" >&2)"
    fi
    echo "$e"
}
