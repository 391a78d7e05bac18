#!/bin/bash
# lose-nothing.sh - no program loses or fakes data: header-less streams work
# everywhere, a failed or interrupted run never leaves a stream that looks
# complete (nor replaces a previous -o FILE), devices are written through and
# their errors reported, stdout is checked, inputs are never overwritten, and
# messages say what is wrong in one line.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1   # results do not depend on it; a busy machine makes spinning threads slow
PY=/usr/bin/python3
VIT=$ROOT/tests/fixtures/dino-vit.weights.safetensors
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 4 --test-good 2 --test-defect 1
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 1 --batch 2 -o "$T/m.model"
check "setup: a model and a test stream" test -s "$T/m.model" -a -s "$T/test.msgpack"
size=$(stat -c %s "$T/test.msgpack")
head -c $((size / 2)) "$T/test.msgpack" > "$T/cut.msgpack"
: > "$T/empty.msgpack"
mkdir -p "$T/out"
tmps() { ls -A "$T/out" | grep -c '\.tmp\.'; }

# one program of each kind with the arguments it needs besides its input
readers=("glad-info" "glad-auroc" "glad-score --feat-dist none" "glad-synth" "glad-view --out $T/view"
         "glad-train --preset tiny --steps 1 --batch 2 -o $T/out/never.model" "glad-features --weights $VIT --input image"
         "glad-denoise --model $T/m.model --steps 100 --skip 50")

# ---- header-less streams (plain msgpack-numpy writers) ----
if $PY -c 'import msgpack_numpy' 2>/dev/null; then
    $PY - "$T/nohdr.msgpack" "$T/np.msgpack" "$T/utf8.msgpack" <<'PYEOF'
import sys, msgpack, msgpack_numpy as m, numpy as np
recs = [{"id": "pill/test/%d" % i, "class": "pill", "split": "test", "label": i % 2,
         "image": np.full((3, 32, 32), 40 * i, np.uint8), "mask": np.full((1, 32, 32), i % 2, np.uint8),
         "recon": np.zeros((3, 32, 32), np.float32), "score": 0.1 + 0.2 * i} for i in range(4)]
open(sys.argv[1], "wb").write(b"".join(msgpack.packb(r, default=m.encode) for r in recs))
# numbers as numpy scalars, as a Python user writes them
np_recs = [{"id": "n/%d" % i, "score": np.float32(0.25 * i), "label": np.int64(i // 2), "ads_step": np.int32(7)} for i in range(4)]
open(sys.argv[2], "wb").write(msgpack.packb({"glad": 1, "history": []}) + b"".join(msgpack.packb(r, default=m.encode) for r in np_recs))
# an id with invalid UTF-8 and control characters (a str whose bytes are not UTF-8)
bad = b"a\xff\xc3(\x01\x7f\xed\xa0\x80z"
rec = b"\x82\xa2id" + bytes([0xa0 | len(bad)]) + bad + b"\xa5label\x00"
open(sys.argv[3], "wb").write(rec)
PYEOF
    check "header-less: glad-info lists both records" test "$(glad-info "$T/nohdr.msgpack" | grep -c '^pill/test/')" = 4
    for p in "${readers[@]}"; do
        $p "$T/nohdr.msgpack" > "$T/hl.out" 2> "$T/hl.err"; rc=$?
        if [ "$rc" = 0 ]; then ok; else fail "header-less input: $p exit $rc: $(head -c 300 "$T/hl.err")"; fi
    done
    glad-score --feat-dist none "$T/nohdr.msgpack" | glad-info -q
    check "header-less: glad-score's output is a complete stream" test "${PIPESTATUS[1]}" = 0
    check "header-less: glad-auroc evaluates every record" sh -c "glad-auroc '$T/nohdr.msgpack' | grep -q '^pill *4 *2 '"
    # numpy scalars
    check "numpy scalars: glad-info prints the numbers" sh -c "glad-info '$T/np.msgpack' | grep -q 'n/1.*label=0.*score=0.25.*ads_step=7'"
    check "numpy scalars: glad-info -j" sh -c "glad-info -j '$T/np.msgpack' | grep -q '\"score\":0.75,\"label\":1,\"ads_step\":7'"
    check "numpy scalars: glad-auroc reads score and label" sh -c "glad-auroc '$T/np.msgpack' | grep -q '100.0'"
    # invalid UTF-8 in glad-info -j: valid JSON, U+FFFD per invalid byte, controls escaped
    glad-info -j "$T/utf8.msgpack" > "$T/utf8.json"
    check "glad-info -j: valid JSON despite invalid UTF-8" $PY -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$T/utf8.json"
    check "glad-info -j: invalid bytes as \\ufffd, controls as \\u00XX" grep -qF '"a\ufffd\ufffd(\u0001\u007f\ufffd\ufffd\ufffdz"' "$T/utf8.json"
else
    skip "python3-msgpack-numpy missing: header-less, numpy-scalar and UTF-8 checks"
fi

# ---- 0-byte, missing and directory inputs: an error naming the reason ----
for p in "${readers[@]}"; do
    name=${p%% *}
    $p "$T/empty.msgpack" > /dev/null 2> "$T/e.err"; rc=$?
    [ "$rc" = 1 ] && grep -q "^$name: error: .*empty.msgpack: empty input, not a glad stream" "$T/e.err" && ok || fail "$name on 0 bytes: exit $rc: $(head -c 200 "$T/e.err")"
    $p "$T/does-not-exist" > /dev/null 2> "$T/e.err"; rc=$?
    [ "$rc" = 1 ] && grep -q "does-not-exist: No such file or directory" "$T/e.err" && ok || fail "$name on a missing file: exit $rc: $(head -c 200 "$T/e.err")"
    $p "$T/demo" > /dev/null 2> "$T/e.err"; rc=$?
    [ "$rc" = 1 ] && grep -q "demo: Is a directory" "$T/e.err" && ok || fail "$name on a directory: exit $rc: $(head -c 200 "$T/e.err")"
done
glad-denoise --model "$T/nope.model" "$T/test.msgpack" > /dev/null 2> "$T/e.err"
check "a missing model: No such file or directory" grep -q "nope.model: No such file or directory" "$T/e.err"

# ---- a failed run: no end marker on stdout, -o FILE untouched, no temporary left ----
writers=("glad-synth" "glad-score --feat-dist none" "glad-features --weights $VIT --input image"
         "glad-denoise --model $T/m.model --steps 100 --skip 50")
# glad-score needs a recon: a stream with one, cut in the middle
glad-denoise --model "$T/m.model" --steps 100 --skip 50 "$T/test.msgpack" > "$T/rec.msgpack"
rsize=$(stat -c %s "$T/rec.msgpack")
head -c $((rsize / 2)) "$T/rec.msgpack" > "$T/rcut.msgpack"
for p in "${writers[@]}"; do
    name=${p%% *}
    echo "previous output" > "$T/out/o.msgpack"
    $p -o "$T/out/o.msgpack" "$T/rcut.msgpack" 2> "$T/w.err"; rc=$?
    [ "$rc" = 1 ] && ok || fail "$name on a cut input: exit $rc"
    check "$name failed: the previous -o FILE is untouched" grep -qx "previous output" "$T/out/o.msgpack"
    check "$name failed: no temporary left" test "$(tmps)" = 0
    $p "$T/rcut.msgpack" > "$T/stdout.msgpack" 2> /dev/null
    glad-info -q "$T/stdout.msgpack" 2> "$T/v.err"; rc=$?
    check "$name failed: its stdout stream is rejected as truncated" sh -c "test $rc = 1 && grep -q 'without its end marker' '$T/v.err'"
done
glad-synth -o "$T/out/new.msgpack" "$T/rcut.msgpack" 2> /dev/null
check "a failed run does not create a new -o FILE" test ! -e "$T/out/new.msgpack"
for p in glad-synth "glad-score --feat-dist none"; do
    $p -o "$T/out/ok.msgpack" "$T/rec.msgpack"
    check "${p%% *} succeeded: a complete -o FILE" glad-info -q "$T/out/ok.msgpack"
    rm -f "$T/out/ok.msgpack"
done
# glad-encode: a corrupt image among good ones
printf 'not a png' > "$T/bad.png"
good=$(ls "$T"/demo/pill/train/good/*.png | head -2)
echo "previous output" > "$T/out/o.msgpack"
glad-encode --format generic $good "$T/bad.png" -o "$T/out/o.msgpack" 2> /dev/null; rc=$?
check "glad-encode failed: exit 1, the previous -o FILE untouched" sh -c "test $rc = 1 && grep -qx 'previous output' '$T/out/o.msgpack'"
glad-encode --format generic $good "$T/bad.png" 2> /dev/null | glad-info -q 2> /dev/null
check "glad-encode failed: its stdout stream is rejected" test "${PIPESTATUS[1]}" = 1
check "no temporary left by any failed run" test "$(tmps)" = 0

# ---- devices are written through, and their errors reported ----
glad-info "$T/test.msgpack" > /dev/full 2> "$T/f.err"; rc=$?
check "glad-info > /dev/full: exit 1 with a message" sh -c "test $rc = 1 && grep -q 'glad-info: error: standard output: No space left on device' '$T/f.err'"
glad-auroc "$T/rec.msgpack" > /dev/full 2> "$T/f.err"; rc=$?
check "glad-auroc > /dev/full: exit 1" test "$rc" = 1
glad-info --help > /dev/full 2> /dev/null; rc=$?
check "--help > /dev/full: exit 1" test "$rc" = 1
glad-synth -o /dev/full "$T/test.msgpack" 2> "$T/f.err"; rc=$?
check "glad-synth -o /dev/full: exit 1 naming the reason" sh -c "test $rc = 1 && grep -q '/dev/full: No space left on device' '$T/f.err'"
glad-synth "$T/test.msgpack" > /dev/full 2> "$T/f.err"; rc=$?
check "glad-synth > /dev/full: exit 1" test "$rc" = 1
ln -s /dev/full "$T/out/full"
glad-train --preset tiny --steps 1 --batch 2 -o "$T/out/full" "$T/test.msgpack" 2> /dev/null; rc=$?
check "glad-train -o (a link to /dev/full): exit 1, the link is kept" sh -c "test $rc = 1 -a -L '$T/out/full'"
glad-synth -o /dev/stdout "$T/test.msgpack" > "$T/out/dev-stdout.msgpack"
check "-o /dev/stdout writes through to stdout" glad-info -q "$T/out/dev-stdout.msgpack"
mkfifo "$T/fifo"
glad-info -q "$T/fifo" & reader=$!
glad-synth -o "$T/fifo" "$T/test.msgpack"
wait $reader; rc=$?
check "-o FIFO: written through (a complete stream), not replaced" sh -c "test $rc = 0 -a -p '$T/fifo'"
rm -f "$T/out/full" "$T/out/dev-stdout.msgpack"

# ---- inputs are never overwritten ----
cp "$T/test.msgpack" "$T/x.msgpack"
glad-synth -o "$T/x.msgpack" "$T/x.msgpack" 2> "$T/x.err"; rc=$?
check "-o the input: refused" sh -c "test $rc = 1 && grep -q 'the output is the input file' '$T/x.err'"
check "-o the input: the input is intact" cmp -s "$T/x.msgpack" "$T/test.msgpack"
glad-score --feat-dist none "$T/x.msgpack" >> "$T/x.msgpack" 2> /dev/null; rc=$?
check ">> the input: refused, the input intact" sh -c "test $rc = 1 && cmp -s '$T/x.msgpack' '$T/test.msgpack'"

# ---- a signal: the temporary is removed, a previous -o FILE stays ----
# The program reads a FIFO that holds the header and part of a record: it
# has opened its output and waits for more input when the signal comes.
glad-encode "$T/demo" --split test --size 128 > "$T/big.msgpack"   # > 140000 bytes (the reader asks for 128 KiB)
echo "previous output" > "$T/out/sig.msgpack"
# A signal ignored when the tests were started (nohup: HUP; a background job of a
# shell without job control: INT) stays ignored in every program, as it should:
# that case cannot be checked here, and waiting for it would hang.
ignored=$(awk '/^SigIgn:/ {print $2}' /proc/$$/status 2>/dev/null)
for sig in INT TERM HUP; do
    if [ -n "$ignored" ] && [ $(( 0x$ignored >> ($(kill -l $sig) - 1) & 1 )) = 1 ]; then
        skip "SIG$sig is ignored by whoever started the tests (nohup, or & without job control): not checked"
        continue
    fi
    rm -f "$T/fifo"; mkfifo "$T/fifo"
    exec 3<> "$T/fifo"
    set -m   # job control: a background job does not ignore SIGINT
    glad-synth -o "$T/out/sig.msgpack" "$T/fifo" 2> /dev/null & pid=$!
    set +m
    head -c 140000 "$T/big.msgpack" >&3 & feeder=$!
    for i in $(seq 100); do [ "$(tmps)" = 1 ] && break; sleep 0.1; done
    check "SIG$sig: a temporary while running" test "$(tmps)" = 1
    kill -$sig $pid; { wait $pid; } 2> /dev/null; rc=$?
    exec 3>&-
    wait $feeder
    check "SIG$sig: the program dies of the signal" test "$rc" = $((128 + $(kill -l $sig)))
    check "SIG$sig: no temporary left" test "$(tmps)" = 0
    check "SIG$sig: the previous -o FILE is untouched" grep -qx "previous output" "$T/out/sig.msgpack"
done

# ---- option errors: one line in our words, then the hint ----
for spec in "glad-auroc --by" "glad-denoise --model" "glad-encode --format" "glad-features --backbone" \
            "glad-score --preset" "glad-synth --seed" "glad-train --steps" "glad-view --out"; do
    set -- $spec
    "$1" "$2" > /dev/null 2> "$T/o.err"; rc=$?
    check "$spec (no value): exit 2, one line + hint" sh -c "test $rc = 2 && test \$(wc -l < '$T/o.err') = 2 &&
        head -1 '$T/o.err' | grep -qx \"$1: option '$2' requires an argument\" && tail -1 '$T/o.err' | grep -qx \"Try '$1 --help'.\""
done
for p in "$BUILD"/glad-*; do
    name=$(basename "$p")
    "$p" --no-such-option > /dev/null 2> "$T/o.err"
    check "$name --no-such-option: one line + hint" sh -c "test \$(wc -l < '$T/o.err') = 2 && head -1 '$T/o.err' | grep -qx \"$name: unrecognized option '--no-such-option'\""
    "$p" -Z > /dev/null 2> "$T/o.err"
    check "$name -Z: one line + hint" sh -c "test \$(wc -l < '$T/o.err') = 2 && head -1 '$T/o.err' | grep -qx \"$name: invalid option -- 'Z'\""
done
glad-synth -o 2> "$T/o.err"
check "a short option without its value" grep -qx "glad-synth: option requires an argument -- 'o'" "$T/o.err"
glad-info --json=1 2> "$T/o.err"
check "a value for a flag" grep -qx "glad-info: option '--json' doesn't allow an argument" "$T/o.err"

# ---- zstd: corrupt data and out of memory are told apart from a read error ----
zstd -q -c "$T/test.msgpack" | head -c 300 > "$T/z.zst"
printf '\x28\xb5\x2f\xfd\x00\x58\xff\xff\xff\xff\xff\xff' > "$T/zc.zst"
glad-info -q "$T/zc.zst" 2> "$T/z.err"
check "corrupt zstd named as such" grep -q "corrupt zstd data" "$T/z.err"
glad-info -q "$T/z.zst" 2> "$T/z.err"
check "truncated zstd named as such" grep -q "truncated zstd frame" "$T/z.err"
# a 64 MiB value of zeros in 2 KB: under a 100 MB address-space limit the
# reader runs out of memory buffering it, and says so
{ printf '\x81\xa1x\xc6\x04\x00\x00\x00'; head -c 67108864 /dev/zero; } | zstd -1 -q -c > "$T/bomb.zst"
# (one OpenBLAS thread and a timeout: OpenBLAS's thread pool retries its
# 128 MB buffer forever when the limit refuses it, which hung a run)
lowmem() { (ulimit -v 100000; OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 60 "$@"); }
if lowmem glad-info --version > /dev/null 2>&1; then
    lowmem glad-info -q "$T/bomb.zst" 2> "$T/z.err"; rc=$?
    check "a record larger than memory: 'out of memory', not 'read error'" sh -c "test $rc = 1 && grep -q 'out of memory' '$T/z.err' && ! grep -q 'read error' '$T/z.err'"
else
    skip "out-of-memory check: the programs do not start within 60 s under ulimit -v 100000 (OpenBLAS start-up or a sanitizer build)"
fi
done_tests
