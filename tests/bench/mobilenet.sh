#!/bin/sh
# mobilenet.sh - MobileNetV2 on one image at 224x224 and 512x512: glad running
# the real post-training-quantised .tflite (float graph) against torchvision's
# mobilenet_v2 (random weights, eval; tests/ref/mobilenet_ref.py) and ONNX
# Runtime running that torchvision model exported by tests/ref/ort_export.py
# (opset 14; tests/bench/ort_run.js, CPU provider, 2 intra-op threads), all on
# 2 threads in the same run. "blocks" = the first conv and the 17
# inverted-residual blocks (torch model.features[:18]); "forward" = the whole
# classifier (224 only). Prints images/s, the ratios and glad's GFLOP/s.
# Both glad and torch use libgomp; on a machine shared with other jobs spinning OpenMP
# threads starve each other (both sides slow down 10-30x), so waiting threads
# sleep (OMP_WAIT_POLICY=passive) unless the caller sets the policy; glad's
# blocks are timed once more under libgomp's default policy (spin a while,
# then sleep: what unet.sh and vit.sh run under), the bf16/f32 ratio printed
# for both (a parallel region or barrier costs tens of microseconds under
# passive, ~1 us under the default, and falls on both precisions). ONNX
# Runtime (node + onnxruntime-node in $GLAD_ORT_DIR, default
# $GLAD_BUILD/ort/node_modules from make bench-deps) is skipped visibly when missing.
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
W=${GLAD_SHARED:-../shared}/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if [ ! -r "$W" ]; then echo "   skipped: $W absent (../shared/weights)"; exit 0; fi
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then echo "   skipped: PyTorch/torchvision missing (make bench-deps)"; exit 0; fi
ORTDIR=${GLAD_ORT_DIR:-$B/ort/node_modules}
ORT=1
if ! command -v node >/dev/null 2>&1 || [ ! -d "$ORTDIR/onnxruntime-node" ]; then
    ORT=0; echo "   ONNX Runtime skipped: node or $ORTDIR/onnxruntime-node missing (make bench-deps)"
elif ! { $PY tests/ref/ort_export.py mobilenet "$T/blocks.onnx" blocks && $PY tests/ref/ort_export.py mobilenet "$T/full.onnx"; } > "$T/export.log" 2>&1; then
    ORT=0; echo "   ONNX Runtime skipped: export failed: $(tail -1 "$T/export.log")"
fi
get() { sed -n "s/^$1=//p" "$2"; }
for S in 224 512; do
    OMP_NUM_THREADS=2 "$B/bench/mobilenet_bench" $S "$W" > "$T/c.txt" || { echo "   mobilenet_bench failed"; exit 1; }
    if [ "$OMP_WAIT_POLICY" = passive ]; then
        env -u OMP_WAIT_POLICY OMP_NUM_THREADS=2 "$B/bench/mobilenet_bench" $S "$W" > "$T/cd.txt" || { echo "   mobilenet_bench failed"; exit 1; }
    else : > "$T/cd.txt"; fi
    OMP_NUM_THREADS=2 $PY tests/ref/mobilenet_ref.py $S 2 > "$T/p.txt" || { echo "   reference failed"; exit 1; }
    : > "$T/o.txt"; : > "$T/of.txt"
    if [ $ORT = 1 ]; then
        reps=$([ $S -le 256 ] && echo 15 || echo 5)
        node tests/bench/ort_run.js "$ORTDIR" "$T/blocks.onnx" $S $reps image 1 > "$T/o.txt" 2> "$T/ort.log" &&
            { [ $S != 224 ] || node tests/bench/ort_run.js "$ORTDIR" "$T/full.onnx" $S $reps image 1 > "$T/of.txt" 2>> "$T/ort.log"; } ||
            { ORT=0; echo "   ONNX Runtime skipped: $(tail -1 "$T/ort.log")"; : > "$T/o.txt"; : > "$T/of.txt"; }
    fi
    awk -v S=$S -v cb="$(get blocks_images_per_s "$T/c.txt")" -v pb="$(get blocks_images_per_s "$T/p.txt")" \
        -v ob="$(get forward_b1_s "$T/o.txt")" -v of="$(get forward_b1_s "$T/of.txt")" \
        -v gb="$(get blocks_gflops "$T/c.txt")" -v cf="$(get forward_images_per_s "$T/c.txt")" \
        -v pf="$(get forward_images_per_s "$T/p.txt")" -v gf="$(get forward_gflops "$T/c.txt")" -v bs="$(get blocks_bf16_s "$T/c.txt")" \
        -v ds="$(get blocks_s "$T/cd.txt")" -v dbs="$(get blocks_bf16_s "$T/cd.txt")" 'BEGIN {
        ort = ob != "" ? sprintf(" ORT %.2f img/s", 1 / ob) : ""; ortr = ob != "" ? sprintf("%.2fx ORT, ", cb * ob) : ""
        printf "   MobileNetV2 %dx%d (OMP_WAIT_POLICY=%s) blocks 0-16: glad %.2f img/s%s torch %.2f img/s (%s%.2fx torch, %.1f GFLOP/s)\n", S, S, ENVIRON["OMP_WAIT_POLICY"], cb, ort, pb, ortr, cb / pb, gb
        ort = of != "" ? sprintf(" ORT %.2f img/s", 1 / of) : ""; ortr = of != "" ? sprintf("%.2fx ORT, ", cf * of) : ""
        if (bs != "") printf "   MobileNetV2 %dx%d blocks 0-16 bf16: glad %.2f img/s (%.2fx glad f32, %s%.2fx torch f32)\n", S, S, 1 / bs, 1 / (bs * cb), ob != "" ? sprintf("%.2fx ORT, ", ob / bs) : "", 1 / (bs * pb)
        else printf "   MobileNetV2 %dx%d blocks 0-16 bf16: skipped (no AVX512_BF16, or GLAD_NO_BF16 set)\n", S, S
        if (ds != "" && dbs != "") printf "   MobileNetV2 %dx%d blocks 0-16, default wait policy: glad f32 %.2f img/s, bf16 %.2f img/s (%.2fx)\n", S, S, 1 / ds, 1 / dbs, ds / dbs
        if (cf != "") printf "   MobileNetV2 %dx%d full forward: glad %.2f img/s%s torch %.2f img/s (%s%.2fx torch, %.1f GFLOP/s)\n", S, S, cf, ort, pf, ortr, cf / pf, gf }'
done
