#!/bin/bash
# precision.sh - --precision f32|bf16 on glad-denoise, glad-features and glad-train:
# f32 is the default and gives the same records as without the option;
# bf16 runs where the CPU has AVX512_BF16 and changes the numbers; without
# it (or with GLAD_NO_BF16=1) bf16 is refused with exit 1; a bad name is a
# usage error. glad-train: bf16 training resumes bit-exactly in bf16 (the
# precision taken from the checkpoint) and refuses to resume in f32.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 4 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model"
glad-encode "$T/demo" --split test > "$T/test.msgpack"
recs() { glad-info --json "$1" | tail -n +2; }
glad-denoise --model "$T/m.model" --steps 50 --skip 25 "$T/test.msgpack" > "$T/d.msgpack"
glad-denoise --model "$T/m.model" --steps 50 --skip 25 --precision f32 "$T/test.msgpack" > "$T/f.msgpack"
check "denoise: --precision f32 is the default" cmp -s <(recs "$T/d.msgpack") <(recs "$T/f.msgpack")
glad-features --model "$T/m.model" --input image "$T/test.msgpack" > "$T/fd.msgpack"
glad-features --model "$T/m.model" --input image --precision f32 "$T/test.msgpack" > "$T/ff.msgpack"
check "features: --precision f32 is the default" cmp -s <(recs "$T/fd.msgpack") <(recs "$T/ff.msgpack")
status 2 "denoise: unknown precision" glad-denoise --model "$T/m.model" --precision f16 "$T/test.msgpack"
status 2 "features: unknown precision" glad-features --model "$T/m.model" --input image --precision half "$T/test.msgpack"
GLAD_NO_BF16=1 glad-denoise --model "$T/m.model" --precision bf16 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "denoise: GLAD_NO_BF16 refuses bf16 (exit 1, says why)" sh -c "test $rc = 1 && grep -q 'glad-denoise: error: bf16 needs a CPU with' '$T/err'"
glad-encode "$T/demo" --split train > "$T/train.msgpack"
tr() { glad-train --preset tiny --batch 2 "$@" "$T/train.msgpack"; }
tr --steps 2 --precision f32 -o "$T/f32.model"
check "train: --precision f32 is the default" cmp -s "$T/m.model" "$T/f32.model"
status 2 "train: unknown precision" tr --steps 2 --precision fp8 -o "$T/x.model"
GLAD_NO_BF16=1 glad-train --preset tiny --steps 2 --precision bf16 -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "train: GLAD_NO_BF16 refuses bf16 (exit 1, says why)" sh -c "test $rc = 1 && grep -q 'glad-train: error: bf16 needs a CPU with' '$T/err'"
status 1 "train: an f32 checkpoint does not resume in bf16" tr --resume "$T/f32.model" --steps 4 --precision bf16 -o "$T/x.model"
if grep -q avx512_bf16 /proc/cpuinfo && [ -z "${GLAD_NO_BF16:-}" ] && [ -z "${GLAD_NO_AVX512:-}" ]; then
    glad-denoise --model "$T/m.model" --steps 50 --skip 25 --precision bf16 "$T/test.msgpack" > "$T/b.msgpack" 2> "$T/berr" || cat "$T/berr" >&2
    check "denoise bf16: recon for every record" test "$(glad-info "$T/b.msgpack" | grep -c 'recon:<f4\[3,32,32\]')" = "$(glad-info "$T/test.msgpack" | grep -vc '^#')"
    check "denoise bf16: other numbers than f32" bash -c "! cmp -s <(glad-info --json '$T/b.msgpack' | tail -n +2) <(glad-info --json '$T/f.msgpack' | tail -n +2)"
    glad-features --model "$T/m.model" --input image --precision bf16 "$T/test.msgpack" > "$T/fb.msgpack"
    tr --steps 4 --precision bf16 -o "$T/bs.model" && tr --steps 2 --precision bf16 -o "$T/bp.model" &&
        tr --steps 4 --resume "$T/bp.model" -o "$T/br.model"
    check "train bf16: resumed (precision from the checkpoint) == uninterrupted" cmp -s "$T/bs.model" "$T/br.model"
    check "train bf16: other weights than f32" bash -c "! cmp -s '$T/bp.model' '$T/f32.model'"
    status 1 "train: a bf16 checkpoint does not resume in f32" tr --resume "$T/bp.model" --steps 4 --precision f32 -o "$T/x.model"
    check "features bf16: the same fields" cmp -s <(glad-info "$T/fb.msgpack" | tail -n +2 | sed 's/ .*//') <(glad-info "$T/ff.msgpack" | tail -n +2 | sed 's/ .*//')
else
    skip "bf16 runs: no AVX512_BF16 here (or GLAD_NO_BF16 / GLAD_NO_AVX512 set)"
    glad-denoise --model "$T/m.model" --precision bf16 "$T/test.msgpack" > /dev/null 2>&1
    check "denoise: bf16 refused without AVX512_BF16" test $? = 1
fi
done_tests
