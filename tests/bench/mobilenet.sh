#!/bin/sh
# mobilenet.sh - MobileNetV2 on one image at 224x224 and 512x512: glad running
# the real post-training-quantised .tflite (float graph) against torchvision's
# mobilenet_v2 (random weights, eval; tests/ref/mobilenet_ref.py), both on 2
# threads in the same run. "blocks" = the first conv and the 17
# inverted-residual blocks (torch model.features[:18]); "forward" = the whole
# classifier (224 only). Prints images/s, the ratio glad/torch and glad's GFLOP/s.
# Both sides use libgomp; on a machine shared with other jobs spinning OpenMP
# threads starve each other (both sides slow down 10-30x), so waiting threads
# sleep (OMP_WAIT_POLICY=passive) unless the caller sets the policy.
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
W=${GLAD_SHARED:-../shared}/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if [ ! -r "$W" ]; then echo "   skipped: $W absent (../shared/weights)"; exit 0; fi
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then echo "   skipped: PyTorch/torchvision missing (make bench-deps)"; exit 0; fi
for S in 224 512; do
    OMP_NUM_THREADS=2 "$B/bench/mobilenet_bench" $S "$W" > "$T/c.txt" || { echo "   mobilenet_bench failed"; exit 1; }
    OMP_NUM_THREADS=2 $PY tests/ref/mobilenet_ref.py $S 2 > "$T/p.txt" || { echo "   reference failed"; exit 1; }
    get() { sed -n "s/^$1=//p" "$2"; }
    awk -v S=$S -v cb="$(get blocks_images_per_s "$T/c.txt")" -v pb="$(get blocks_images_per_s "$T/p.txt")" \
        -v gb="$(get blocks_gflops "$T/c.txt")" -v cf="$(get forward_images_per_s "$T/c.txt")" \
        -v pf="$(get forward_images_per_s "$T/p.txt")" -v gf="$(get forward_gflops "$T/c.txt")" 'BEGIN {
        printf "   MobileNetV2 %dx%d (OMP_WAIT_POLICY=%s) blocks 0-16: glad %.2f img/s torch %.2f img/s (%.2fx, %.1f GFLOP/s)\n", S, S, ENVIRON["OMP_WAIT_POLICY"], cb, pb, cb / pb, gb
        if (cf != "") printf "   MobileNetV2 %dx%d full forward: glad %.2f img/s torch %.2f img/s (%.2fx, %.1f GFLOP/s)\n", S, S, cf, pf, cf / pf, gf }'
done
