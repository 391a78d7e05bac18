#!/bin/bash
# adapt.sh - glad-adapt (issue #21): DDAD's domain adaptation and GLAD's
# DINO fine-tuning run on the fixture networks and write feat0..feat{k} that
# glad-features loads; a run stopped after epoch 1 and resumed is bit-identical
# program, the record and the field, or the setting; usage errors exit 2.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1   # one thread count throughout (a bit-exact resume needs the same one); a busy machine makes spinning threads slow
RW="$ROOT/tests/fixtures/wide-resnet.weights.safetensors"
VW="$ROOT/tests/fixtures/dino-vit.weights.safetensors"
glad-synth --make-dataset "$T/demo" --classes fabric --size 64 --train 8 --test-good 1 --test-defect 1 2>/dev/null
glad-encode "$T/demo" --split train --size 32 > "$T/train.msgpack"
glad-train --preset tiny --steps 2 --batch 2 -o "$T/m.model" "$T/train.msgpack"
DA="glad-adapt -m ddad-da -b $RW --model $T/m.model --batch 4 --steps 50 --skip 25 --seed 3"

# ddad-da: 2 epochs straight == 1 epoch + 1 resumed, byte for byte
$DA --epochs 2 -o "$T/a" "$T/train.msgpack"
check "feat0..2 written" test -s "$T/a/feat0.safetensors" -a -s "$T/a/feat1.safetensors" -a -s "$T/a/feat2.safetensors"
check "only the last state kept" sh -c "test -s '$T/a/feat2.state.safetensors' && test ! -e '$T/a/feat1.state.safetensors'"
check "the weights moved" sh -c "! cmp -s '$T/a/feat0.safetensors' '$T/a/feat2.safetensors'"
$DA --epochs 1 -o "$T/b" "$T/train.msgpack"
$DA --epochs 2 --resume -o "$T/b" "$T/train.msgpack"
check "ddad-da resume is bit-exact" cmp -s "$T/a/feat2.safetensors" "$T/b/feat2.safetensors"
check "ddad-da resumed optimiser state is bit-exact" cmp -s "$T/a/feat2.state.safetensors" "$T/b/feat2.state.safetensors"
$DA --epochs 2 --seed 4 -o "$T/c" "$T/train.msgpack"
$DA --epochs 1 --seed 4 -o "$T/c" "$T/train.msgpack"
check "a fresh start removes an earlier run's states" sh -c "test -e '$T/c/feat1.state.safetensors' && test ! -e '$T/c/feat2.state.safetensors'"
check "another seed, other weights" sh -c "! cmp -s '$T/a/feat1.safetensors' '$T/c/feat1.safetensors'"
# the adapted ResNet is a backbone glad-features loads
glad-denoise --model "$T/m.model" --steps 50 --skip 25 "$T/train.msgpack" > "$T/rec.msgpack"
check "glad-features loads feat2" sh -c "glad-features --backbone resnet --weights '$T/a/feat2.safetensors' '$T/rec.msgpack' | glad-info > /dev/null"

# dino-ft on the glad-denoise stream; resume bit-exact too
glad-adapt -m dino-ft -b "$VW" --size 32 --batch 3 --epochs 2 -o "$T/v" "$T/rec.msgpack"
glad-adapt -m dino-ft -b "$VW" --size 32 --batch 3 --epochs 1 -o "$T/w" "$T/rec.msgpack"
glad-adapt -m dino-ft -b "$VW" --size 32 --batch 3 --epochs 2 --resume -o "$T/w" "$T/rec.msgpack"
check "dino-ft resume is bit-exact" cmp -s "$T/v/feat2.safetensors" "$T/w/feat2.safetensors"
check "glad-features loads the fine-tuned ViT" sh -c "glad-features --backbone vit --weights '$T/v/feat2.safetensors' --size 32 '$T/rec.msgpack' | glad-info > /dev/null"

# errors
glad-adapt -m dino-ft -b "$VW" --size 32 -o "$T/x" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "dino-ft without recon: exit 1 naming program, record and field" sh -c "test $rc = 1 && grep -q \"^glad-adapt: error: record 'fabric/train/good/[0-9]*': 'recon' missing\" '$T/err'"
$DA --epochs 3 --lr 1e-3 --resume -o "$T/b" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "resume with another lr: exit 1 naming it" sh -c "test $rc = 1 && grep -q 'has lr ' '$T/err'"
$DA --epochs 2 --resume -o "$T/b" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "resume with nothing left: exit 1 saying so" sh -c "test $rc = 1 && grep -q 'nothing to do' '$T/err'"
status 1 "resume without a state" $DA --resume -o "$T/empty" "$T/train.msgpack"
status 1 "a ViT as ddad-da's ResNet" glad-adapt -m ddad-da -b "$VW" --model "$T/m.model" --batch 4 -o "$T/x" "$T/train.msgpack"
status 1 "missing backbone" glad-adapt -m dino-ft -b "$T/nope.safetensors" -o "$T/x" "$T/rec.msgpack"
status 1 "not a stream" glad-adapt -m dino-ft -b "$VW" -o "$T/x" "$RW"
status 1 "output under a file" glad-adapt -m dino-ft -b "$VW" --size 32 -o "$RW/x" "$T/rec.msgpack"
status 2 "no method" glad-adapt -b "$RW" -o "$T/x" "$T/train.msgpack"
status 2 "bad method" glad-adapt -m ddad -b "$RW" -o "$T/x" "$T/train.msgpack"
status 2 "ddad-da without --model" glad-adapt -m ddad-da -b "$RW" -o "$T/x" "$T/train.msgpack"
status 2 "odd ddad-da batch" $DA --batch 3 -o "$T/x" "$T/train.msgpack"
status 2 "batch larger than the data" $DA --batch 16 -o "$T/x" "$T/train.msgpack"
status 2 "dino-ft size not a multiple of the patch" glad-adapt -m dino-ft -b "$VW" --size 30 -o "$T/x" "$T/rec.msgpack"
status 2 "no -o" glad-adapt -m dino-ft -b "$VW" "$T/rec.msgpack"
status 0 "--help" glad-adapt --help
status 0 "--version" glad-adapt --version
done_tests
