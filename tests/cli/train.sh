#!/bin/bash
# train.sh - glad-train: the tiny preset learns (loss falls), --resume is
# bit-exact, ATP needs glad-synth output, errors; and what a resume must not
# lose (issue #16): the checkpoint's settings, the log, early file checks,
# refused models.
. "$(dirname "$0")/lib.sh"
# the tiny preset on the demo dataset at 64x64 (the size the main job uses)
glad-synth --make-dataset "$T/demo" --classes fabric --size 64 --train 8 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split train | glad-synth --seed 1 > "$T/train.msgpack"
glad-train --preset tiny --loss atp --steps 40 --batch 4 --lr 2e-3 --log "$T/loss.csv" -o "$T/m.model" "$T/train.msgpack"
check "model written" test -s "$T/m.model"
check "log has 40 steps" test "$(tail -n +2 "$T/loss.csv" | wc -l)" = 40
# the loss of the last 10 steps is below that of the first 10 (a loose, honest bound)
first=$(sed -n '2,11p' "$T/loss.csv" | awk -F, '{s += $2} END {print s / NR}')
last=$(tail -n 10 "$T/loss.csv" | awk -F, '{s += $2} END {print s / NR}')
check "loss falls ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.5 * a)}'
# resume: 6 steps straight == 3 steps + 3 resumed, byte for byte
glad-train --preset tiny --steps 6 --batch 2 --seed 3 -o "$T/a.model" "$T/train.msgpack"
glad-train --preset tiny --steps 3 --batch 2 --seed 3 -o "$T/b.model" "$T/train.msgpack"
cp "$T/b.model" "$T/ck.model"
glad-train --resume "$T/b.model" --steps 6 --batch 2 --seed 3 -o "$T/b.model" "$T/train.msgpack"
check "resume is bit-exact" cmp -s "$T/a.model" "$T/b.model"
glad-train --preset tiny --steps 2 --batch 2 --ema 0.9 --optim adamw --wd 0.01 --clip 1 -o "$T/e.model" "$T/train.msgpack"
check "ema/adamw/clip run" test -s "$T/e.model"
# errors
glad-encode "$T/demo" --split train > "$T/plain.msgpack"
glad-train --loss atp --preset tiny --steps 1 -o "$T/x.model" "$T/plain.msgpack" 2> "$T/err"; rc=$?
check "atp without glad-synth: exit 1 naming the field" sh -c "test $rc = 1 && grep -q \"'anomalous' missing\" '$T/err'"
glad-encode "$T/demo" --split train --size 32 > "$T/small.msgpack"
status 1 "resume with other image sizes" glad-train --resume "$T/m.model" --steps 50 -o "$T/x.model" "$T/small.msgpack"
status 2 "no -o" glad-train "$T/train.msgpack"
status 2 "bad preset" glad-train --preset huge -o "$T/x.model" "$T/train.msgpack"
status 2 "config not buildable (base 40)" glad-train --base 40 --steps 1 -o "$T/x.model" "$T/train.msgpack"
status 1 "not a stream" glad-train -o "$T/x.model" "$T/loss.csv"

# --- #16: a resume loses nothing ---
# options not given come from the checkpoint (ck.model: tiny, batch 2, seed 3, step 3)
glad-train --resume "$T/ck.model" --steps 6 -o "$T/c.model" "$T/train.msgpack"
check "resume takes batch and seed from the checkpoint" cmp -s "$T/a.model" "$T/c.model"
# options given must agree with it, named when they do not
for case in "batch:--batch 4" "lr:--lr 1e-3" "seed:--seed 4" "loss:--loss atp" "base_channels:--base 64" "ema:--ema 0.9"; do
  field=${case%%:*}; opt=${case#*:}
  glad-train --resume "$T/ck.model" --steps 6 $opt -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
  check "resume refuses $opt naming $field (exit $rc: $(head -c 200 "$T/err"))" sh -c "test $rc = 1 && grep -q \"checkpoint's.* $field \" '$T/err'"
done
glad-train --resume "$T/ck.model" --steps 3 -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "resume with --steps not above the checkpoint's step: exit 1 saying so" sh -c "test $rc = 1 && grep -q 'at step 3' '$T/err'"
# the log: the steps between the last checkpoint and a kill are not repeated
glad-train --preset tiny --steps 2 --batch 2 --log "$T/r.csv" -o "$T/r2.model" "$T/train.msgpack"
glad-train --resume "$T/r2.model" --steps 3 --log "$T/r.csv" -o "$T/r3.model" "$T/train.msgpack"   # went on past it, then "killed"
glad-train --resume "$T/r2.model" --steps 4 --log "$T/r.csv" -o "$T/r4.model" "$T/train.msgpack"
check "log after a resume has each step once ($(cut -d, -f1 "$T/r.csv" | tr '\n' ' '))" test "$(cut -d, -f1 "$T/r.csv" | tr '\n' ' ')" = "step 1 2 3 4 "
# files that cannot be written fail before the first step, not after the training
timeout 60 glad-train --preset tiny --steps 100000 -o "$T/no/such/dir/m.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "unwritable -o fails before training (exit $rc)" sh -c "test $rc = 1 && grep -q 'No such file or directory' '$T/err'"
timeout 60 glad-train --preset tiny --steps 100000 -o "$T" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "-o a directory fails before training (exit $rc)" sh -c "test $rc = 1 && grep -q 'Is a directory' '$T/err'"
timeout 60 glad-train --preset tiny --steps 100000 --log "$T/no/such/dir/l.csv" -o "$T/x.model" "$T/train.msgpack" 2> /dev/null; rc=$?
check "unwritable --log fails before training (exit $rc)" test $rc = 1
status 1 "--log /dev/full" glad-train --preset tiny --steps 1 --batch 1 --log /dev/full -o "$T/x.model" "$T/train.msgpack"
# the model or the log written over the training stream: refused, the stream kept
cp "$T/train.msgpack" "$T/in.msgpack"
glad-train --preset tiny --steps 1 --batch 1 -o "$T/in.msgpack" "$T/in.msgpack" 2> "$T/err"; rc=$?
check "-o the input file refused (exit $rc), input kept" sh -c "test $rc = 1 && grep -q 'the output is the input' '$T/err' && cmp -s '$T/in.msgpack' '$T/train.msgpack'"
glad-train --preset tiny --steps 1 --batch 1 --log "$T/in.msgpack" -o "$T/x.model" < "$T/in.msgpack" 2> "$T/err"; rc=$?
check "--log the input (stdin) refused (exit $rc), input kept" sh -c "test $rc = 1 && grep -q 'the log is the input' '$T/err' && cmp -s '$T/in.msgpack' '$T/train.msgpack'"
# --resume of a missing file or a directory says so
glad-train --resume "$T/none.model" --steps 9 -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "missing --resume file: No such file or directory" sh -c "test $rc = 1 && grep -q 'none.model: No such file or directory' '$T/err'"
glad-train --resume "$T" --steps 9 -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "--resume a directory: Is a directory" sh -c "test $rc = 1 && grep -q 'Is a directory' '$T/err'"
# a model with a non-finite weight is refused at load, naming the tensor (the
# first tensor of the data section is time_embedding.1.weight)
cp "$T/m.model" "$T/nan.model"
hl=$(od -An -t u8 -N8 "$T/nan.model" | tr -d ' ')
printf '\377\377\377\177' | dd of="$T/nan.model" bs=1 seek=$((8 + hl)) conv=notrunc 2> /dev/null
glad-train --resume "$T/nan.model" --steps 50 -o "$T/x.model" "$T/train.msgpack" 2> "$T/err"; rc=$?
check "NaN weight refused naming the tensor" sh -c "test $rc = 1 && grep -q \"'time_embedding.1.weight' has NaN\" '$T/err'"
# more skip connections than the UNet holds (8 levels x (8 res blocks + 1) > 64)
glad-encode "$T/demo" --split train --size 128 > "$T/big.msgpack"
timeout 60 glad-train --mults 1,1,1,1,1,1,1,1 --res-blocks 8 --steps 1 --batch 1 -o "$T/x.model" "$T/big.msgpack" 2> "$T/err"; rc=$?
check "too deep a UNet is a usage error (exit $rc)" sh -c "test $rc = 2 && grep -q 'skip connections' '$T/err'"
status 2 "--mults with more than 8 levels" glad-train --mults 1,1,1,1,1,1,1,1,1 -o "$T/x.model" "$T/train.msgpack"
done_tests
