#!/bin/sh
# sdunet.sh - the Stable Diffusion UNet (SD-v1-4 shape: 860 M parameters,
# random weights built in memory by each side, 3.4 GB in f32) at 32x32 and
# 64x64 latents, batch 2 (the guidance pair), 77-token context: glad against
# the plain-PyTorch reference of the same blocks (tests/ref/sd_unet_ref.py,
# diffusers' torch-1.13 attention), 2 threads, in the same run. Each figure is
# the fastest of its repetitions and of GLAD_BENCH_ROUNDS (default 2)
# alternating rounds; also glad's peak resident memory (getrusage) with the
# 64x64 forward. Waiting OpenMP threads sleep (OMP_WAIT_POLICY=passive, as in
# mobilenet.sh) unless the caller sets the policy: on a shared machine
# spinning threads starve each other. About 2-4 minutes a round on an idle
# 2-core machine (each side builds its random model, about 30 s).
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
ROUNDS=${GLAD_BENCH_ROUNDS:-2}
best() { k=$1 m=$2; shift 2; sed -n "s/^$k=//p" "$@" | sort -g | if [ "$m" = min ]; then head -1; else tail -1; fi; }
r=1
while [ $r -le "$ROUNDS" ]; do
    OMP_NUM_THREADS=2 "$B/bench/sdunet_bench" 1 32 64 > "$T/c$r.txt" || { echo "   sdunet_bench failed"; exit 1; }
    OMP_NUM_THREADS=2 $PY tests/ref/sd_unet_ref.py bench 2 1 32 64 > "$T/p$r.txt" || { echo "   reference failed"; exit 1; }
    r=$((r + 1))
done
for S in 32 64; do
    awk -v S=$S -v c="$(best forward_b2_s_$S min "$T"/c*.txt)" -v p="$(best forward_b2_s_$S min "$T"/p*.txt)" \
        -v g="$(best forward_gflops_$S max "$T"/c*.txt)" -v a="$(best activation_mb_$S max "$T"/c*.txt)" \
        -v m="$(best peak_rss_mb_$S max "$T"/c*.txt)" -v pm="$(best peak_rss_mb_$S max "$T"/p*.txt)" 'BEGIN {
        printf "   SD-v1-4 UNet %dx%d batch 2: glad %.2fs torch %.2fs (%.2fx, %.0f GFLOP/s effective)\n", S, S, c, p, p / c, g
        printf "   SD-v1-4 UNet %dx%d batch 2: glad activations %d MB, peak RSS %d MB (torch %d MB)\n", S, S, a, m, pm }'
done
