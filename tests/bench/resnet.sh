#!/bin/sh
# resnet.sh - wide_resnet50_2 feature extractor (layer1..3, the DDAD/MDPS
# backbone) at 256x256 batch 1: images/s of glad and of torchvision
# (tests/ref/resnet_ref.py) on the same random weights and 2 threads in the
# same run, their ratio, glad's GFLOP/s against sgemm, and glad's features
# checked against torchvision's (max error relative to max-abs). The machine
# may be shared: each side reports its fastest of 5 forwards, and glad and
# torch alternate for two rounds, keeping each side's best; a 1-thread run
# compares CPU time, which preemption does not inflate. GFLOP/s counts the
# direct-convolution FLOPs (Winograd does fewer multiplications).
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
S=${RESNET_BENCH_SIZE:-256}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then echo "   skipped: PyTorch/torchvision missing (make bench-deps)"; exit 0; fi
get() { sed -n "s/^$1=//p" "$2"; }
for r in 1 2; do
    OMP_NUM_THREADS=2 "$B/bench/resnet_bench" $S "$T/w.safetensors" "$T/f.safetensors" > "$T/c$r.txt" || { echo "   resnet_bench failed"; exit 1; }
    OMP_NUM_THREADS=2 $PY tests/ref/resnet_ref.py "$T/w.safetensors" "$T/f.safetensors" 2 > "$T/p$r.txt" || { echo "   reference failed"; exit 1; }
done
# one thread, the calling thread's CPU time: the code's own speed, free of time spent preempted
OMP_NUM_THREADS=1 "$B/bench/resnet_bench" $S "$T/w.safetensors" "$T/f.safetensors" > "$T/c0.txt" || { echo "   resnet_bench failed"; exit 1; }
OMP_NUM_THREADS=1 $PY tests/ref/resnet_ref.py "$T/w.safetensors" "$T/f.safetensors" 1 > "$T/p0.txt" || { echo "   reference failed"; exit 1; }
awk -v S=$S -v c1="$(get images_per_s "$T/c1.txt")" -v c2="$(get images_per_s "$T/c2.txt")" \
    -v p1="$(get images_per_s "$T/p1.txt")" -v p2="$(get images_per_s "$T/p2.txt")" \
    -v fl="$(get gflop "$T/c1.txt")" -v peak="$(get sgemm_gflops "$T/c1.txt")" -v peak2="$(get sgemm_gflops "$T/c2.txt")" \
    -v rss="$(get max_rss_mb "$T/c1.txt")" -v e1="$(get layer1_rel_err "$T/p2.txt")" -v e2="$(get layer2_rel_err "$T/p2.txt")" \
    -v e3="$(get layer3_rel_err "$T/p2.txt")" -v cc="$(get thread_cpu_s "$T/c0.txt")" -v pc="$(get thread_cpu_s "$T/p0.txt")" 'BEGIN {
    ci = c1 > c2 ? c1 : c2; pi = p1 > p2 ? p1 : p2; if (peak2 > peak) peak = peak2; gf = fl * ci
    printf "   wide_resnet50_2 layer1-3 %dx%d b1: glad %.2f img/s torch %.2f img/s (%.2fx)\n", S, S, ci, pi, ci / pi
    printf "   1 thread, CPU time per image: glad %.3f s torch %.3f s (%.2fx)\n", cc, pc, pc / cc
    printf "   glad %.1f GFLOP/image, %.0f GFLOP/s = %.0f%% of sgemm %.0f; max RSS %d MB (weights included)\n", fl, gf, 100 * gf / peak, peak, rss
    printf "   glad vs torch features (max err / max-abs): layer1 %s layer2 %s layer3 %s\n", e1, e2, e3 }'
