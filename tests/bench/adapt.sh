#!/bin/sh
# adapt.sh - issue #21's speed target: one DDAD domain-adaptation epoch on 200
# images at 256 in wide_resnet50_2 layout, and one DINO ViT-S/8 fine-tuning
# epoch at 224, glad (tests/bench/adapt_bench.c, lib/models/adapt.h) against
# plain PyTorch running the official loss steps (tests/ref/adapt_bench_ref.py)
# on the same random weights, the same inputs and 2 threads. Each side runs
# 1 + STEPS optimiser steps of the official batch (the first, a warm-up, is
# not counted); glad and torch alternate for ROUNDS rounds and each keeps its
# fastest step (the machine may be shared: the minimum is the least
# disturbed). The epoch is extrapolated from the step: DDAD 200 / 16 = 12
# steps (drop_last; the reconstructions, the sampler's work, not included),
# DINO 200 / 16 = 12.5 micro-batches of 16 pairs (the Adam steps over 4 MLPs
# are negligible). The first step's loss of both sides is compared (parity).
# Environment: ADAPT_BENCH_ROUNDS (2), ADAPT_BENCH_STEPS (2), ADAPT_BENCH_WHICH
# ("ddad dino"), ADAPT_BENCH_DDAD_SIZE (256), ADAPT_BENCH_DINO_SIZE (224),
# ADAPT_BENCH_THREADS (2; 1 makes the CPU-time line the code's own cost, which
# preemption on a loaded machine does not inflate).
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
R=${ADAPT_BENCH_ROUNDS:-2}
K=${ADAPT_BENCH_STEPS:-2}
TH=${ADAPT_BENCH_THREADS:-2}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch, torchvision' 2>/dev/null; then echo "   skipped: PyTorch/torchvision missing (make bench-deps)"; exit 0; fi
get() { sed -n "s/^$1=//p" "$2"; }
# the fastest step after the first of every run of a side (KEY step_s: wall, step_cpu_s: CPU)
best() { k=$1; shift; for f in "$@"; do get $k "$f" | cut -d' ' -f2-; done | tr ' ' '\n' | sort -g | head -1; }
for m in ${ADAPT_BENCH_WHICH:-ddad dino}; do
    if [ $m = ddad ]; then S=${ADAPT_BENCH_DDAD_SIZE:-256}; H=8; E=12; what="DDAD DA wide_resnet50_2 ${S}x$S, batch 16 (8 + 8)"
    else S=${ADAPT_BENCH_DINO_SIZE:-224}; H=16; E=12.5; what="DINO-ft ViT-S/8 ${S}x$S, batch 16 pairs"; fi
    r=1
    while [ $r -le $R ]; do
        OMP_NUM_THREADS=$TH "$B/bench/adapt_bench" $m "$T/$m.w.safetensors" "$T/$m.in.safetensors" $S $H $((K + 1)) > "$T/$m.c$r.txt" ||
            { echo "   adapt_bench $m failed"; exit 1; }
        OMP_NUM_THREADS=$TH $PY tests/ref/adapt_bench_ref.py $m "$T/$m.w.safetensors" "$T/$m.in.safetensors" $((K + 1)) $TH > "$T/$m.p$r.txt" ||
            { echo "   reference $m failed"; exit 1; }
        r=$((r + 1))
    done
    awk -v what="$what" -v E=$E -v c="$(best step_s "$T/$m".c*.txt)" -v p="$(best step_s "$T/$m".p*.txt)" -v lc="$(get loss0 "$T/$m.c1.txt")" \
        -v cc="$(best step_cpu_s "$T/$m".c*.txt)" -v pc="$(best step_cpu_s "$T/$m".p*.txt)" \
        -v lp="$(get loss0 "$T/$m.p1.txt")" -v rss="$(get max_rss_mb "$T/$m.c1.txt")" -v th=$TH 'BEGIN {
        d = lc - lp; if (d < 0) d = -d
        printf "   %s, %d threads: step glad %.2f s torch %.2f s (%.2fx); epoch of 200 images (%s steps) glad %.0f s torch %.0f s\n", what, th, c, p, p / c, E, E * c, E * p
        printf "   CPU time per step (all threads): glad %.2f s torch %.2f s (%.2fx; with 1 thread, the code alone)\n", cc, pc, pc / cc
        printf "   first-step loss glad %.7g torch %.7g (rel diff %.2g); glad max RSS %d MB\n", lc, lp, d / (lp > 0 ? lp : 1), rss }'
    rm -f "$T"/$m.w.safetensors "$T"/$m.in.safetensors
done
echo "   (load average $(sed 's/ [0-9]*\/.*//' /proc/loadavg) on $(nproc) cores)"
