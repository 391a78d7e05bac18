#!/bin/sh
# ads.sh - what GLAD's adaptive denoising steps cost: glad-denoise DDIM-10
# (T' 250, skip 25) with a DDAD-S model at 128x128, fixed step against --ads
# with the built-in unet backbone (and mobilenetv2 when ../shared/weights has
# it), in the same run. --threshold 10 never triggers, so ADS extracts
# features at every step: the worst case; the ratio is wall time ADS / fixed.
B=${GLAD_BUILD:-build}
PATH="$B:$PATH"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
S=128 N=4
glad-synth --make-dataset "$T/d" --classes fabric --size $S --train 1 --test-good $N --test-defect 0 2>/dev/null
glad-encode "$T/d" --split train | glad-train --preset ddad-s --steps 1 --batch 1 -o "$T/m.model" 2>/dev/null || { echo "   training failed"; exit 1; }
glad-encode "$T/d" --split test > "$T/test.msgpack"
secs() { s=$(date +%s.%N); "$@" "$T/test.msgpack" > /dev/null 2>&1 || { echo fail; return; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
export OMP_NUM_THREADS=2
common="--model $T/m.model --steps 250 --skip 25 --batch 1"
fixed=$(secs glad-denoise $common)
unet=$(secs glad-denoise $common --ads --saff --threshold 10 --min-step 0)
printf '   DDIM-10 %dx%d, %d images: fixed %.2fs; ADS+SAFF (unet backbone, every step) %.2fs = %sx fixed\n' $S $S $N "$fixed" "$unet" "$(ratio "$unet" "$fixed")"
W=${GLAD_SHARED:-../shared}/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
if [ -f "$W" ]; then
    mnet=$(secs glad-denoise $common --ads --saff --threshold 10 --min-step 0 --ads-backbone mobilenetv2 --ads-weights "$W")
    printf '   DDIM-10 %dx%d, %d images: ADS+SAFF (mobilenetv2 backbone, every step) %.2fs = %sx fixed\n' $S $S $N "$mnet" "$(ratio "$mnet" "$fixed")"
else
    echo "   mobilenetv2 ADS skipped: $W absent"
fi
