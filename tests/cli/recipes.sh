#!/bin/bash
# recipes.sh - the recipe scripts on a small demo dataset: tables with one
# row per configuration, caching (a rerun recomputes nothing, a changed input
# recomputes), sharded runs equal to unsharded ones, the Slurm script, and
# the MTD recipe on ../shared/datasets/mtd-mini.
. "$(dirname "$0")/lib.sh"
R="$ROOT/recipes"
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 4 --test-good 2 --test-defect 1
small=(--data "$T/demo" --class pill --size 32 --steps 2 --batch 2)
# caching in lib.sh
(
    . "$R/lib.sh"
    export COUNT="$T/count"   # named through a variable: an output, not an input to hash
    echo a > "$T/in.txt"
    cached "$T/c.out" "cat $T/in.txt; echo x >> \$COUNT"
    cached "$T/c.out" "cat $T/in.txt; echo x >> \$COUNT"
    echo b > "$T/in.txt"
    cached "$T/c.out" "cat $T/in.txt; echo x >> \$COUNT"
) 2>/dev/null
check "cache: same command and input ran once, a changed input reran" test "$(wc -l < "$T/count")" = 2
check "cache: output follows the input" test "$(cat "$T/c.out")" = b
bash "$R/ablation-components.sh" "${small[@]}" --out "$T/abl" > "$T/abl.md" 2> "$T/abl.err"
check "components table: 5 rows" test "$(grep -c '^| .* | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/abl.md")" = 5
check "components table: numbers" grep -q '^| full (ADS + ATP + SAFF) | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/abl.md"
bash "$R/ablation-components.sh" "${small[@]}" --out "$T/abl" > "$T/abl2.md" 2> "$T/abl2.err"
check "components rerun: everything cached" sh -c "! grep -q '^making' '$T/abl2.err' && cmp -s '$T/abl.md' '$T/abl2.md'"
bash "$R/fixed-vs-adaptive.sh" "${small[@]}" --out "$T/fva" > "$T/fva.md" 2>/dev/null
check "steps table: 4 rows" test "$(grep -c '^| .* | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/fva.md")" = 4
bash "$R/ddad.sh" "${small[@]}" --out "$T/ddad" > "$T/ddad.md" 2>/dev/null
check "ddad recipe" grep -q '^| DDAD (w 3) | [0-9.]*' "$T/ddad.md"
bash "$R/mdps.sh" "${small[@]}" --out "$T/mdps" > "$T/mdps.md" 2>/dev/null
check "mdps recipe" grep -q '^| MDPS (3 samples) | [0-9.]*' "$T/mdps.md"
# GNU parallel over 3 shards gives the table of the unsharded run
if command -v parallel >/dev/null; then
    bash "$R/parallel.sh" --model "$T/abl/atp.model" --test "$T/abl/test.msgpack" --shards 3 --out "$T/par" \
        -- --steps 250 --skip 25 --seed 1 --ads --saff --threshold 0.05 --min-step 100 > /dev/null 2>&1
    glad-auroc "$T/par"/shard*.msgpack > "$T/par.txt" 2>/dev/null
    glad-auroc "$T/abl/full--ADS---ATP---SAFF-.scored.msgpack" > "$T/whole.txt" 2>/dev/null
    # the metric rows (the pipeline history below them differs: three inputs, --shard)
    check "parallel shards == unsharded (metric rows)" cmp -s <(sed '/^pipeline:/,$d' "$T/par.txt") <(sed '/^pipeline:/,$d' "$T/whole.txt")
else skip "GNU parallel not installed"; fi
check "slurm script parses" bash -n "$R/slurm.sh"
bash "$R/slurm.sh" --model "$T/abl/atp.model" --test "$T/abl/test.msgpack" --shards 4 --out "$T/slurm" --dry-run > "$T/sl.txt"
check "slurm: array of 4 and a merge" sh -c "grep -q '#SBATCH --array=0-3' '$T/sl.txt' && grep -q 'glad-auroc' '$T/slurm/merge.sbatch' && bash -n '$T/slurm/shard.sbatch'"
if have_shared; then
    bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --steps 2 --batch 2 --out "$T/mtd" > "$T/mtd.md" 2>/dev/null
    check "mtd recipe on mtd-mini" grep -q '^| GLAD (unet features) | [0-9.]*' "$T/mtd.md"
    # with MobileNetV2 weights in $GLAD_WEIGHTS the default backbone becomes mobilenetv2
    GLAD_WEIGHTS="$SHARED/weights" bash "$R/ddad.sh" "${small[@]}" --out "$T/ddad-mn" > "$T/ddad-mn.md" 2> "$T/ddad-mn.err"
    check "ddad recipe with mobilenetv2 features" sh -c "grep -q '(features: mobilenetv2)' '$T/ddad-mn.md' && grep -q '^| DDAD (w 3) | [0-9.]*' '$T/ddad-mn.md'"
    check "the features differ from the unet ones" sh -c "! cmp -s '$T/ddad/scored.msgpack' '$T/ddad-mn/scored.msgpack'"
else skip "../shared absent: the MTD recipe is not run"; fi
status 2 "mtd without --data" bash "$R/mtd.sh"
status 2 "a backbone without weights" env GLAD_WEIGHTS="$T/none" bash "$R/ddad.sh" "${small[@]}" --out "$T/x" --backbone mobilenetv2
status 2 "an unknown backbone" bash "$R/ddad.sh" "${small[@]}" --out "$T/x" --backbone alexnet
done_tests
