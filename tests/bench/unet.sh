#!/bin/sh
# unet.sh - DDAD-S (base 32, 2 heads, default multipliers) at 128 and 256:
# batch-1 and batch-4 forward, batch-4 training step and DDIM-10
# reconstruction, glad against the PyTorch reference (tests/ref/unet_ref.py)
# and ONNX Runtime (the same network exported by tests/ref/ort_export.py,
# opset 14, run by tests/bench/ort_run.js: CPU provider, 2 intra-op threads)
# on the same weights and 2 threads in the same run; glad in bf16 too where
# the CPU has AVX512_BF16; sgemm GFLOP/s as the machine's practical peak;
# then a per-layer profile of one DDIM step (batch-1 forward) at 256.
# Each figure is the fastest of its repetitions and of GLAD_BENCH_ROUNDS
# (default 3) alternating rounds. GFLOP/s are "effective": the
# FLOPs of direct convolutions per second (Winograd does 2.25x fewer
# multiplications for 3x3 convolutions on 16x16 planes and 4x fewer from
# 32x32 on, so this can pass the sgemm peak). ONNX Runtime needs node and
# the onnxruntime-node package in $GLAD_ORT_DIR (default $GLAD_BUILD/ort/node_modules,
# where make bench-deps puts it); without them its columns are skipped visibly.
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
ORTDIR=${GLAD_ORT_DIR:-$B/ort/node_modules}
ORT=1
if ! command -v node >/dev/null 2>&1 || [ ! -d "$ORTDIR/onnxruntime-node" ]; then
    ORT=0; echo "   ONNX Runtime skipped: node or $ORTDIR/onnxruntime-node missing (make bench-deps)"
fi
# glad, PyTorch and ONNX Runtime alternate for ROUNDS rounds and each keeps its
# best, so a slow spell of a shared machine does not fall on one side only
ROUNDS=${GLAD_BENCH_ROUNDS:-3}
# best KEY min|max FILES...: the smallest or largest value of KEY over the files
best() { k=$1 m=$2; shift 2; sed -n "s/^$k=//p" "$@" | sort -g | if [ "$m" = min ]; then head -1; else tail -1; fi; }
for S in 128 256; do
    r=1
    while [ $r -le "$ROUNDS" ]; do
        OMP_NUM_THREADS=2 "$B/bench/unet_bench" $S 32 2 "$T/w.safetensors" > "$T/c$r.txt" || { echo "   unet_bench failed"; exit 1; }
        OMP_NUM_THREADS=2 $PY tests/ref/unet_ref.py "$T/w.safetensors" $S 32 2 2 > "$T/p$r.txt" || { echo "   reference failed"; exit 1; }
        if [ $ORT = 1 ]; then
            if [ $r = 1 ] && ! $PY tests/ref/ort_export.py unet "$T/w.safetensors" "$T/u.onnx" > "$T/export.log" 2>&1; then
                ORT=0; echo "   ONNX Runtime skipped: export failed: $(tail -1 "$T/export.log")"
            fi
            if [ $ORT = 1 ] && ! node tests/bench/ort_run.js "$ORTDIR" "$T/u.onnx" $S "$([ $S -ge 256 ] && echo 3 || echo 6)" unet 1,4 > "$T/o$r.txt" 2> "$T/ort.log"; then
                ORT=0; echo "   ONNX Runtime skipped: $(tail -1 "$T/ort.log")"
            fi
        fi
        r=$((r + 1))
    done
    of1= of4=
    [ $ORT = 1 ] && { of1=$(best forward_b1_s min "$T"/o*.txt); of4=$(best forward_b4_s min "$T"/o*.txt); }
    awk -v S=$S -v cf="$(best forward_b1_s min "$T"/c*.txt)" -v pf="$(best forward_b1_s min "$T"/p*.txt)" -v of="$of1" \
        -v cf4="$(best forward_b4_s min "$T"/c*.txt)" -v pf4="$(best forward_b4_s min "$T"/p*.txt)" -v of4="$of4" \
        -v bf="$(best forward_b1_bf16_s min "$T"/c*.txt)" -v bf4="$(best forward_b4_bf16_s min "$T"/c*.txt)" \
        -v bd="$(best ddim10_bf16_images_per_s max "$T"/c*.txt)" -v bt="$(best train_b4_bf16_s min "$T"/c*.txt)" \
        -v ct="$(best train_b4_s min "$T"/c*.txt)" -v pt="$(best train_b4_s min "$T"/p*.txt)" \
        -v cd="$(best ddim10_images_per_s max "$T"/c*.txt)" -v pd="$(best ddim10_images_per_s max "$T"/p*.txt)" \
        -v gf="$(best forward_gflops max "$T"/c*.txt)" -v gt="$(best train_gflops max "$T"/c*.txt)" -v peak="$(best sgemm_gflops max "$T"/c*.txt)" \
        -v mem="$(best peak_activation_mb max "$T"/c*.txt)" -v mem8="$(best peak_activation_b8_mb max "$T"/c*.txt)" 'BEGIN {
        ort = of != "" ? sprintf(" ORT %.3fs", of) : ""; ortr = of != "" ? sprintf("%.2fx ORT, ", of / cf) : ""
        printf "   DDAD-S %dx%d: forward b1 glad %.3fs%s torch %.3fs (%s%.2fx torch, %.0f effective GFLOP/s = %.0f%% of sgemm %.0f)\n", S, S, cf, ort, pf, ortr, pf / cf, gf, 100 * gf / peak, peak
        ort = of4 != "" ? sprintf(" ORT %.4fs", of4 / 4) : ""; ortr = of4 != "" ? sprintf("%.2fx ORT, ", of4 / cf4) : ""
        printf "   DDAD-S %dx%d: forward b4 per image glad %.4fs%s torch %.4fs (%s%.2fx torch)\n", S, S, cf4 / 4, ort, pf4 / 4, ortr, pf4 / cf4
        if (bf != "") {
            printf "   DDAD-S %dx%d: bf16 forward b1 glad %.3fs (%.2fx glad f32, %s%.2fx torch)\n", S, S, bf, cf / bf, of != "" ? sprintf("%.2fx ORT, ", of / bf) : "", pf / bf
            printf "   DDAD-S %dx%d: bf16 forward b4 per image glad %.4fs (%.2fx glad f32, %s%.2fx torch)\n", S, S, bf4 / 4, cf4 / bf4, of4 != "" ? sprintf("%.2fx ORT, ", of4 / bf4) : "", pf4 / bf4
            printf "   DDAD-S %dx%d: bf16 DDIM-10 glad %.2f img/s (%.2fx glad f32, %.2fx torch%s)\n", S, S, bd, bd / cd, bd / pd, of4 != "" ? sprintf(", %.2fx ORT as 10 batch-4 forwards", bd * 10 * of4 / 4) : ""
            if (bt != "") printf "   DDAD-S %dx%d: mixed-precision (bf16) train step b4 glad %.3fs (%.2fx glad f32, %.2fx torch f32)\n", S, S, bt, ct / bt, pt / bt
        } else printf "   DDAD-S %dx%d: bf16 skipped (no AVX512_BF16, or GLAD_NO_BF16 set)\n", S, S
        printf "   DDAD-S %dx%d: train step b4 glad %.3fs torch %.3fs (%.2fx, %.0f effective GFLOP/s, activations %d MB)\n", S, S, ct, pt, pt / ct, gt, mem
        printf "   DDAD-S %dx%d: DDIM-10 glad %.2f img/s torch %.2f img/s (%.2fx)%s\n", S, S, cd, pd, cd / pd, of4 != "" ? sprintf("; ORT as 10 batch-4 forwards %.2f img/s (%.2fx)", 4 / (10 * of4), cd * 10 * of4 / 4) : ""
        printf "   DDAD-S %dx%d: activations of a batch-8 training step %d MB\n", S, S, mem8 }'
    rm -f "$T"/c*.txt "$T"/p*.txt "$T"/o*.txt "$T"/u.onnx
done
# where the time of one DDIM step goes (issue #19): every layer of a batch-1
# forward at 256 timed, by kind and the slowest ones, f32 and bf16
echo "   per-layer profile (unet_bench --profile 256 32 2; per-op timing adds a little):"
OMP_NUM_THREADS=2 "$B/bench/unet_bench" --profile 256 32 2 | sed 's/^/   /'
