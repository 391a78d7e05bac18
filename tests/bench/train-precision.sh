#!/bin/sh
# train-precision.sh - mixed-precision training (issue #19 item 3): the tiny
# preset trained on the demo's pill class (glad-synth --make-dataset: 60
# training images, 64x64) for STEPS steps (2000; GLAD_TRAIN_STEPS) in f32 and
# in bf16 from the same seed, batch 8, alternating in chunks of 100 steps (GLAD_TRAIN_CHUNK)
# (each precision resumes its own checkpoint: bit-exact, so the curve is the
# uninterrupted run's) so that both see the same machine load. Prints the loss
# at every 100 steps (the mean of the logged losses since the previous line, then
# the step's own), the CPU seconds per step (OMP_NUM_THREADS, default 2,
# threads) and the wall seconds per step, and ends with the relative
# difference of the last 500 steps' mean losses. Skips bf16 without
# AVX512_BF16 (or with GLAD_NO_BF16 set). 2000 steps take about 2 x 2000 x
# 0.35 CPU s at 64x64 batch 8 on one Zen 5 core.
#   GLAD_TRAIN_STEPS=200 GLAD_TRAIN_CHUNK=50 GLAD_TRAIN_SIZE=64 sh tests/bench/train-precision.sh
B=${GLAD_BUILD:-build}
PATH="$B:$PATH"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
STEPS=${GLAD_TRAIN_STEPS:-2000} S=${GLAD_TRAIN_SIZE:-64} CHUNK=${GLAD_TRAIN_CHUNK:-100}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
glad-synth --make-dataset "$T/d" --classes pill --size "$S" --test-good 0 --test-defect 0 2>/dev/null
glad-encode "$T/d" --split train > "$T/train.msgpack" || { echo "   demo data failed"; exit 1; }
precs=f32
if glad-train --preset tiny --steps 1 --batch 1 --precision bf16 -o "$T/probe.model" "$T/train.msgpack" 2>/dev/null; then precs="f32 bf16"
else echo "   bf16 skipped: $(glad-train --preset tiny --steps 1 --batch 1 --precision bf16 -o "$T/probe.model" "$T/train.msgpack" 2>&1 | tail -1)"; fi
# CPU seconds of the children so far (times: user and system of the children)
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($16 + $17) / hz }' /proc/$$/stat; }
s=0
while [ $s -lt "$STEPS" ]; do
    e=$((s + CHUNK)); [ $e -gt "$STEPS" ] && e=$STEPS
    for p in $precs; do
        res=; [ $s -gt 0 ] && res="--resume $T/$p.model"
        c0=$(cpu) w0=$(date +%s.%N)
        glad-train --preset tiny --batch 8 --seed 1 --precision $p --steps $e $res --log "$T/$p.csv" -o "$T/$p.model" "$T/train.msgpack" 2>"$T/err" ||
            { echo "   $p training failed at step $s: $(tail -1 "$T/err")"; exit 1; }
        echo "$e $(awk -v a="$c0" -v b="$(cpu)" 'BEGIN { print b - a }') $(awk -v a="$w0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" >> "$T/$p.time"
    done
    s=$e
done
for p in $precs; do
    echo "   tiny preset ${S}x${S}, batch 8, $p: step, mean loss since the line before, loss, CPU s/step, wall s/step"
    awk -F, 'NR == FNR { split($0, a, " "); cpu[a[1]] = a[2]; wall[a[1]] = a[3]; n[a[1]] = 1; next }
        FNR > 1 { sum += $2; k++; if ($1 in n) { prev = last; d = $1 - prev; last = $1
            printf "     %5d %10.2f %10.2f %8.3f %8.3f\n", $1, sum / k, $2, cpu[$1] / d, wall[$1] / d; sum = 0; k = 0 } }' \
        "$T/$p.time" "$T/$p.csv"
done
if [ "$precs" = "f32 bf16" ]; then
    awk -F, -v N="$STEPS" 'FNR > 1 && $1 > N - 500 { s[FILENAME] += $2; k[FILENAME]++ }
        END { for (f in s) { m[f ~ /bf16/] = s[f] / k[f]; n = k[f] }
              printf "   mean loss of the last %d steps: f32 %.2f, bf16 %.2f (bf16 %+.2f%%)\n", n, m[0], m[1], 100 * (m[1] - m[0]) / m[0] }' "$T/f32.csv" "$T/bf16.csv"
    awk 'NR == FNR { c0 += $2; w0 += $3; next } { c1 += $2; w1 += $3 }
        END { printf "   CPU time f32 / bf16: %.2fx, wall time %.2fx\n", c0 / c1, w0 / w1 }' "$T/f32.time" "$T/bf16.time"
fi
