#!/bin/bash
# features.sh - glad-features with the built-in unet backbone.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes fabric --size 32 --train 4 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split train | glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model"
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-features --model "$T/m.model" --input image "$T/test.msgpack" > "$T/f.msgpack"
check "default layers: the two deepest levels" sh -c "glad-info '$T/f.msgpack' | grep -q 'feat.image.1:<f4\[64,16,16\].*feat.image.2:<f4\[64,8,8\]'"
glad-features --model "$T/m.model" --input image --layers 0 --f16 "$T/test.msgpack" > "$T/h.msgpack"
check "f16 level 0" sh -c "glad-info '$T/h.msgpack' | grep -q 'feat.image.0:<f2\[32,32,32\]'"
glad-encode "$T/demo" --split test --size 48 --channels 1 | glad-features --model "$T/m.model" --input image --layers 2 > "$T/r.msgpack"
check "other size and grey input are adapted" sh -c "glad-info '$T/r.msgpack' | grep -q 'feat.image.2:<f4\[64,8,8\]'"
glad-features --model "$T/m.model" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "missing recon: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"'recon' missing\" '$T/err'"
status 2 "layer out of range" glad-features --model "$T/m.model" --layers 7 "$T/test.msgpack"
status 1 "backbone not in this build" glad-features --backbone vit --weights x "$T/test.msgpack"
status 2 "unet without model" glad-features "$T/test.msgpack"
done_tests
