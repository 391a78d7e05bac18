#!/bin/bash
# train.sh - glad-train: the tiny preset learns (loss falls), --resume is
# bit-exact, ATP needs glad-synth output, errors.
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
done_tests
