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
recipe_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --data) DATA=$2; shift 2 ;;
        --format) FORMAT=$2; shift 2 ;;
        --class) CLASS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
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
feat_opts() {
    local b
    b=${FEAT_BACKBONE:-$(feat_backbone)} || return 2
    if [ "$b" = mobilenetv2 ]; then
        echo "--backbone mobilenetv2 --weights $(mobilenet_weights) --size $FEAT_SIZE"
    else
        echo "--backbone unet --model $1${2:+ $2}"
    fi
}

md_header() {
    echo "| $1 (features: ${FEAT_BACKBONE:-unet}) | I-AUROC | P-AUROC | AUPRO |"
    echo "|---|---:|---:|---:|"
}

metrics_row() {
    local name=$1; shift
    glad-auroc --by none --format csv "$@" \
        | awk -F, -v n="$name" 'NR > 1 && $1 == "all" {
            f = "%.1f"; printf "| %s | " f " | " f " | " f " |\n", n, 100 * $4, 100 * $7, 100 * $10 }'
}
