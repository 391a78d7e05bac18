#!/bin/sh
# vae.sh - the Stable Diffusion VAE decoder (SD-v1-4 shape: 84 M parameters,
# random weights built in memory by each side) decoding one 256x256 and one
# 512x512 image (latents 32x32, 64x64): glad against the plain-PyTorch
# reference of the same blocks (tests/ref/sd_vae_ref.py, diffusers' torch-1.13
# attention), 2 threads, in the same run. Each figure is the fastest of its
# repetitions and of GLAD_BENCH_ROUNDS (default 1) alternating rounds; also
# each side's peak resident memory after the size. Waiting OpenMP threads
# sleep (OMP_WAIT_POLICY=passive) unless the caller sets the policy. Several
# minutes a round on a loaded 2-core machine.
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
ROUNDS=${GLAD_BENCH_ROUNDS:-1} REPS=${GLAD_BENCH_REPS:-1}
best() { k=$1 m=$2; shift 2; sed -n "s/^$k=//p" "$@" | sort -g | if [ "$m" = min ]; then head -1; else tail -1; fi; }
r=1
while [ $r -le "$ROUNDS" ]; do
    OMP_NUM_THREADS=2 "$B/bench/vae_bench" "$REPS" 256 512 > "$T/c$r.txt" || { echo "   vae_bench failed"; exit 1; }
    OMP_NUM_THREADS=2 $PY tests/ref/sd_vae_ref.py bench 2 "$REPS" 256 512 > "$T/p$r.txt" || { echo "   reference failed"; exit 1; }
    r=$((r + 1))
done
for S in 256 512; do
    awk -v S=$S -v c="$(best decode_s_$S min "$T"/c*.txt)" -v p="$(best decode_s_$S min "$T"/p*.txt)" \
        -v m="$(best peak_rss_mb_$S max "$T"/c*.txt)" -v pm="$(best peak_rss_mb_$S max "$T"/p*.txt)" 'BEGIN {
        printf "   SD-v1-4 VAE decode %dx%d batch 1: glad %.2fs torch %.2fs (%.2fx), peak RSS glad %d MB torch %d MB\n", S, S, c, p, p / c, m, pm }'
done
