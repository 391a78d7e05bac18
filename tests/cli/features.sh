#!/bin/bash
# features.sh - glad-features with the built-in unet backbone.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes fabric --size 32 --train 4 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model"
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-features --model "$T/m.model" --input image "$T/test.msgpack" > "$T/f.msgpack"
check "default layers: the two deepest levels" sh -c "glad-info '$T/f.msgpack' | grep -q 'feat.image.1:<f4\[64,16,16\].*feat.image.2:<f4\[64,8,8\]'"
# --pool K: each layer's map replaced by its K x K local mean (border windows
# clipped), checked against numpy on the unpooled features of the same run
glad-features --model "$T/m.model" --input image --pool 3 "$T/test.msgpack" > "$T/p3.msgpack"
if /usr/bin/python3 -c 'import msgpack_numpy' 2>/dev/null; then
    check "--pool 3 = the clipped 3x3 mean of the unpooled maps (numpy)" env PYTHONPATH="$ROOT/formats/python" /usr/bin/python3 - "$T/f.msgpack" "$T/p3.msgpack" <<'PYEOF'
import sys, numpy as np, gladstream
_, a = gladstream.read(sys.argv[1]); _, b = gladstream.read(sys.argv[2])
assert len(a) == len(b) > 0
for ra, rb in zip(a, b):
    for k in ("feat.image.1", "feat.image.2"):
        x = ra[k].astype(np.float64); C, H, W = x.shape
        pad = np.pad(x, ((0, 0), (1, 1), (1, 1))); one = np.pad(np.ones((H, W)), 1)
        s = sum(pad[:, i:i + H, j:j + W] for i in range(3) for j in range(3))
        n = sum(one[i:i + H, j:j + W] for i in range(3) for j in range(3))
        err = np.abs(rb[k] - s / n).max()
        assert err < 1e-5, (ra["id"], k, err)
PYEOF
else
    skip "--pool against numpy: python3-msgpack-numpy missing"
fi
glad-features --model "$T/m.model" --input image --pool 1 "$T/test.msgpack" > "$T/p1.msgpack"
check "--pool 1 is no pooling (the records equal)" cmp -s <(glad-info --json "$T/p1.msgpack" | tail -n +2) <(glad-info --json "$T/f.msgpack" | tail -n +2)
check "--pool 3 changes the maps (the records' min/mean/max differ)" bash -c "! cmp -s <(glad-info --json '$T/p3.msgpack' | tail -n +2) <(glad-info --json '$T/f.msgpack' | tail -n +2)"
status 2 "--pool even" glad-features --model "$T/m.model" --input image --pool 2 "$T/test.msgpack"
status 2 "--pool 0" glad-features --model "$T/m.model" --input image --pool 0 "$T/test.msgpack"
glad-features --model "$T/m.model" --input image --layers 0 --f16 "$T/test.msgpack" > "$T/h.msgpack"
check "f16 level 0" sh -c "glad-info '$T/h.msgpack' | grep -q 'feat.image.0:<f2\[32,32,32\]'"
glad-encode "$T/demo" --split test --size 48 --channels 1 | glad-features --model "$T/m.model" --input image --layers 2 > "$T/r.msgpack"
check "other size and grey input are adapted" sh -c "glad-info '$T/r.msgpack' | grep -q 'feat.image.2:<f4\[64,8,8\]'"
glad-features --model "$T/m.model" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "missing recon: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"'recon' missing\" '$T/err'"
status 2 "layer out of range" glad-features --model "$T/m.model" --layers 7 "$T/test.msgpack"
status 2 "an empty --layers list" glad-features --model "$T/m.model" --input image --layers '' "$T/test.msgpack"
status 2 "an empty name in --layers" glad-features --model "$T/m.model" --input image --layers 1, "$T/test.msgpack"
status 2 "an empty name in --input" glad-features --model "$T/m.model" --input image,,recon "$T/test.msgpack"
glad-features --model "$T/none.model" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "missing model: exit 1, the system's reason" sh -c "test $rc = 1 && grep -q 'none.model: No such file or directory' '$T/err'"
glad-features --model "$T" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "a directory as model: exit 1, 'Is a directory'" sh -c "test $rc = 1 && grep -q ': Is a directory' '$T/err'"
# a tensor set to VAL: NaN weights are refused at load; finite weights large
# enough to overflow the forward give non-finite features: an error naming
# record and field
edit() {  # edit IN OUT TENSOR VAL
/usr/bin/python3 - "$@" <<'PYEOF'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read()); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h[sys.argv[3]]["data_offsets"]; b[8 + n + s:8 + n + e] = struct.pack("<f", float(sys.argv[4])) * ((e - s) // 4)
open(sys.argv[2], "wb").write(b)
PYEOF
}
edit "$T/m.model" "$T/nanw.model" down.0.0.bias nan
glad-features --model "$T/nanw.model" --input image "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN weights: exit 1 naming the tensor" sh -c "test $rc = 1 && grep -q 'down.0.0.bias' '$T/err'"
edit "$T/m.model" "$T/nan.model" down.0.0.weight 3e38
glad-features --model "$T/nan.model" --input image "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN features: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"record 'fabric/test/.*': 'feat.image.1' contains NaN or infinity\" '$T/err'"
status 1 "missing weights file" glad-features --backbone vit --weights "$T/nope" "$T/test.msgpack"
status 2 "unknown backbone" glad-features --backbone alexnet --weights "$T/m.model" "$T/test.msgpack"
status 2 "unet without model" glad-features "$T/test.msgpack"
status 2 "vit without weights" glad-features --backbone vit "$T/test.msgpack"
# --weights alone: the kind is read from the file
glad-features --weights "$T/m.model" --input image "$T/test.msgpack" > "$T/a.msgpack"
check "a glad-train model given as --weights is the unet backbone" cmp -s <(glad-info --json "$T/a.msgpack" | tail -n +2) <(glad-info --json "$T/f.msgpack" | tail -n +2)
# DINO ViT (the random-weight fixture: patch 8, dim 64, depth 4)
VIT=$ROOT/tests/fixtures/dino-vit.weights.safetensors
glad-features --weights "$VIT" --input image,image "$T/test.msgpack" > "$T/v.msgpack"
check "vit default layers: blocks 1..4 of 4, [64,4,4] at 32x32" sh -c "glad-info '$T/v.msgpack' | grep -q 'feat.image.1:<f4\[64,4,4\].*feat.image.4:<f4\[64,4,4\]'"
glad-features --backbone vit --weights "$VIT" --input image --layers 4 --size 64 --norm raw "$T/test.msgpack" > "$T/v64.msgpack"
check "vit --size 64: an 8x8 grid" sh -c "glad-info '$T/v64.msgpack' | grep -q 'feat.image.4:<f4\[64,8,8\]'"
status 2 "vit block 0 does not exist" glad-features --weights "$VIT" --layers 0 "$T/test.msgpack"
status 1 "vit --size not a multiple of the patch" glad-features --weights "$VIT" --size 36 --input image "$T/test.msgpack"
# --also-size: the same layers at further input sizes as feat.image.L@N, each
# the features a run at that --size gives; glad-bank --layers L keeps L and its
# L@N; glad-score --layers L sums their maps (the amap means add up, --sigma 0)
glad-features --weights "$VIT" --layers 3,4 --size 32 --also-size 64,16 --input image "$T/test.msgpack" > "$T/ms.msgpack"
check "--also-size 64,16: feat.image.4 [64,4,4], 4@64 [64,8,8], 4@16 [64,2,2]" sh -c "glad-info '$T/ms.msgpack' | grep -q 'feat.image.4:<f4\[64,4,4\].*feat.image.4@64:<f4\[64,8,8\].*feat.image.4@16:<f4\[64,2,2\]'"
# stats: min/mean/max of one field of the first record in glad-info's line
stats() { glad-info "$1" | grep -v '^#' | head -1 | tr '\t' '\n' | grep "^$2:" | cut -d' ' -f2; }
glad-features --weights "$VIT" --layers 3,4 --size 64 --input image "$T/test.msgpack" > "$T/ms64.msgpack"
a=$(stats "$T/ms.msgpack" feat.image.4@64) b=$(stats "$T/ms64.msgpack" feat.image.4)
check "feat.image.4@64 is what --size 64 gives as feat.image.4 (min/mean/max)" test -n "$a" -a "$a" = "$b"
a=$(stats "$T/ms.msgpack" feat.image.3) b=$(stats "$T/v.msgpack" feat.image.3)
check "feat.image.3 at --size 32 is unchanged by --also-size" test -n "$a" -a "$a" = "$b"
glad-encode "$T/demo" --split train | glad-features --weights "$VIT" --layers 3,4 --size 32 --also-size 64,16 --input image > "$T/mstr.msgpack"
glad-encode "$T/demo" --split train | glad-features --weights "$VIT" --layers 4 --size 32 --input image > "$T/mstr0.msgpack"
glad-bank -o "$T/msall.safetensors" "$T/mstr.msgpack"
glad-bank --layers 4 -o "$T/ms4.safetensors" "$T/mstr.msgpack"
glad-bank --layers 4@64 -o "$T/ms464.safetensors" "$T/mstr.msgpack"
glad-bank -o "$T/ms0.safetensors" "$T/mstr0.msgpack"
names() { head -c 4000 "$1" | grep -ao '"bank\.[^"]*"' | tr -d '"' | sort | tr '\n' ' '; }
check "glad-bank: every layer by default (3, 4 at three sizes)" test "$(names "$T/msall.safetensors")" = "bank.3 bank.3@16 bank.3@64 bank.4 bank.4@16 bank.4@64 "
check "glad-bank --layers 4: 4, 4@16, 4@64" test "$(names "$T/ms4.safetensors")" = "bank.4 bank.4@16 bank.4@64 "
check "glad-bank --layers 4@64: that one" test "$(names "$T/ms464.safetensors")" = "bank.4@64 "
status 1 "glad-bank --layers 4@32: absent, named" glad-bank --layers 4@32 -o "$T/x.safetensors" "$T/mstr.msgpack"
check "... the message names feat.image.4@32" grep -q "'feat.image.4@32' missing" "$T/.stderr"
S="glad-score --preset glad --bank-mode replace --sigma 0 --image-score max"
$S --bank "$T/msall.safetensors" --layers 4 "$T/ms.msgpack" > "$T/sa.msgpack"
$S --bank "$T/ms0.safetensors" --layers 4 "$T/ms.msgpack" > "$T/s0.msgpack"
$S --bank "$T/msall.safetensors" --layers 4@64 "$T/ms.msgpack" > "$T/s64.msgpack"
$S --bank "$T/msall.safetensors" --layers 4@16 "$T/ms.msgpack" > "$T/s16.msgpack"
means() { glad-info "$1" | grep -v '^#' | tr '\t' '\n' | grep '^amap:' | cut -d' ' -f2 | cut -d/ -f2 | tr '\n' ' '; }
check "glad-score --layers 4: the sum of the maps of 4, 4@64 and 4@16 (amap means)" awk -v a="$(means "$T/sa.msgpack")" -v b="$(means "$T/s0.msgpack")" -v c="$(means "$T/s64.msgpack")" -v d="$(means "$T/s16.msgpack")" 'BEGIN {
    n = split(a, A); split(b, B); split(c, C); split(d, D); if (n < 2) exit 1
    for (i = 1; i <= n; i++) { e = A[i] - B[i] - C[i] - D[i]; if (e > 2e-3 * A[i] || -e > 2e-3 * A[i] || C[i] <= 0 || D[i] <= 0) exit 1 } }'
status 2 "--also-size without --size" glad-features --weights "$VIT" --also-size 64 "$T/test.msgpack"
status 2 "--also-size equal to --size" glad-features --weights "$VIT" --size 32 --also-size 32 "$T/test.msgpack"
status 2 "--also-size twice the same" glad-features --weights "$VIT" --size 32 --also-size 16,16 "$T/test.msgpack"
status 2 "--also-size: more than 4" glad-features --weights "$VIT" --size 32 --also-size 8,16,24,40,48 "$T/test.msgpack"
status 2 "--also-size not a multiple of the patch" glad-features --weights "$VIT" --size 32 --also-size 36 "$T/test.msgpack"
status 2 "--also-size with the unet backbone (its model's size)" glad-features --model "$T/m.model" --size 32 --also-size 16 "$T/test.msgpack"
# Wide ResNet layout (fixture: Bottleneck [1,2,1,1], width 16)
RN=$ROOT/tests/fixtures/wide-resnet.weights.safetensors
glad-features --weights "$RN" --input image "$T/test.msgpack" > "$T/rn.msgpack"
check "resnet default layers 2,3: [512,4,4] and [1024,2,2] at 32x32" sh -c "glad-info '$T/rn.msgpack' | grep -q 'feat.image.2:<f4\[512,4,4\].*feat.image.3:<f4\[1024,2,2\]'"
# a truncated weights file is an error naming the file, not a crash
head -c 5000 "$RN" > "$T/cut.safetensors"
glad-features --backbone resnet --weights "$T/cut.safetensors" --input image "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "truncated resnet weights: exit 1 with a message" sh -c "test $rc = 1 && grep -q 'glad-features: error' '$T/err'"
MN=$SHARED/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
if [ -f "$MN" ]; then
    glad-features --weights "$MN" --size 64 --input image "$T/test.msgpack" > "$T/mn.msgpack"
    check "mobilenetv2 default blocks 5,12: [32,8,8] and [96,4,4] at 64" sh -c "glad-info '$T/mn.msgpack' | grep -q 'feat.image.5:<f4\[32,8,8\].*feat.image.12:<f4\[96,4,4\]'"
    head -c 100000 "$MN" > "$T/cut.tflite"
    status 1 "truncated tflite" glad-features --weights "$T/cut.tflite" --input image "$T/test.msgpack"
    status 1 "mobilenetv2 --size not a multiple of 32" glad-features --weights "$MN" --size 48 --input image "$T/test.msgpack"
else
    skip "mobilenetv2: $MN absent"
fi
done_tests
