#!/bin/sh
# unet.sh - DDAD-S (base 32, 2 heads, default multipliers) at 128 and 256:
# batch-1 forward, batch-4 training step and DDIM-10 reconstruction, glad
# against the PyTorch reference (tests/ref/unet_ref.py) on the same weights and
# 2 threads in the same run; sgemm GFLOP/s as the machine's practical peak.
# Each figure is the fastest of its repetitions and of GLAD_BENCH_ROUNDS
# (default 3) alternating rounds. GFLOP/s are "effective": the
# FLOPs of direct convolutions per second (Winograd does 2.25x fewer
# multiplications for 3x3 convolutions on 16x16 planes and 4x fewer from
# 32x32 on, so this can pass the sgemm peak).
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
# glad and PyTorch alternate for ROUNDS rounds and each keeps its best, so a
# slow spell of a shared machine does not fall on one side only
ROUNDS=${GLAD_BENCH_ROUNDS:-3}
# best KEY min|max FILES...: the smallest or largest value of KEY over the files
best() { k=$1 m=$2; shift 2; sed -n "s/^$k=//p" "$@" | sort -g | if [ "$m" = min ]; then head -1; else tail -1; fi; }
for S in 128 256; do
    r=1
    while [ $r -le "$ROUNDS" ]; do
        OMP_NUM_THREADS=2 "$B/bench/unet_bench" $S 32 2 "$T/w.safetensors" > "$T/c$r.txt" || { echo "   unet_bench failed"; exit 1; }
        OMP_NUM_THREADS=2 $PY tests/ref/unet_ref.py "$T/w.safetensors" $S 32 2 2 > "$T/p$r.txt" || { echo "   reference failed"; exit 1; }
        r=$((r + 1))
    done
    awk -v S=$S -v cf="$(best forward_b1_s min "$T"/c*.txt)" -v pf="$(best forward_b1_s min "$T"/p*.txt)" \
        -v ct="$(best train_b4_s min "$T"/c*.txt)" -v pt="$(best train_b4_s min "$T"/p*.txt)" \
        -v cd="$(best ddim10_images_per_s max "$T"/c*.txt)" -v pd="$(best ddim10_images_per_s max "$T"/p*.txt)" \
        -v gf="$(best forward_gflops max "$T"/c*.txt)" -v gt="$(best train_gflops max "$T"/c*.txt)" -v peak="$(best sgemm_gflops max "$T"/c*.txt)" \
        -v mem="$(best peak_activation_mb max "$T"/c*.txt)" -v mem8="$(best peak_activation_b8_mb max "$T"/c*.txt)" 'BEGIN {
        printf "   DDAD-S %dx%d: forward b1 glad %.3fs torch %.3fs (%.2fx, %.0f effective GFLOP/s = %.0f%% of sgemm %.0f)\n", S, S, cf, pf, pf / cf, gf, 100 * gf / peak, peak
        printf "   DDAD-S %dx%d: train step b4 glad %.3fs torch %.3fs (%.2fx, %.0f effective GFLOP/s, activations %d MB)\n", S, S, ct, pt, pt / ct, gt, mem
        printf "   DDAD-S %dx%d: DDIM-10 glad %.2f img/s torch %.2f img/s (%.2fx)\n", S, S, cd, pd, cd / pd
        printf "   DDAD-S %dx%d: activations of a batch-8 training step %d MB\n", S, S, mem8 }'
    rm -f "$T"/c*.txt "$T"/p*.txt
done
