#!/bin/sh
# run.sh - run every unit-test binary and CLI test script, sum their
# "N passed, N failed" lines, print the total last; exit 1 on any failure.
# Tests run from the project root so ../shared resolves beside the checkout.
cd "$(dirname "$0")/.." || exit 1
BUILD=${GLAD_BUILD:-$PWD/build}
export GLAD_BUILD=$BUILD
P=0; F=0; S=0; bad=""
run_one() {
    name=$1; shift
    t0=$(date +%s)
    out=$("$@" 2>"$BUILD/.test-stderr"); rc=$?
    secs=$(( $(date +%s) - t0 ))
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        line="0 passed, 1 failed"
        cat "$BUILD/.test-stderr" >&2
        echo "  $name: no summary line (exit $rc)" >&2
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -gt 0 ] && { cat "$BUILD/.test-stderr" >&2; bad="$bad $name"; }
    grep -h '^SKIP' "$BUILD/.test-stderr" >&2
    printf '  %-28s %-36s %4d s\n' "$name" "$line" "$secs"
    P=$((P+p)); F=$((F+f)); S=$((S+s))
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue;; esac
    run_one "$(basename "$t")" "$t"
done
# the engine again on the path of CPUs without AVX-512F (im2col + sgemm)
for t in test_nn test_unet test_ddad_step test_resnet_bwd test_vae test_latent test_sdunet; do
    [ -x "$BUILD/tests/$t" ] && run_one "$t (no avx512)" env GLAD_NO_AVX512=1 "$BUILD/tests/$t"
done
# bf16 switched off: the precision switch must refuse, the f32 path stay exact
[ -x "$BUILD/tests/test_bf16" ] && run_one "test_bf16 (no bf16)" env GLAD_NO_BF16=1 "$BUILD/tests/test_bf16"
for t in tests/cli/*.sh; do
    case "$t" in */lib.sh) continue;; esac
    run_one "$(basename "$t")" bash "$t"
done
[ -n "$bad" ] && echo "failing:$bad" >&2
if [ "$S" -gt 0 ]; then echo "$P passed, $F failed, $S skipped"; else echo "$P passed, $F failed"; fi
[ "$F" -eq 0 ]
