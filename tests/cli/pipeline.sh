#!/bin/bash
# pipeline.sh - the whole chain on a small demo dataset, and a sharded
# evaluation that must give the same table as the unsharded one.
. "$(dirname "$0")/lib.sh"
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 8 --test-good 3 --test-defect 1
glad-encode "$T/demo" --split train | glad-synth --seed 1 | glad-train --preset tiny --loss atp --steps 6 --batch 4 -o "$T/m.model"
glad-encode "$T/demo" --split test > "$T/test.msgpack"
glad-denoise --model "$T/m.model" --steps 100 --skip 50 --ads --saff --threshold 0.05 --min-step 60 "$T/test.msgpack" \
    | glad-features --model "$T/m.model" | glad-score --preset glad > "$T/scored.msgpack"
glad-auroc --format csv "$T/scored.msgpack" > "$T/table.csv"
check "a table row for the class" test "$(grep -c '^pill,' "$T/table.csv")" = 1
check "metrics are fractions" awk -F, 'NR > 1 && $1 == "pill" { for (i = 4; i <= NF; i++) if ($i != "" && ($i < 0 || $i > 1)) exit 1 }' "$T/table.csv"
# sharded: three shards through the same pipeline, merged by glad-auroc
for k in 0 1 2; do
    glad-denoise --model "$T/m.model" --steps 100 --skip 50 --ads --saff --threshold 0.05 --min-step 60 --shard $k/3 "$T/test.msgpack" \
        | glad-features --model "$T/m.model" | glad-score --preset glad > "$T/shard$k.msgpack"
done
glad-auroc --format csv "$T"/shard*.msgpack > "$T/table-sharded.csv"
check "sharded run gives the same table" cmp -s "$T/table.csv" "$T/table-sharded.csv"
done_tests
