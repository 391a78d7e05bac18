#!/bin/sh
# vit.sh - DINO ViT-S/8 (dim 384, depth 12, 6 heads, pos grid 28) at 224x224
# and 512x512, batch-1 forward to GLAD's feature blocks 3, 6, 9, 12: glad
# against the PyTorch reference (tests/ref/vit_ref.py) on the same random
# weights, the same input and 2 threads in the same run (images/s, ratio,
# glad GFLOP/s, parity of the block-12 tokens); then glad alone on a
# ViT-B/8 at 512x512 for its peak memory.
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
OMP_NUM_THREADS=2 "$B/bench/vit_bench" "$T/w.safetensors" "$T/out" 384 12 6 8 28 224 512 > "$T/c.txt" || { echo "   vit_bench failed"; exit 1; }
OMP_NUM_THREADS=2 $PY tests/ref/vit_ref.py "$T/w.safetensors" "$T/out" 2 224 512 > "$T/p.txt" || { echo "   reference failed"; exit 1; }
get() { sed -n "s/^$1=//p" "$2"; }
for S in 224 512; do
    awk -v S=$S -v c="$(get s${S}_images_per_s "$T/c.txt")" -v p="$(get s${S}_images_per_s "$T/p.txt")" \
        -v gf="$(get s${S}_gflops "$T/c.txt")" -v e="$(get s${S}_rel_err "$T/p.txt")" 'BEGIN {
        printf "   ViT-S/8 %dx%d: glad %.3f img/s torch %.3f img/s (%.2fx, glad %.0f GFLOP/s; block-12 rel err vs torch %s)\n", S, S, c, p, c / p, gf, e }'
    # bf16 (issue #19: >= 2x glad's f32), alternating with f32 in vit_bench
    bf=$(get s${S}_bf16_images_per_s "$T/c.txt")
    if [ -n "$bf" ]; then awk -v S=$S -v b="$bf" -v c="$(get s${S}_images_per_s "$T/c.txt")" -v p="$(get s${S}_images_per_s "$T/p.txt")" 'BEGIN {
        printf "   ViT-S/8 %dx%d bf16: glad %.3f img/s (%.2fx glad f32, %.2fx torch f32)\n", S, S, b, b / c, b / p }'
    else echo "   ViT-S/8 ${S}x$S bf16: skipped (no AVX512_BF16, or GLAD_NO_BF16 set)"; fi
done
echo "   ViT-S/8 glad peak RSS $(get peak_rss_mb "$T/c.txt") MB (weights, their file and the 512x512 forward)"
# one thread as well: on a loaded machine two spinning OpenMP threads measure the
# scheduler more than the code
OMP_NUM_THREADS=1 "$B/bench/vit_bench" "$T/w.safetensors" "$T/out" 384 12 6 8 28 224 > "$T/c1.txt" || { echo "   vit_bench failed"; exit 1; }
OMP_NUM_THREADS=1 $PY tests/ref/vit_ref.py "$T/w.safetensors" "$T/out" 1 224 > "$T/p1.txt" || { echo "   reference failed"; exit 1; }
awk -v c="$(get s224_images_per_s "$T/c1.txt")" -v p="$(get s224_images_per_s "$T/p1.txt")" -v gf="$(get s224_gflops "$T/c1.txt")" 'BEGIN {
    printf "   ViT-S/8 224x224, 1 thread: glad %.3f img/s torch %.3f img/s (%.2fx, glad %.0f GFLOP/s)\n", c, p, c / p, gf }'
echo "   (load average $(sed 's/ [0-9]*\/.*//' /proc/loadavg) on $(nproc) cores)"
rm -f "$T"/*.safetensors
OMP_NUM_THREADS=2 "$B/bench/vit_bench" "$T/wb.safetensors" "$T/outb" 768 12 12 8 28 512 > "$T/cb.txt" || { echo "   vit_bench (ViT-B/8) failed"; exit 1; }
echo "   ViT-B/8 512x512: glad $(get s512_images_per_s "$T/cb.txt") img/s, $(get s512_gflops "$T/cb.txt") GFLOP/s, peak RSS $(get peak_rss_mb "$T/cb.txt") MB"
