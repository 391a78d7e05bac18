#!/bin/bash
# denoise.sh - glad-denoise strategies produce reconstructions of the right
# shape, batching does not change results, ADS records its step, errors.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 4 --test-good 2 --test-defect 1
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 3 --batch 2 -o "$T/m.model"
glad-encode "$T/demo" --split test > "$T/test.msgpack"
n=$(glad-info "$T/test.msgpack" | grep -vc '^#')
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --batch 1 "$T/test.msgpack" > "$T/b1.msgpack"
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --batch 3 "$T/test.msgpack" > "$T/b3.msgpack"
check "recon for every record" test "$(glad-info "$T/b1.msgpack" | grep -c 'recon:<f4\[3,32,32\]')" = "$n"
# the history differs (--batch), the records must not
check "batch 1 == batch 3" cmp -s <(glad-info --json "$T/b1.msgpack" | tail -n +2) <(glad-info --json "$T/b3.msgpack" | tail -n +2)
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --seed 9 "$T/test.msgpack" > "$T/s9.msgpack"
check "another seed, another reconstruction" bash -c "! cmp -s <(glad-info --json '$T/b1.msgpack' | tail -n +2) <(glad-info --json '$T/s9.msgpack' | tail -n +2)"
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --eta 1 --cond-w 3 --compat ddad "$T/test.msgpack" > "$T/ddad.msgpack"
check "ddad conditioning" test "$(glad-info "$T/ddad.msgpack" | grep -c 'recon:<f4')" = "$n"
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --ads --saff --threshold 0.0 "$T/test.msgpack" > "$T/ads.msgpack"
check "ads: threshold 0 stops at the first step" test "$(glad-info --json "$T/ads.msgpack" | grep -c '"ads_step":100')" = "$n"
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --ads --threshold 10 --min-step 60 "$T/test.msgpack" > "$T/ads2.msgpack"
check "ads: never above threshold -> forced stop below min-step" test "$(glad-info --json "$T/ads2.msgpack" | grep -c '"ads_step":50')" = "$n"
VIT=$ROOT/tests/fixtures/dino-vit.weights.safetensors
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --ads --saff --threshold -1 --ads-backbone vit --ads-weights "$VIT" "$T/test.msgpack" > "$T/adsv.msgpack"
check "ads with the vit backbone: threshold -1 stops at once" test "$(glad-info --json "$T/adsv.msgpack" | grep -c '"ads_step":100')" = "$n"
glad-denoise --model "$T/m.model" --steps 100 --skip 25 --ads --threshold 10 --min-step 60 --ads-backbone vit --ads-weights "$VIT" --ads-layer 2 --ads-norm raw "$T/test.msgpack" > "$T/adsv2.msgpack"
check "ads with the vit backbone: forced stop below min-step" test "$(glad-info --json "$T/adsv2.msgpack" | grep -c '"ads_step":50')" = "$n"
status 2 "ads vit without weights" glad-denoise --model "$T/m.model" --ads --ads-backbone vit "$T/test.msgpack"
status 2 "ads layer out of range" glad-denoise --model "$T/m.model" --ads --ads-backbone vit --ads-weights "$VIT" --ads-layer 9 "$T/test.msgpack"
MN=$SHARED/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
if [ -f "$MN" ]; then
    glad-denoise --model "$T/m.model" --steps 100 --skip 25 --ads --saff --threshold -1 --ads-backbone mobilenetv2 --ads-weights "$MN" --ads-size 64 "$T/test.msgpack" > "$T/adsm.msgpack"
    check "ads with the mobilenetv2 backbone" test "$(glad-info --json "$T/adsm.msgpack" | grep -c '"ads_step":100')" = "$n"
else
    skip "ads with mobilenetv2: $MN absent"
fi
glad-denoise --model "$T/m.model" --mdps --samples 2 --mask-steps 50 --mask-skip 25 --steps 50 --skip 25 --guidance 1 --keep-samples "$T/test.msgpack" > "$T/mdps.msgpack"
check "mdps: mask and samples" test "$(glad-info "$T/mdps.msgpack" | grep -c 'mdps_mask:|u1\[1,32,32\].*recon_samples:<f4\[2,3,32,32\]')" = "$n"
glad-encode "$T/demo" --split test --size 16 > "$T/small.msgpack"
glad-denoise --model "$T/m.model" "$T/small.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "wrong image size: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"record 'pill/test/.*': 'image' is \[3,16,16\]\" '$T/err'"
status 1 "missing model file" glad-denoise --model "$T/none.model" "$T/test.msgpack"
glad-denoise --model "$T/none.model" "$T/test.msgpack" > /dev/null 2> "$T/err"
check "missing model: the system's reason" grep -q "none.model: No such file or directory" "$T/err"
glad-denoise --model "$T" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "a directory as model: exit 1, 'Is a directory'" sh -c "test $rc = 1 && grep -q ': Is a directory' '$T/err'"
# a model file edited: one tensor set to NaN, or metadata T changed (stdlib python only)
edit_model() {  # edit_model IN OUT TENSOR|- [T]
    /usr/bin/python3 - "$@" <<'PYEOF'
import json, struct, sys
src, dst, name = sys.argv[1:4]
b = open(src, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); data = bytearray(b[8 + n:])
if name != "-":
    s, e = h[name]["data_offsets"]; data[s:e] = struct.pack("<f", float(__import__("os").environ.get("EDIT_VAL", "nan"))) * ((e - s) // 4)
if len(sys.argv) > 4: h["__metadata__"]["T"] = sys.argv[4]
hj = json.dumps(h).encode(); hj += b" " * (-len(hj) % 8)
open(dst, "wb").write(struct.pack("<Q", len(hj)) + hj + bytes(data))
PYEOF
}
edit_model "$T/m.model" "$T/nanw.model" down.0.0.bias
glad-denoise --model "$T/nanw.model" --steps 100 --skip 25 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN weights: rejected at load naming the tensor" sh -c "test $rc = 1 && grep -q 'down.0.0.bias' '$T/err'"
# finite weights so large that the forward overflows: a non-finite reconstruction
EDIT_VAL=3e38 edit_model "$T/m.model" "$T/nan.model" down.0.0.weight
glad-denoise --model "$T/nan.model" --steps 100 --skip 25 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN model: exit 1 naming record and 'recon'" sh -c "test $rc = 1 && grep -q \"record 'pill/test/.*': 'recon' contains NaN or infinity\" '$T/err'"
glad-denoise --model "$T/nan.model" --steps 100 --skip 25 --ads --batch 3 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN model, ads: exit 1 naming the first record and the ADS map" sh -c "test $rc = 1 && grep -q \"record 'pill/test/contamination/000': 'recon' failed: the ADS anomaly map at t = 100 contains NaN\" '$T/err'"
glad-denoise --model "$T/nan.model" --mdps --samples 1 --mask-steps 50 --mask-skip 25 --steps 50 --skip 25 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "NaN model, mdps: exit 1 naming the record" sh -c "test $rc = 1 && grep -q \"record 'pill/test/contamination/000': 'recon' failed: the MDPS mask distance map contains NaN\" '$T/err'"
# T and the schedule come from the model file
edit_model "$T/m.model" "$T/t200.model" - 200
status 2 "--steps at or above the model's T" glad-denoise --model "$T/t200.model" --steps 200 --skip 25 "$T/test.msgpack"
glad-denoise --model "$T/t200.model" --steps 100 --skip 25 "$T/test.msgpack" > "$T/t200.msgpack"
check "another T, another schedule" bash -c "! cmp -s <(glad-info --json '$T/b1.msgpack' | tail -n +2) <(glad-info --json '$T/t200.msgpack' | tail -n +2)"
status 2 "no --model" glad-denoise "$T/test.msgpack"
status 2 "saff without ads" glad-denoise --model "$T/m.model" --saff "$T/test.msgpack"
done_tests
