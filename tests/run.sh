#!/bin/bash
# run.sh - run every unit-test binary and CLI test script, sum their
# "N passed, N failed" lines, print the total last; exit 1 on any failure.
# Tests run from the project root so ../shared resolves beside the checkout.
# GLAD_TEST_JOBS tests run at once (default: the number of cores; 1 = one
# after the other); each one's output is kept apart and reported in list order.
cd "$(dirname "$0")/.." || exit 1
BUILD=${GLAD_BUILD:-$PWD/build}
export GLAD_BUILD=$BUILD
JOBS=${GLAD_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case "$JOBS" in ''|*[!0-9]*|0) echo "run.sh: GLAD_TEST_JOBS must be a positive integer" >&2; exit 2 ;; esac
# two tests of two OpenMP threads each on two cores: a spinning thread would
# burn the core its partner waits for (a 20x slowdown measured at load 20)
[ "$JOBS" -gt 1 ] && export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
R=$BUILD/.test-results
rm -rf "$R" && mkdir -p "$R" || exit 1
P=0; F=0; S=0; bad=""; N=0; NEXT=0
NAMES=()

# start test number N in the background: its stdout, stderr, exit status and seconds go to $R/N.*
start() {
    local nm=$1; shift
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; report_done; done
    NAMES[N]=$nm
    ( t0=$(date +%s); "$@" >"$R/$N.out" 2>"$R/$N.err"; rc=$?
      echo $(( $(date +%s) - t0 )) >"$R/$N.secs"; echo $rc >"$R/$N.rc.tmp"; mv "$R/$N.rc.tmp" "$R/$N.rc" ) &
    N=$((N+1))
}

# report the finished tests at the head of the list, in list order
report_done() {
    local i name rc secs line p f s
    while [ "$NEXT" -lt "$N" ] && [ -f "$R/$NEXT.rc" ]; do
        i=$NEXT; NEXT=$((NEXT+1)); name=${NAMES[i]}
        rc=$(cat "$R/$i.rc"); secs=$(cat "$R/$i.secs")
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$R/$i.out" | tail -n 1)
        if [ -z "$line" ]; then
            line="0 passed, 1 failed"
            cat "$R/$i.err" >&2
            echo "  $name: no summary line (exit $rc)" >&2
        fi
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p'); s=${s:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        [ "$f" -gt 0 ] && { cat "$R/$i.err" >&2; bad="$bad $name"; }
        grep -h '^SKIP' "$R/$i.err" >&2
        printf '  %-28s %-36s %4d s\n' "$name" "$line" "$secs"
        P=$((P+p)); F=$((F+f)); S=$((S+s))
    done
}

# the slowest first, so two cores are not left with one long test at the end
for t in tests/cli/recipes.sh tests/cli/lose-nothing.sh tests/cli/slurm.sh; do
    [ -f "$t" ] && start "$(basename "$t")" bash "$t"
done
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue;; esac
    start "$(basename "$t")" "$t"
done
# the engine again on the path of CPUs without AVX-512F (im2col + sgemm)
for t in test_nn test_nhwc test_unet test_ddad_step test_resnet_bwd test_vae test_latent test_sdunet; do
    [ -x "$BUILD/tests/$t" ] && start "$t (no avx512)" env GLAD_NO_AVX512=1 "$BUILD/tests/$t"
done
# bf16 switched off: the precision switch must refuse, the f32 path stay exact
[ -x "$BUILD/tests/test_bf16" ] && start "test_bf16 (no bf16)" env GLAD_NO_BF16=1 "$BUILD/tests/test_bf16"
[ -x "$BUILD/tests/test_nhwc" ] && start "test_nhwc (no bf16)" env GLAD_NO_BF16=1 "$BUILD/tests/test_nhwc"
[ -x "$BUILD/tests/test_train_bf16" ] && start "test_train_bf16 (no bf16)" env GLAD_NO_BF16=1 "$BUILD/tests/test_train_bf16"
for t in tests/cli/*.sh; do
    case "$t" in */lib.sh|*/recipes.sh|*/lose-nothing.sh|*/slurm.sh) continue;; esac
    start "$(basename "$t")" bash "$t"
done
while [ "$NEXT" -lt "$N" ]; do wait -n 2>/dev/null || wait; report_done; done
[ -n "$bad" ] && echo "failing:$bad" >&2
if [ "$S" -gt 0 ]; then echo "$P passed, $F failed, $S skipped"; else echo "$P passed, $F failed"; fi
[ "$F" -eq 0 ]
