#!/bin/bash
# recipes.sh - the recipe scripts on a small demo dataset: tables with one
# row per configuration, caching (a rerun recomputes nothing, a changed input
# recomputes), sharded runs equal to unsharded ones, the Slurm script, and
# the MTD recipe on ../shared/datasets/mtd-mini; tune.sh (synthetic
# validation), the knobs (--tune, --tile, --feat-layers, --image-score) and
# benchmark.sh. A real Slurm is tested in slurm.sh.
. "$(dirname "$0")/lib.sh"
R="$ROOT/recipes"
# the checks that expect the built-in unet backbone run without MobileNetV2
# weights; those that want them pass GLAD_WEIGHTS themselves, so a user's own
# GLAD_WEIGHTS must not change which backbone the recipes pick here
unset GLAD_WEIGHTS
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
# best_row (lib.sh): the highest criterion, the first on ties, rows without one (-1) never
printf 'name\tcrit\na\t0.5\nb\t0.7\nc\t0.7\nd\t-1\n' > "$T/rows.tsv"
printf 'name\tcrit\tx\na\t-1\t9\nb\t-1\t1\n' > "$T/none.tsv"
check "best_row: highest, first of equal ones, by column, none without a criterion" bash -c ". '$R/lib.sh' 2>/dev/null; test \"\$(best_row '$T/rows.tsv' | cut -f1)\" = b &&
    test \"\$(best_row '$T/none.tsv' 3 | cut -f1)\" = a && test -z \"\$(best_row '$T/none.tsv' 2)\""
# kept_row (lib.sh): b's mean is higher than a's by 0.005 but its per-fold differences
# (+.01 -.02 +.02 +.01) have a standard error of 0.0087, so a stays; c beats a by 0.02 on
# every fold (no spread: the 0.001 floor decides) and replaces it; with one fold, or a fold
# without a criterion, there is no standard error and b's 0.005 is enough
printf 'name\tfold_criteria\tcriterion\na\t0.80,0.82,0.84,0.86\t0.83\nb\t0.81,0.80,0.86,0.87\t0.835\n' > "$T/kept.tsv"
{ cat "$T/kept.tsv"; printf 'c\t0.82,0.84,0.86,0.88\t0.85\n'; } > "$T/kept-c.tsv"
printf 'name\tfold_criteria\tcriterion\na\t0.83\t0.83\nb\t0.835\t0.835\n' > "$T/kept-1.tsv"
sed 's/0.80,0.82,0.84,0.86/0.80,0.82,-1,0.86/' "$T/kept.tsv" > "$T/kept-undef.tsv"
check "kept_row: a gain within the folds' standard error keeps the earlier row" bash -c ". '$R/lib.sh' 2>/dev/null
    test \"\$(kept_row '$T/kept.tsv' 0.001 | cut -f1)\" = a && test \"\$(best_row '$T/kept.tsv' | cut -f1)\" = b"
check "kept_row: a gain beyond it replaces; one fold or an undefined fold has no standard error" bash -c ". '$R/lib.sh' 2>/dev/null
    test \"\$(kept_row '$T/kept-c.tsv' 0.001 | cut -f1)\" = c && test \"\$(kept_row '$T/kept-1.tsv' 0.001 | cut -f1)\" = b &&
    test \"\$(kept_row '$T/kept-undef.tsv' 0.001 | cut -f1)\" = b && test \"\$(kept_row '$T/kept.tsv' 0.01 | cut -f1)\" = a"
bash "$R/ablation-components.sh" "${small[@]}" --out "$T/abl" > "$T/abl.md" 2> "$T/abl.err"
check "components table: 5 rows" test "$(grep -c '^| .* | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/abl.md")" = 5
check "components table: numbers" grep -q '^| full (ADS + ATP + SAFF) | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/abl.md"
# metrics_row (lib.sh): a metric the stream cannot define (normal records alone) is n/a, not 0.0
if /usr/bin/python3 -c 'import msgpack_numpy' 2>/dev/null; then
    /usr/bin/python3 - "$ROOT/formats/python" "$T/abl/full--ADS---ATP---SAFF-.scored.msgpack" "$T/normals.msgpack" <<'PYEOF'
import sys; sys.path.insert(0, sys.argv[1])
from gladstream import read, write
h, recs = read(sys.argv[2]); write(sys.argv[3], h, [r for r in recs if r["label"] == 0])
PYEOF
    check "metrics_row: n/a where undefined, figures where defined" bash -c ". '$R/lib.sh' 2>/dev/null; test \"\$(metrics_row x '$T/normals.msgpack' 2>/dev/null)\" = '| x | n/a | n/a | n/a |' &&
        metrics_row y '$T/abl/full--ADS---ATP---SAFF-.scored.msgpack' 2>/dev/null | grep -q '^| y | [0-9.]* | [0-9.]* | [0-9.]* |\$'"
else skip "python3-msgpack-numpy missing: metrics_row's n/a not tested"; fi
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
check "run.sh's defaults are datasets/demo/tuning.md's chosen line" grep -qxF "$(bash "$R/run.sh" --show-defaults)" "$ROOT/datasets/demo/tuning.md"
check "mtd.sh's defaults are datasets/mtd/tuning.md's chosen line" grep -qxF "$(bash "$R/mtd.sh" --show-defaults)" "$ROOT/datasets/mtd/tuning.md"
status 2 "a backbone without weights" env GLAD_WEIGHTS="$T/none" bash "$R/ddad.sh" "${small[@]}" --out "$T/x" --backbone mobilenetv2
status 2 "an unknown backbone" bash "$R/ddad.sh" "${small[@]}" --out "$T/x" --backbone alexnet
# --- tune.sh: knobs chosen on synthetic validation (held-out training normals)
if ! command -v jq >/dev/null; then skip "jq missing: tune.sh, --tune and benchmark.sh not tested"; done_tests; exit $?; fi
glad-synth --make-dataset "$T/demo8" --classes pill --size 32 --train 8 --test-good 2 --test-defect 1
tsmall=(--data "$T/demo8" --class pill --size 32 --steps 2 --batch 2 --grid quick)
bash "$R/tune.sh" "${tsmall[@]}" --out "$T/tune" --peek > "$T/tune.md" 2> "$T/tune.err"
check "tune: 4 of 8 normals held out" grep -q '8 training normals: 4 held out' "$T/tune.err"
# (half of the hold-out gets an anomaly; glad-synth leaves an image normal when its
# anomaly misses the object, so at least 2 normal and 1 anomalous record)
check "tune: validation = the 4 held-out images, normal and synthetic" \
    sh -c "glad-info '$T/tune/val.msgpack' | awk '\$4 == \"label=0\" { n++ } \$4 == \"label=1\" { a++ } END { exit !(n >= 2 && a >= 1 && n + a == 4) }'"
check "tune: the model was trained on the other 4" sh -c "glad-info -s '$T/tune/train.msgpack' | grep -q '^# 4 records'"
check "tune: grid of 2 strategies x 2 layer sets x 2 image scores" test "$(tail -n +2 "$T/tune/val-grid.tsv" | wc -l)" = 8
check "tune: the choice is the best validation criterion" sh -c "
    best=\$(tail -n +2 '$T/tune/val-grid.tsv' | sort -t '	' -k7,7gr | head -1 | cut -f7)
    chosen=\$(jq -r '.choice | \"\(.strategy)\t\(.layers)\t\(.image_score)\"' '$T/tune/tune.json')
    grep -F \"\$chosen\" '$T/tune/val-grid.tsv' | cut -f7 | grep -qx \"\$best\""
check "tune: tune.json says how, thresholds calibrated" sh -c "jq -e '.how and .validation.held_out == 4 and .thresholds.image_threshold != null' '$T/tune/tune.json' >/dev/null && test -s '$T/tune/thresholds.json'"
check "tune: peek.md compares with the test-peeking choice" sh -c "grep -q '^| validation-chosen |' '$T/tune/peek.md' && grep -q '^| best on test (peeking) |' '$T/tune/peek.md'"
# peek_line DIR FEAT [BANK]: the chosen line (tune.json) scored on the test split
# here, from the grid's test features (FEAT: a reconstruction's, or with BANK the
# images' own against the bank), through its map normalisation and weight -> its
# I-AUROC, P-AUROC, AUPRO in percent, as peek.md's last row prints them
peek_line() {
    local c l r n w
    c=$(jq -r '.choice | "\(.layers) \(.image_score) \(.map_norm) \(.global_weight)"' "$1/tune.json")
    read -r l r n w <<< "$c"
    glad-score --preset glad --layers "$l" --image-score "$r" ${3:+--bank "$3" --bank-mode replace} "$2" \
        | { if [ "$n" = none ]; then cat; else glad-score --rescore --image-score "$r" --map-norm "$n"; fi; } \
        | { if [ "$w" = 0 ]; then cat; else glad-score --rescore --image-score "$r" --global-weight "$w"; fi; } \
        | glad-auroc --by none --format csv 2>/dev/null \
        | awk -F, 'NR > 1 && $1 == "all" { printf "%s | %s | %s\n", p($4), p($7), p($10) }
            function p(x) { return x ~ /^[0-9.eE+-]+$/ ? sprintf("%.1f", 100 * x) : "n/a" }'
}
export -f peek_line
check "tune --peek: the chosen line as the recipes run it (stage 3's normalisation) on the test split, its figures recomputed" bash -c "
    s=\$(jq -r .choice.strategy '$T/tune/tune.json') && v=\$(peek_line '$T/tune' '$T/tune/test-'\$s'.feat.msgpack') && test -n \"\$v\" &&
    grep -qF \" | \$v |\" <(grep '^| validation-chosen line as the recipes run it (bank none, map norm ' '$T/tune/peek.md')"
bash "$R/tune.sh" "${tsmall[@]}" --out "$T/tune" > /dev/null 2> "$T/tune2.err"
check "tune rerun: nothing recomputed" sh -c "! grep -q '^making' '$T/tune2.err'"
status 2 "tune: --tune is not its option" bash "$R/tune.sh" "${tsmall[@]}" --out "$T/x" --tune
# --val-family scar: validation anomalies of CutPaste's family
bash "$R/tune.sh" "${tsmall[@]}" --val-family scar --out "$T/tune-scar" > /dev/null 2> "$T/tune3.err"
check "tune --val-family scar: the same held-out images, other anomalies" sh -c "
    glad-info '$T/tune-scar/val.msgpack' | awk '{ print \$1 }' > '$T/vs.txt' && glad-info '$T/tune/val.msgpack' | awk '{ print \$1 }' > '$T/vd.txt' &&
    cmp -s '$T/vs.txt' '$T/vd.txt' && ! cmp -s '$T/tune/val.msgpack' '$T/tune-scar/val.msgpack'"
check "tune --val-family scar: tune.json and tune.md say which anomalies" sh -c "
    jq -e '.validation.anomalies | test(\"CutPaste.s scar\")' '$T/tune-scar/tune.json' >/dev/null && grep -q 'CutPaste.s scar family' '$T/tune-scar/tune.md'"
check "tune --val-family scar (one family): no per-family table, defect 'synthetic' as before" sh -c "
    ! test -e '$T/tune-scar/val-family.tsv' && ! grep -q '^Per validation family' '$T/tune-scar/tune.md' &&
    jq -e '.family_metrics == []' '$T/tune-scar/tune.json' > /dev/null && glad-info --json '$T/tune-scar/val.msgpack' | grep -q '\"defect\":\"synthetic\"'"
# --val-family scar,defect-mix: the anomalous half split between CutPaste's scar and drawn defects
bash "$R/tune.sh" "${tsmall[@]}" --val-family scar,defect-mix --out "$T/tune-dm" > /dev/null 2> "$T/tune4.err"
check "tune --val-family scar,defect-mix: the same held-out images and labels, other anomalies" sh -c "
    glad-info '$T/tune-dm/val.msgpack' | awk '/^[^#]/ { print \$1, \$3 }' | sort > '$T/vm.txt' &&
    glad-info '$T/tune/val.msgpack' | awk '/^[^#]/ { print \$1, \$3 }' | sort > '$T/vd2.txt' &&
    cmp -s '$T/vm.txt' '$T/vd2.txt' && glad-info '$T/tune-dm/val.msgpack' | grep -q 'label=1' && ! cmp -s '$T/tune-scar/val.msgpack' '$T/tune-dm/val.msgpack'"
check "tune --val-family scar,defect-mix: tune.json and tune.md name both families" sh -c "
    jq -e '.validation.anomalies | test(\"equal shares: CutPaste.s scar family / drawn defects .defect-mix family.\")' '$T/tune-dm/tune.json' >/dev/null &&
    grep -q 'drawn defects (defect-mix family)' '$T/tune-dm/tune.md'"
status 2 "tune: an unknown family in a --val-family list" bash "$R/tune.sh" "${tsmall[@]}" --val-family scar,perlin --out "$T/x"
status 2 "tune: an unknown --val-family" bash "$R/tune.sh" "${tsmall[@]}" --val-family perlin --out "$T/x"
# history-note.pl: one entry appended, the records untouched
glad-encode "$T/demo8" --class pill --split test --size 32 > "$T/hn.msgpack"
perl "$R/history-note.pl" tune.sh 1 --layers 0,1 --chosen-by "validation I-AUROC 90" < "$T/hn.msgpack" > "$T/hn2.msgpack"
check "history-note: the entry is in the history" sh -c "glad-info -s '$T/hn2.msgpack' | grep -q '^# history 2: tune.sh 1 --layers 0,1 --chosen-by validation I-AUROC 90'"
check "history-note: a valid stream, records byte-identical" bash -c "glad-info -q '$T/hn2.msgpack' && cmp -s <(glad-info '$T/hn.msgpack' | grep -v '^#') <(glad-info '$T/hn2.msgpack' | grep -v '^#')"
# --- run.sh knobs: --tune with tiles (trained on 16x16 tiles, scored at 32x32)
bash "$R/run.sh" --data "$T/demo8" --classes pill --size 32 --steps 2 --batch 2 --tune --tune-grid quick \
    --tile 16 --overlap 4 --out "$T/run" > "$T/run.md" 2> "$T/run.err"
check "run.sh --tune: the metric table" grep -q '^| pill | ' "$T/run.md"
check "run.sh --tune: how each knob was chosen" sh -c "grep -q '^| knobs chosen by tune.sh |' '$T/run.md' && grep -q '^| pill | .* | validation: 4 held-out' '$T/run.md'"
check "run.sh --tune: the scored stream's history records the choice" sh -c "glad-info -s '$T/run/pill/scored.msgpack' | grep -q 'tune.sh .*--chosen-by validation'"
check "run.sh --tune: decisions per image" sh -c "test \$(wc -l < '$T/run/images.csv') = 8 && grep -q 'I-F1' '$T/run/pill/decisions.txt'"
check "run.sh --tune: the table has each class's figures at its own calibrated threshold" sh -c "
    t=\$(jq -r .image_threshold '$T/run/pill/tune/thresholds.json') &&
    awk -v t=\"\$t\" '/^\\| decisions at the calibrated threshold \\|/ { f = NR } f && NR == f + 2 { split(\$0, a, \" *\\\\| *\"); d = a[3] - t; ok = a[2] == \"pill\" && d * d <= 1e-6 * t * t + 1e-18 } END { exit !ok }' '$T/run.md' &&
    grep -q '^Thresholds: glad-auroc --calibrate on each class' '$T/run.md'"
check "run.sh --tile: merged to one 32x32 map per image" sh -c "glad-info '$T/run/pill/scored.msgpack' | grep -c 'amap:<f4\[1,32,32\]' | grep -qx 7"
# run.sh --denoise / --threshold replace the default strategy (the denoise step's history says so)
bash "$R/run.sh" --data "$T/demo8" --classes pill --size 32 --steps 2 --batch 2 --denoise '--steps 150 --skip 25' \
    --out "$T/run-fixed" > /dev/null 2>&1
check "run.sh --denoise: glad-denoise ran that strategy" sh -c "glad-info -s '$T/run-fixed/pill/scored.msgpack' | grep 'glad-denoise' | grep -q -- '--steps 150 --skip 25' &&
    ! glad-info -s '$T/run-fixed/pill/scored.msgpack' | grep 'glad-denoise' | grep -q -- '--ads'"
status 2 "run.sh: --denoise with --tune" bash "$R/run.sh" --data "$T/demo8" --denoise '--steps 150' --tune --out "$T/x"
# run.sh --precision bf16: training, denoising and features in bf16 (issue #19)
status 2 "run.sh: --precision fp16" bash "$R/run.sh" --data "$T/demo8" --precision fp16 --out "$T/x"
if grep -q avx512_bf16 /proc/cpuinfo && [ -z "${GLAD_NO_BF16:-}" ] && [ -z "${GLAD_NO_AVX512:-}" ]; then
    bash "$R/run.sh" --data "$T/demo8" --classes pill --size 32 --steps 2 --batch 2 --denoise '--steps 150 --skip 25' \
        --precision bf16 --out "$T/run-bf16" > "$T/run-bf16.md" 2>/dev/null
    check "run.sh --precision bf16: denoise and features ran in bf16, the table says so" sh -c "
        test \$(glad-info -s '$T/run-bf16/pill/scored.msgpack' | grep -E 'glad-(denoise|features)' | grep -c -- '--precision bf16') = 2 &&
        grep -q '^precision: bf16' '$T/run-bf16.md' && ! grep -q '^precision' '$T/run.md'"
    check "run.sh --precision bf16: the model was trained in mixed precision" sh -c "grep -aq 'train.precision' '$T/run-bf16/pill/model'"
else
    status 1 "run.sh --precision bf16 without AVX512_BF16" bash "$R/run.sh" --data "$T/demo8" --classes pill --size 32 --steps 2 --batch 2 --precision bf16 --out "$T/x"
fi
# demo-tune.sh: one tune.sh per class, the row with the best mean validation criterion
glad-synth --make-dataset "$T/demo2t" --classes fabric,pill --size 32 --train 8 --test-good 2 --test-defect 1
bash "$R/demo-tune.sh" --data "$T/demo2t" --size 32 --steps 2 --batch 2 --grid quick --peek --out "$T/dtune" > "$T/dtune.md" 2>/dev/null
check "demo-tune: chosen line in run.sh's form, test rows per class" sh -c "
    grep -q \"^chosen: --denoise '--steps [0-9]* --skip 25.*' --feat-layers [0-9,]* --image-score [a-z:0-9-]*\$\" '$T/dtune.md' &&
    grep -q '^| fabric | chosen on validation (the default) |' '$T/dtune.md' && grep -q '^| pill | best on test (peeking) |' '$T/dtune.md'"
# the best mean criterion over the two classes (first row on ties), recomputed here
read -r b_strat b_layers b_score < <(awk -F'\t' 'FNR > 1 { k = $1 " " $2 " " $3; if (!(k in s)) o[++m] = k; s[k] += $7 }
    END { for (i = 1; i <= m; i++) if (b == "" || s[o[i]] > b) { b = s[o[i]]; w = o[i] } print w }' \
    "$T/dtune/fabric/val-grid.tsv" "$T/dtune/pill/val-grid.tsv" 2>/dev/null)
b_den=$(grep -o "\"$b_strat|[^\"]*\"" "$R/tune.sh" | sed 's/^"[^|]*|//; s/"$//')
check "demo-tune: the chosen row has the best mean validation criterion" \
    grep -qxF "chosen: --denoise '$b_den' --feat-layers $b_layers --image-score $b_score" "$T/dtune.md"
status 2 "run.sh: --overlap without --tile" bash "$R/run.sh" --data "$T/demo8" --overlap 4
status 2 "ddad.sh takes no knobs" bash "$R/ddad.sh" "${small[@]}" --out "$T/x" --tune
# --- the ablation recipes take the knobs (fixed layers and image score)
bash "$R/fixed-vs-adaptive.sh" "${small[@]}" --out "$T/fva" --feat-layers 1,2 --image-score max > "$T/fva2.md" 2>/dev/null
check "steps table with --feat-layers/--image-score: 4 rows" test "$(grep -c '^| .* | [0-9.]* | [0-9.]* | [0-9.]* |$' "$T/fva2.md")" = 4
check "steps table: the knobs reached glad-features and glad-score" sh -c "glad-info -s '$T/fva/fixed-350.scored.msgpack' | grep -q 'glad-features .*--layers 1,2' && glad-info -s '$T/fva/fixed-350.scored.msgpack' | grep -q 'glad-score .*--image-score max'"
# --- --tune on the ablation recipes (lib.sh's tune_class): the tune row in the table;
# a failed tune.sh fails the recipe (no table)
bash "$R/fixed-vs-adaptive.sh" --data "$T/demo8" --class pill --size 32 --steps 2 --batch 2 --tune --tune-grid quick --out "$T/fvat" > "$T/fvat.md" 2>/dev/null
check "steps table with --tune: 4 rows and the knobs tune.sh chose" sh -c "test \$(grep -c '^| .* | [0-9.]* | [0-9.]* | [0-9.]* |\$' '$T/fvat.md') = 4 &&
    grep -q '^| pill | [a-z0-9.-]* | [0-9,]* | ' '$T/fvat.md' && test -s '$T/fvat/tune/tune.env'"
glad-synth --make-dataset "$T/demo3" --classes pill --size 32 --train 3 --test-good 1 --test-defect 1
status 1 "components table --tune: tune.sh fails (3 training images), so does the recipe" bash "$R/ablation-components.sh" --data "$T/demo3" --class pill --size 32 --steps 2 --batch 2 --tune --tune-grid quick --out "$T/abl3"
check "components table --tune: no table after the failure" test ! -s "$T/abl3/table.md"
# --- benchmark.sh: every class, GNU parallel, the paper-style table
if command -v parallel >/dev/null; then
    glad-synth --make-dataset "$T/demo2c" --classes fabric,pill --size 32 --train 4 --test-good 2 --test-defect 1
    bash "$R/benchmark.sh" --data "$T/demo2c" --out "$T/bench" --jobs 2 --size 32 --steps 2 --batch 2 --no-tune > "$T/bench.md" 2>/dev/null
    check "benchmark: a row per class, the mean, wall times" sh -c "grep -q '^| fabric | [0-9.]* | [0-9.]* | [0-9.]* | n/a | [0-9]* | recipe default' '$T/bench.md' && grep -q '^| pill | [0-9.]* |' '$T/bench.md' && grep -q '^| \*\*mean\*\* | [0-9.]* |' '$T/bench.md'"
else skip "GNU parallel not installed: benchmark.sh not run"; fi
if have_shared; then
    bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --steps 2 --batch 2 --tune --tune-grid quick --out "$T/mtd-t" > "$T/mtd-t.md" 2>/dev/null
    check "mtd recipe --tune on mtd-mini" sh -c "grep -q '^| GLAD (unet features) | [0-9.]*' '$T/mtd-t.md' && grep -q '^| MTD | ' '$T/mtd-t.md' && jq -e '.validation.held_out >= 4' '$T/mtd-t/tune/tune.json' >/dev/null"
    # mtd-tune.sh: one tune.sh per input candidate, the best validation criterion chosen
    bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:16 size:24@3" --steps 2 --batch 2 \
        --grid quick --bank --bank-subsample 0.5 --out "$T/mtdtune" > "$T/mtdtune.md" 2>/dev/null
    check "mtd-tune: a row per candidate and the chosen line in mtd.sh's form" sh -c "grep -q '^| size:16 | ' '$T/mtdtune.md' && grep -q '^| size:24@3 | ' '$T/mtdtune.md' &&
        grep -q \"^chosen: --size \(16 --tile 0 --overlap 0 --standardize 0 --feat-also-size none --bank-norm none --steps 2\|24 --tile 0 --overlap 0 --standardize 0 --feat-also-size none --bank-norm none --steps 3\) --denoise '--steps [0-9]* --skip 25.*' --feat-layers [0-9,]* --image-score [a-z:0-9-]* --bank-mode [a-z]* --bank-subsample 0.5 --map-norm [a-z:0-9.]* --global-weight 0\$\" '$T/mtdtune.md'"
    check "mtd-tune: the chosen candidate has the best validation criterion" sh -c "
        best=\$(for c in 16 24-s3; do echo \$(jq .criterion_value '$T/mtdtune'/size-\$c/tune.json) \$c; done | sort -s -k1,1gr | head -1 | cut -d' ' -f2)
        grep -q \"^chosen: --size \${best%-s3} \" '$T/mtdtune.md'"
    check "mtd-tune: a candidate's own training steps (size:24@3)" test "$(jq -r .model.steps "$T/mtdtune/size-24-s3/tune.json")/$(jq -r .model.steps "$T/mtdtune/size-16/tune.json")" = 3/2
    # --bank: the chosen row against a memory bank in every mode, none first; the best kept
    # (a later mode only when better by more than 0.001)
    check "tune --bank: none + 3 bank modes on validation, the best chosen, in tune.md and tune.env" sh -c "
        d='$T/mtdtune/size-16'; test \$(grep -c . \$d/val-bank.tsv) = 5 &&
        want=\$(awk -F'\t' 'NR > 1 && (NR == 2 || \$NF > b + 0.001) { b = \$NF; m = \$1 } END { print m }' \$d/val-bank.tsv) &&
        test \"\$(jq -r .choice.bank_mode \$d/tune.json)\" = \"\$want\" && grep -q '^| memory bank (glad-score --bank-mode) | '\$want \$d/tune.md &&
        grep -q \"^TUNE_BANK_MODE=\$want\" \$d/tune.env && grep -q '^Stage 2' \$d/tune.md && test -s \$d/bank.safetensors"
    # a rerun: size:24@3 recomputes nothing (its row keeps the first run's time), size:16 at 3
    # steps retrains but takes its encoded images from the cache (its row says "partial")
    w24=$(grep '^| size:24@3 | ' "$T/mtdtune.md" | cut -d'|' -f10)
    bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:16 size:24@3" --steps 3 --batch 2 \
        --grid quick --bank --bank-subsample 0.5 --out "$T/mtdtune" > "$T/mtdtune2.md" 2>/dev/null
    check "mtd-tune rerun: a cached candidate keeps its time, a partly recomputed one is marked partial" sh -c "
        test -n '$w24' && grep '^| size:24@3 | ' '$T/mtdtune2.md' | cut -d'|' -f10 | grep -qxF -- '$w24' && ! echo '$w24' | grep -q partial &&
        grep '^| size:16 | ' '$T/mtdtune2.md' | cut -d'|' -f10 | grep -q '^ [0-9.]* (partial) \$'"
    status 2 "mtd.sh: an unknown --bank-mode" bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --bank-mode min --out "$T/x"
    bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --steps 2 --batch 2 --bank-mode union --bank-subsample 0.5 --out "$T/mtd-b" > "$T/mtd-b.md" 2>/dev/null
    check "mtd recipe with --bank-mode union: a bank built and used" sh -c "grep -q '^| GLAD (unet features) | [0-9.]*' '$T/mtd-b.md' && test -s '$T/mtd-b/bank.safetensors' && glad-info -s '$T/mtd-b/scored.msgpack' | grep -q -- '--bank-mode union'"
    # --bank-mode replace with MobileNetV2 features: no model, no reconstruction, the same scores
    GLAD_WEIGHTS="$SHARED/weights" bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --steps 2 --batch 2 --bank-mode replace --no-calibrate --out "$T/mtd-r" > "$T/mtd-r.md" 2>/dev/null
    check "mtd recipe with --bank-mode replace: the bank alone, no model trained, no glad-denoise" sh -c "
        grep -q '^| memory bank alone (mobilenetv2 features, no reconstruction)[^|]* | [0-9.]*' '$T/mtd-r.md' && test ! -e '$T/mtd-r/model' &&
        glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- '--bank-mode replace' && ! glad-info -s '$T/mtd-r/scored.msgpack' | grep -q glad-denoise"
    check "mtd.sh: the bank alone standardises every tile (bank and test) as its defaults say, S or T:S" sh -c "
        v=\$(bash '$R/mtd.sh' --show-defaults | sed -n 's/.* --standardize \\([a-z,]*:\\)\\{0,1\\}\\([0-9.]*\\) .*/\\1\\2/p'); test -n \"\$v\" &&
        s=\${v#*:} && t=clip && case \$v in *:*) t=\${v%%:*} ;; esac &&
        if [ \"\$s\" = 0 ]; then ! glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- --standardize
        elif [ \"\$t\" = clip ]; then glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- \"glad-features .*--standardize \$s \" &&
            ! glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- --standardize-tail &&
            head -c 400 \$(ls '$T/mtd-r'/bank*.safetensors | head -1) | grep -aq '\"standardize\":\"'
        else glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- \"glad-features .*--standardize \$s --standardize-tail \$t \" &&
            head -c 400 \$(ls '$T/mtd-r'/bank*.safetensors | head -1) | grep -aq \"\\\"standardize_tail\\\":\\\"\$t\\\"\" &&
            case \$t in *,*) grep -q \"pixel-wise maximum of their maps, --standardize-tail \$t\" '$T/mtd-r.md' &&
                head -c 4000 \$(ls '$T/mtd-r'/bank*.safetensors | head -1) | grep -aq \"bank.12~\${t#*,}\" ;; esac; fi"
    check "mtd.sh: the bank alone at the defaults' further sizes (glad-features --also-size), named in the table as a list" bash -c "
        a=\$(bash '$R/mtd.sh' --show-defaults | sed -n 's/.* --feat-also-size \\([0-9,a-z]*\\) .*/\\1/p'); test -n \"\$a\" &&
        if [ \"\$a\" = none ]; then ! grep -q 'features also at' '$T/mtd-r.md'
        else glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- \"glad-features .*--also-size \$a \" &&
            l=\$(sed -n 's/.*block features also at \\([0-9, and]*\\) px, maps summed.*/\\1/p' '$T/mtd-r.md') &&
            test \"\$(printf '%s' \"\$l\" | sed 's/ and /,/; s/, /,/g')\" = \"\$a\" &&
            case \"\$a\" in *,*) case \"\$l\" in *\" and \${a##*,}\") ;; *) false ;; esac ;; esac; fi"
    check "mtd.sh: the bank alone reads its distances by the defaults' --bank-norm (radii in its bank, the table says so)" bash -c "
        n=\$(bash '$R/mtd.sh' --show-defaults | sed -n 's/.* --bank-norm \\([a-z]*\\) .*/\\1/p'); test -n \"\$n\" &&
        if [ \"\$n\" = none ]; then ! glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- --bank-norm && ! grep -q 'bank-norm' '$T/mtd-r.md'
        else glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- \"glad-score .*--bank-norm \$n\" && grep -q \"glad-score --bank-norm \$n\" '$T/mtd-r.md' &&
            head -c 4000 '$T/mtd-r/bank.safetensors' | grep -aq '\"radius\":\"0.25\"'; fi"
    GLAD_WEIGHTS="$SHARED/weights" bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --feat-also-size none --bank-norm diff --no-calibrate --out "$T/mtd-d" > "$T/mtd-d.md" 2>/dev/null
    check "mtd.sh --bank-norm diff: a bank with radii, the scores read less them, the table says so" sh -c "
        glad-info -s '$T/mtd-d/scored.msgpack' | grep -q -- 'glad-score .*--bank-mode replace --bank-norm diff' &&
        head -c 4000 '$T/mtd-d/bank.safetensors' | grep -aq '\"radius.12\"' &&
        grep -q '^| memory bank alone .*less its nearest bank vector.s radius (glad-score --bank-norm diff) | [0-9.]*' '$T/mtd-d.md'"
    check "mtd.sh --no-calibrate: no threshold, no decisions, no per-image list" sh -c "
        test ! -e '$T/mtd-r/calibrate' && test ! -e '$T/mtd-r/decisions.txt' && test ! -e '$T/mtd-r/images.csv' &&
        ! grep -q 'decisions at the calibrated threshold' '$T/mtd-r.md' && ! glad-info -s '$T/mtd-r/scored.msgpack' | grep -q -- '--threshold-file'"
    # the same features and scoring after a reconstruction (mtd-b's model): replace ignores it
    fo=$(glad-info -s "$T/mtd-r/scored.msgpack" | sed -n 's/^# history [0-9]*: glad-features [^ ]* \(.*\) --input image .*/\1/p')
    so=$(glad-info -s "$T/mtd-r/scored.msgpack" | sed -n 's/^# history [0-9]*: glad-score [^ ]* \(.*\)/\1/p')
    glad-denoise --model "$T/mtd-b/model" --steps 20 --skip 10 "$T/mtd-r/test.msgpack" 2>/dev/null | glad-features $fo 2>/dev/null | glad-score $so > "$T/mtd-r2.msgpack" 2>/dev/null
    check "mtd --bank-mode replace: the scores of a run with reconstructions" bash -c "test -n '$fo' && test -n '$so' &&
        cmp -s <(glad-info '$T/mtd-r/scored.msgpack' | grep -o 'score=.*') <(glad-info '$T/mtd-r2.msgpack' | grep -o 'score=.*') &&
        test \$(glad-info '$T/mtd-r2.msgpack' | grep -c 'score=') = 18"
    # --no-recon: the bank alone chosen on validation, no model; native sizes kept
    W="$SHARED/weights"
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size native \
        --no-recon --val-family cutpaste-mix,defect-mix --out "$T/tnr" > "$T/tnr.md" 2> "$T/tnr.err"
    check "tune --no-recon: no model, every grid row 'none', the bank alone chosen" sh -c "d='$T/tnr'; test ! -e \$d/model &&
        jq -e '.no_recon == true and .native_size == true and .model == null and .choice.bank_mode == \"replace\" and .choice.strategy == \"none\"' \$d/tune.json >/dev/null &&
        test \$(awk -F'\t' 'NR > 1 && \$1 != \"none\"' \$d/val-grid.tsv | wc -l) = 0 && test \$(grep -c . \$d/val-grid.tsv) -gt 10 &&
        grep -qx \"TUNE_MODEL=''\" \$d/tune.env && grep -q '^TUNE_BANK_MODE=replace' \$d/tune.env && grep -q 'the bank alone' \$d/tune.md"
    check "tune --no-recon --size native: images and features at their own size (not squashed)" sh -c "
        glad-info '$T/tnr/val-none.feat.msgpack' | grep -q 'image:|u1\[1,[0-9]*,[0-9]*\]' &&
        ! glad-info -s '$T/tnr/val-none.feat.msgpack' | grep -q -- '--size' &&
        test \$(glad-info '$T/tnr/val-none.feat.msgpack' | sed -n 's/.*image:|u1\[1,\([0-9]*\),\([0-9]*\)\].*/\1x\2/p' | sort -u | wc -l) -gt 2"
    # a grid row (rescored from the layer set's maps) equals a full glad-score run with that image score
    row=$(awk -F'\t' 'NR > 1 && $3 == "max" { print; exit }' "$T/tnr/val-grid.tsv")
    IFS=$'\t' read -r _ rl rr _ <<< "$row"
    glad-score --preset glad --layers "$rl" --image-score max --bank "$T/tnr/bank-all.safetensors" --bank-mode replace "$T/tnr/val-none.feat.msgpack" \
        | glad-auroc --by none --format csv 2>/dev/null | awk -F, '$1 == "all" { print $4 "\t" $7 "\t" $10 }' > "$T/tnr-direct.tsv"
    check "tune --no-recon: a rescored grid row ($rl, $rr) is a full run's figures" sh -c "test -n '$rl' && test \"\$(printf '%s\n' '$row' | cut -f4-6)\" = \"\$(cat '$T/tnr-direct.tsv')\""
    check "tune --no-recon: the recipes' bank holds the chosen layers only" sh -c "
        want=\$(jq -r .choice.layers '$T/tnr/tune.json' | tr , ' '); have=\$(head -c 4096 '$T/tnr/bank.safetensors' | grep -ao 'bank\.[0-9]*' | sort -u | sed 's/bank\.//' | sort -n | tr '\n' ' ' | sed 's/ \$//')
        test \"\$(echo \$want | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ \$//')\" = \"\$have\""
    status 2 "tune --size native without --no-recon or --tile" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size native --out "$T/x"
    status 2 "tune --no-recon with the unet backbone" bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --backbone unet --no-recon --out "$T/x"
    status 2 "tune --no-recon with --bank-mode union" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --no-recon --bank-mode union --out "$T/x"
    # mtd-tune.sh's "+std:S" candidates: glad-features --standardize S on the bank's and the
    # validation's images alike, the chosen line in mtd.sh's form with the winner's S
    GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:32 size:32+std:0.8 size:32+std:0.8+also:64" --no-recon \
        --grid quick --feat-layers 12 --val-family cutpaste-mix,defect-mix --out "$T/mtdstd" > "$T/mtdstd.md" 2>/dev/null
    check "mtd-tune +std:0.8: its features and bank standardised (feat_standardize, bank metadata), the plain candidate's not" sh -c "d='$T/mtdstd'
        glad-info -s \$d/size-32+std-0.8/val-none.feat.msgpack | grep -q -- '--standardize 0.8' &&
        glad-info --json \$d/size-32+std-0.8/val-none.feat.msgpack | tail -n +2 | grep -q '\"feat_standardize\":0.8' &&
        head -c 400 \$d/size-32+std-0.8/bank.safetensors | grep -aq '\"standardize\":\"0.8' &&
        ! glad-info --json \$d/size-32/val-none.feat.msgpack | grep -q feat_standardize && ! head -c 400 \$d/size-32/bank.safetensors | grep -aq standardize &&
        jq -e '.choice.layers == \"12\"' \$d/size-32/tune.json > /dev/null"
    check "mtd-tune +std: a row per candidate, the chosen line with the better criterion's S" sh -c "d='$T/mtdstd'
        grep -q '^| size:32 | ' '$T/mtdstd.md' && grep -q '^| size:32+std:0.8 | ' '$T/mtdstd.md' &&
        a=\$(jq .criterion_value \$d/size-32/tune.json) b=\$(jq .criterion_value \$d/size-32+std-0.8/tune.json) &&
        c=\$(jq .criterion_value \$d/size-32+std-0.8+also-64/tune.json) &&
        if awk -v a=\$a -v b=\$b -v c=\$c 'BEGIN { exit !(c > a && c > b) }'; then s='0.8 --feat-also-size 64 --bank-norm none'
        elif awk -v a=\$a -v b=\$b 'BEGIN { exit !(b > a) }'; then s='0.8 --feat-also-size none --bank-norm none'; else s='0 --feat-also-size none --bank-norm none'; fi &&
        grep -q \"^chosen: --size 32 --tile 0 --overlap 0 --standardize \$s --steps \" '$T/mtdstd.md'"
    # "+also:64": glad-features --also-size 64 (block 12 at 64 px too), banked as a
    # layer of its own and scored with block 12; tune.json says so
    check "mtd-tune +also:64: feat.image.12@64 in its features, bank.12@64 in its bank, also_size in tune.json; not in the others" sh -c "d='$T/mtdstd/size-32+std-0.8+also-64'
        glad-info \$d/val-none.feat.msgpack | grep -v '^#' | head -1 | grep -q 'feat.image.12@64:<f4\[96,4,4\]' &&
        head -c 4000 \$d/bank.safetensors | grep -aq '\"bank.12@64\"' && head -c 4000 \$d/bank.safetensors | grep -aq '\"bank.12\"' &&
        jq -e '.also_size == [64] and .standardize == 0.8' \$d/tune.json > /dev/null &&
        jq -e '.also_size == null' '$T/mtdstd/size-32+std-0.8/tune.json' > /dev/null &&
        ! glad-info '$T/mtdstd/size-32+std-0.8/val-none.feat.msgpack' | grep -q '12@'"
    # "+std:tanh:S": glad-features --standardize S --standardize-tail tanh, recorded in the
    # features, the bank and tune.json, and the chosen line in mtd.sh's T:S form
    GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:32+std:tanh:0.8" --no-recon \
        --grid quick --feat-layers 12 --val-family cutpaste-mix --out "$T/mtdtail" > "$T/mtdtail.md" 2>/dev/null
    check "mtd-tune +std:tanh:0.8: features, bank and tune.json say tail tanh; the chosen line --standardize tanh:0.8" sh -c "d='$T/mtdtail/size-32+std-tanh-0.8'
        glad-info -s \$d/val-none.feat.msgpack | grep -q -- '--standardize 0.8 --standardize-tail tanh' &&
        glad-info --json \$d/val-none.feat.msgpack | tail -n +2 | grep -q '\"feat_standardize_tail\":\"tanh\"' &&
        head -c 400 \$d/bank.safetensors | grep -aq '\"standardize_tail\":\"tanh\"' &&
        jq -e '.standardize == 0.8 and .standardize_tail == \"tanh\"' \$d/tune.json > /dev/null &&
        jq -e '.standardize_tail == \"clip\"' '$T/mtdstd/size-32+std-0.8/tune.json' > /dev/null &&
        jq -e '.standardize_tail == null' '$T/mtdstd/size-32/tune.json' > /dev/null &&
        grep -q '^| size:32+std:tanh:0.8 | ' '$T/mtdtail.md' &&
        grep -q \"^chosen: --size 32 --tile 0 --overlap 0 --standardize tanh:0.8 --feat-also-size none --bank-norm none --steps \" '$T/mtdtail.md'"
    for c in size:32+std:soft:1 size:32+std:tanh:0 size:32+std:tanh: size:32+std:open:9 size:32+std:tanh,tanh:1 size:32+std:clip,:1 size:32+std:clip,soft:1; do
        status 2 "mtd-tune.sh: the candidate $c" env GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --no-recon --candidates "$c" --out "$T/x"
    done
    status 2 "mtd.sh --standardize soft:1" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --standardize soft:1 --out "$T/x"
    status 2 "mtd.sh --standardize clip,clip:1" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --standardize clip,clip:1 --out "$T/x"
    for c in size:32+std:9 size:32+std:x size:32+std: size:32+also:100 size:32+also: size:32+also:64,x native+also:64; do
        status 2 "mtd-tune.sh: the candidate $c" env GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --no-recon --candidates "$c" --out "$T/x"
    done
    # "+bn:M": the banks made with glad-bank --radius, every bank score read with
    # glad-score --bank-norm M; tune.json and the chosen line say so
    GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:32+std:0.8+bn:ratio" --no-recon \
        --grid quick --feat-layers 12 --val-family cutpaste-mix --out "$T/mtdbn" > "$T/mtdbn.md" 2>/dev/null
    check "mtd-tune +bn:ratio: radii in its banks, --bank-norm ratio in its scores, tune.json and the chosen line" sh -c "d='$T/mtdbn/size-32+std-0.8+bn-ratio'
        head -c 800 \$d/bank-all.safetensors | grep -aq '\"radius.12\"' && head -c 800 \$d/bank.safetensors | grep -aq '\"radius\":\"0.25\"' &&
        glad-info -s \$d/val-chosen.scored.msgpack | grep -q -- 'glad-score .*--bank-mode replace --bank-norm ratio' &&
        jq -e '.bank_norm == \"ratio\"' \$d/tune.json > /dev/null && jq -e '.bank_norm == \"none\"' '$T/mtdtail/size-32+std-tanh-0.8/tune.json' > /dev/null &&
        grep -q '^| size:32+std:0.8+bn:ratio | ' '$T/mtdbn.md' &&
        grep -q \"^chosen: --size 32 --tile 0 --overlap 0 --standardize 0.8 --feat-also-size none --bank-norm ratio --steps \" '$T/mtdbn.md'"
    for c in size:32+bn:rank size:32+bn: size:32+std:0.8+bn:none; do
        status 2 "mtd-tune.sh: the candidate $c" env GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --no-recon --candidates "$c" --out "$T/x"
    done
    status 2 "mtd.sh --bank-norm rank" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --bank-norm rank --out "$T/x"
    status 2 "mtd.sh --feat-also-size 100" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --feat-also-size 100 --out "$T/x"
    status 2 "mtd.sh --standardize 9" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --standardize 9 --out "$T/x"
    # --folds K: every fold its own hold-out (shard J) and bank, the criterion averaged
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 \
        --no-recon --grid quick --val-family cutpaste-mix,defect-mix --folds 3 --out "$T/tcv" > "$T/tcv.md" 2> "$T/tcv.err"
    ids() { glad-info "$1" | awk -F'\t' '!/^#/ { print $1 }' | sort; }
    export -f ids
    check "tune --folds 3: each row's criterion and metrics are the mean over the three folds' grids" sh -c "d='$T/tcv'
        test -s \$d/val-cv-grid.tsv && test -s \$d/fold-1/val-grid.tsv && test -s \$d/fold-2/val-grid.tsv && test ! -e \$d/fold-0 &&
        awk -F'\t' 'FNR == 1 { f++; next } f < 4 { k = \$1 FS \$2 FS \$3; for (c = 4; c <= 7; c++) s[k, c] += \$c; n[k]++; pc[k] = pc[k] (f > 1 ? \",\" : \"\") sprintf(\"%.4f\", \$7); next }
            { k = \$1 FS \$2 FS \$3; rows++; if (n[k] != 3 || \$7 != pc[k]) bad++
              for (c = 4; c <= 6; c++) if ((\$c - s[k, c] / 3) ^ 2 > 1e-12) bad++
              if ((\$8 - s[k, 7] / 3) ^ 2 > 1e-12) bad++ }
            END { exit !(rows > 1 && !bad) }' \$d/val-grid.tsv \$d/fold-1/val-grid.tsv \$d/fold-2/val-grid.tsv \$d/val-cv-grid.tsv"
    check "tune --folds 3: fold J validates on other images than fold 0, and its bank holds fold 0's hold-out, not its own" bash -c "d='$T/tcv'
        test -z \"\$(comm -12 <(ids \$d/val.msgpack) <(ids \$d/fold-1/val.msgpack))\" &&
        test -z \"\$(comm -12 <(ids \$d/fold-2/val.msgpack) <(ids \$d/fold-2/bank-train.msgpack))\" &&
        test -n \"\$(comm -12 <(ids \$d/val.msgpack) <(ids \$d/fold-2/bank-train.msgpack))\" &&
        glad-info -s \$d/fold-2/val.msgpack | grep -q -- '--shard 2/14'"
    # each training shard's features made once, in the parent's directory, for every fold's bank
    check "tune --folds 3: the shards' features made once (parent's directory), each fold's bank from the other shards' = its bank-train images" bash -c "d='$T/tcv'
        test \$(grep -c 'making: shard-' \$d/../tcv.err) = \$(ls \$d/shard-*-of-*.feat.msgpack | wc -l) && ! ls \$d/fold-1 | grep -q '^shard-' &&
        for j in 0 1 2; do f=\$d; [ \$j = 0 ] || f=\$d/fold-\$j
            test \"\$(for k in \$(ls \$d/shard-*-of-*.feat.msgpack | sed 's/.*shard-\\([0-9]*\\)-of-.*/\\1/' | sort -n); do [ \$k = \$j ] || glad-info \$d/shard-\$k-of-*.feat.msgpack | awk -F'\t' '!/^#/ { print \$1 }'; done)\" = \"\$(glad-info \$f/bank-train.msgpack | awk -F'\t' '!/^#/ { print \$1 }')\" || exit 1
        done"
    check "tune --folds 3: the choice is the best averaged row; tune.json/tune.md say so; thresholds from every fold's images" bash -c "d='$T/tcv'
        best=\$(awk -F'\t' 'NR > 1 && (b == \"\" || \$8 + 0 > b + 0) { b = \$8; l = \$2 \" \" \$3 } END { print l }' \$d/val-cv-grid.tsv) &&
        test \"\$(jq -r '.choice.layers + \" \" + .choice.image_score' \$d/tune.json)\" = \"\$best\" &&
        jq -e '.validation.folds == 3 and (.validation.fold_criteria | length) == 3 and (.criterion | test(\"averaged over 3 folds\"))' \$d/tune.json > /dev/null &&
        grep -q '^Folds: 3 folds' \$d/tune.md && grep -q 'criterion per fold |\$' \$d/tune.md &&
        nn=0; for f in \$d/val.msgpack \$d/fold-1/val.msgpack \$d/fold-2/val.msgpack; do nn=\$((nn + \$(glad-info \$f | grep -c 'label=0'))); done;
        test \"\$(jq .counts.normal \$d/thresholds.json)\" = \$nn"
    # stage 3: the chosen row's maps less their own quantile, per fold, averaged; a later
    # normalisation kept only when better by more than 0.001 and the per-fold differences' standard error
    # crit_of FILE: val_row's criterion of a scored validation stream, recomputed here
    crit_of() { glad-auroc --by none --format csv "$1" 2>/dev/null | awk -F, '$1 == "all" { n = 0; c = 0; split($4 "," $7 "," $10, m, ","); for (i = 1; i <= 3; i++) if (m[i] ~ /^[0-9.eE+-]+$/) { c += m[i]; n++ } printf "%.4f\n", sprintf("%.6f", c / n) }'; }   # as val_row, then tune.sh's per-fold %.4f
    export -f crit_of
    check "tune stage 3: none, quantile:0.1, quantile:0.5 on every fold; a fold's figure is the rescored maps'; rows the fold means" bash -c "d='$T/tcv' S=\$(jq -r .choice.image_score \$d/tune.json)
        test \"\$(cut -f1 \$d/val-norm.tsv | tr '\n' ' ')\" = 'map_norm none quantile:0.1 quantile:0.5 ' &&
        glad-score --rescore --image-score \$S --map-norm quantile:0.5 \$d/fold-1/val-cv-chosen.scored.msgpack > \$d/chk.msgpack &&
        test \"\$(awk -F'\t' '\$1 == \"quantile:0.5\" { split(\$5, c, \",\"); print c[2] }' \$d/val-norm.tsv)\" = \"\$(crit_of \$d/chk.msgpack)\" &&
        test \"\$(awk -F'\t' '\$1 == \"none\" { split(\$5, c, \",\"); print c[3] }' \$d/val-norm.tsv)\" = \"\$(crit_of \$d/fold-2/val-cv-chosen.scored.msgpack)\" &&
        awk -F'\t' 'NR > 1 { n = split(\$5, c, \",\"); s = 0; for (i = 1; i <= n; i++) s += c[i]; if (n != 3 || (\$6 - s / 3) ^ 2 > 1e-8) bad++ } END { exit !(NR == 4 && !bad) }' \$d/val-norm.tsv &&
        ! glad-auroc --by none --format csv \$d/chk.msgpack 2>/dev/null | cmp -s - <(glad-auroc --by none --format csv \$d/fold-1/val-cv-chosen.scored.msgpack 2>/dev/null)"
    # se_want TSV: the stage's value and criterion by the one-standard-error rule, written out
    # again here (not lib.sh's kept_row): a later row replaces the kept one only when its
    # criterion is higher by more than 0.001 and than the standard error of the per-fold
    # differences (column 5, comma-separated)
    # (the column before the last, the gain their mean difference; FLOOR, default 0.001, the least gain)
    se_want() { awk -F'\t' -v fl="${2:-0.001}" 'NR == 2 { b = $NF; m = $1; n = split($(NF - 1), k, ","); next }
        NR > 2 { split($(NF - 1), c, ","); s = 0; ss = 0; for (i = 1; i <= n; i++) { x = c[i] - k[i]; s += x; ss += x * x }
                 v = (ss - s * s / n) / (n - 1); se = v > 0 ? sqrt(v / n) : 0; t = se > fl ? se : fl
                 if (s / n > t) { b = $NF; m = $1; split($(NF - 1), k, ",") } }
        END { print m, b }' "$1"; }
    export -f se_want
    check "tune stage 3: the choice by the one-standard-error rule, in tune.json/tune.md/tune.env" bash -c "d='$T/tcv'
        want=\$(se_want \$d/val-norm.tsv) &&
        test \"\$(jq -r '.choice.map_norm as \$m | \$m + \" \" + (.map_norm_stage[] | select(.map_norm == \$m) | .criterion | tostring)' \$d/tune.json | awk '{ printf \"%s %.6f\\n\", \$1, \$2 }')\" = \"\$want\" &&
        grep -q \"^TUNE_MAP_NORM=\${want%% *}\$\" \$d/tune.env && grep -q \"^| map normalisation (glad-score --map-norm) | \${want%% *} |\" \$d/tune.md &&
        grep -q '^Stage 3' \$d/tune.md && jq -e '(.map_norm_stage | length) == 3' \$d/tune.json > /dev/null &&
        grep -q '^Kept by the one-standard-error rule .*: quantile:0.1 [-+][0-9.]* points (SE [0-9.]*): [a-z]*; quantile:0.5 ' \$d/tune.md &&
        jq -e '.criterion | test(\"standard error of the per-fold differences\")' \$d/tune.json > /dev/null"
    # stage 4: the whole-image Gaussian of block 16 in every fold's bank, the chosen
    # (normalised) runs rescored with each weight, the same rule again
    check "tune stage 4: every fold's bank holds block 16's Gaussian, the features block 16, the records score_global" bash -c "d='$T/tcv'
        for f in \$d \$d/fold-1 \$d/fold-2; do head -c 4096 \$f/bank-all.safetensors | grep -aq '\"global\":\"16\"' || exit 1
            head -c 4096 \$f/bank-all.safetensors | grep -aq 'bank\.16' && exit 1
            glad-info \$f/val-none.feat.msgpack | grep -q 'feat.image.16:' || exit 1; done
        test \$(glad-info --json \$d/fold-1/val-cv-chosen.scored.msgpack | tail -n +2 | grep -c '\"score_global\":') = \$(glad-info \$d/fold-1/val.msgpack | grep -vc '^#')"
    check "tune stage 4: weights 0 .. 0.5 on every fold; a fold's figure is the rescored run's; rows the fold means" bash -c "d='$T/tcv' S=\$(jq -r .choice.image_score \$d/tune.json)
        norm=\$(jq -r .choice.map_norm \$d/tune.json); sfx=\$([ \"\$norm\" = none ] || echo -\${norm//[:.]/_})
        test \"\$(cut -f1 \$d/val-global.tsv | tr '\n' ' ')\" = 'global_weight 0 0.01 0.02 0.05 0.1 0.2 0.5 ' &&
        glad-score --rescore --image-score \$S --global-weight 0.1 \$d/fold-2/val-cv-chosen\$sfx.scored.msgpack > \$d/chk4.msgpack &&
        test \"\$(awk -F'\t' '\$1 == \"0.1\" { split(\$5, c, \",\"); print c[3] }' \$d/val-global.tsv)\" = \"\$(crit_of \$d/chk4.msgpack)\" &&
        test \"\$(awk -F'\t' '\$1 == \"0\" { print \$5 }' \$d/val-global.tsv)\" = \"\$(awk -F'\t' -v n=\$norm '\$1 == n { print \$5 }' \$d/val-norm.tsv)\" &&
        awk -F'\t' 'NR > 1 { n = split(\$5, c, \",\"); s = 0; for (i = 1; i <= n; i++) s += c[i]; if (n != 3 || (\$6 - s / 3) ^ 2 > 1e-8) bad++ } END { exit !(NR == 8 && !bad) }' \$d/val-global.tsv &&
        ! glad-auroc --by none --format csv \$d/chk4.msgpack 2>/dev/null | cmp -s - <(glad-auroc --by none --format csv \$d/fold-2/val-cv-chosen\$sfx.scored.msgpack 2>/dev/null)"
    check "tune stage 4: the weight by the one-standard-error rule, in tune.json/tune.md/tune.env/the history note; the criterion and thresholds are its run's" bash -c "d='$T/tcv'
        want=\$(se_want \$d/val-global.tsv) w=\${want%% *} &&
        test \"\$(jq -r '(.choice.global_weight | tostring) + \" \" + (.criterion_value | tostring)' \$d/tune.json | awk '{ printf \"%s %.6f\\n\", \$1, \$2 }')\" = \"\$want\" &&
        jq -e '.choice.global_layers == \"16\" and (.global_weight_stage | length) == 7' \$d/tune.json > /dev/null &&
        grep -q \"^TUNE_GLOBAL_WEIGHT=\$w\$\" \$d/tune.env && grep -q \"^| whole-image Gaussian of block 16 (glad-score --global-weight) | \$w |\" \$d/tune.md &&
        grep -q '^Stage 4' \$d/tune.md && grep -q -- \"--global-weight \$w --thresholds\" \$d/tune.env &&
        norm=\$(jq -r .choice.map_norm \$d/tune.json); sfx=\$([ \"\$norm\" = none ] || echo -\${norm//[:.]/_})\$([ \"\$w\" = 0 ] || echo -g\${w//./_})
        glad-auroc --calibrate \$d/thr4.json \$d/val-chosen\$sfx.scored.msgpack \$d/fold-1/val-cv-chosen\$sfx.scored.msgpack \$d/fold-2/val-cv-chosen\$sfx.scored.msgpack >/dev/null 2>&1 &&
        cmp -s \$d/thr4.json \$d/thresholds.json &&
        if [ \"\$w\" = 0 ]; then ! head -c 4096 \$d/bank.safetensors | grep -aq '\"global\"'; else head -c 4096 \$d/bank.safetensors | grep -aq '\"global\":\"16\"'; fi"
    # several families: each family's anomalies named after it; the chosen row per family
    check "tune --val-family A,B: each family's anomalies carry its name, the normals 'good'" sh -c "d='$T/tcv'
        test \"\$(glad-info --json \$d/fold-1/val.msgpack | tail -n +2 | jq -r '(.label | tostring) + \" \" + .defect' | sort -u | tr '\n' ' ')\" = '0 good 1 cutpaste-mix 1 defect-mix '"
    check "tune --val-family A,B: val-family.tsv = glad-auroc --by defect of every fold's chosen (normalised) run, averaged; in tune.md and tune.json" bash -c "d='$T/tcv'
        norm=\$(jq -r .choice.map_norm \$d/tune.json) gw=\$(jq -r .choice.global_weight \$d/tune.json)
        sfx=\$([ \"\$norm\" = none ] || echo -\${norm//[:.]/_})\$([ \"\$gw\" = 0 ] || echo -g\${gw//./_})
        for f in \$d/val-chosen\$sfx.scored.msgpack \$d/fold-1/val-cv-chosen\$sfx.scored.msgpack \$d/fold-2/val-cv-chosen\$sfx.scored.msgpack; do
            glad-auroc --by defect --format csv \$f 2>/dev/null | awk -F, '\$1 ~ /^mtd\\// { print \$1, \$4, \$7, \$10 }'; done > \$d/fam-chk.txt &&
        test \$(wc -l < \$d/fam-chk.txt) = 6 &&
        awk 'FNR == NR { k = \$1; sub(/^mtd\\//, \"\", k); for (c = 2; c <= 4; c++) s[k, c] += \$c; n[k]++; next }
             FNR > 1 { split(\$0, f, \"\\t\"); rows++; if (n[f[1]] != 3) bad++; for (c = 2; c <= 4; c++) if ((f[c] - s[f[1], c] / 3) ^ 2 > 1e-12) bad++
                       if ((f[6] - (s[f[1], 2] + s[f[1], 3] + s[f[1], 4]) / 9) ^ 2 > 1e-10) bad++ }
             END { exit !(rows == 2 && !bad) }' \$d/fam-chk.txt \$d/val-family.tsv &&
        grep -q '^Per validation family, the chosen row' \$d/tune.md && grep -q '^| cutpaste-mix | ' \$d/tune.md && grep -q '^| defect-mix | ' \$d/tune.md &&
        jq -e '(.family_metrics | map(.family)) == [\"cutpaste-mix\", \"defect-mix\"] and (.family_metrics[0].i_auroc | type) == \"number\"' \$d/tune.json > /dev/null"
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 \
        --no-recon --grid quick --val-family cutpaste-mix,defect-mix --fold 2 --out "$T/tf2" > /dev/null 2>&1
    check "tune --fold 2 alone: the same grid as --folds' fold 2" sh -c "cmp -s '$T/tf2/val-grid.tsv' '$T/tcv/fold-2/val-grid.tsv' &&
        jq -e '.validation.holdout_rule | startswith(\"shard 2/7 \")' '$T/tf2/tune.json' > /dev/null"
    # a fixed --map-norm: applied after the grid, one row, the thresholds from the normalised maps
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 \
        --no-recon --grid quick --val-family cutpaste-mix,defect-mix --fold 2 --map-norm quantile:0.5 --global-weight 0.05 --out "$T/tf2" > /dev/null 2> "$T/tf2q.err"
    check "tune --map-norm quantile:0.5 --global-weight 0.05 (fixed): one stage-3 and one stage-4 row, chosen; thresholds calibrated on that run" sh -c "d='$T/tf2'
        test \"\$(tail -n +2 \$d/val-norm.tsv | cut -f1)\" = quantile:0.5 && jq -e '.choice.map_norm == \"quantile:0.5\" and .choice.global_weight == 0.05' \$d/tune.json > /dev/null &&
        test \"\$(tail -n +2 \$d/val-global.tsv | cut -f1)\" = 0.05 && grep -q '^TUNE_GLOBAL_WEIGHT=0.05\$' \$d/tune.env &&
        grep -q '^TUNE_MAP_NORM=quantile:0.5\$' \$d/tune.env && test -s \$d/val-chosen-quantile_0_5.scored.msgpack &&
        glad-auroc --calibrate \$d/thr-chk.json \$d/val-chosen-quantile_0_5-g0_05.scored.msgpack >/dev/null 2>&1 && cmp -s \$d/thr-chk.json \$d/thresholds.json &&
        head -c 4096 \$d/bank.safetensors | grep -aq '\"global\":\"16\"' && grep -q 'cached: val-grid.tsv' '$T/tf2q.err'"
    # --global-weight 0: no stage 4, no block 16, the banks without a Gaussian (the commands as before the stage)
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 \
        --no-recon --grid quick --val-family cutpaste-mix,defect-mix --fold 2 --global-weight 0 --out "$T/tg0" > /dev/null 2>&1
    check "tune --global-weight 0: no stage 4, no block 16, no Gaussian; the same grid" sh -c "d='$T/tg0'
        test ! -e \$d/val-global.tsv && ! grep -q '^Stage 4' \$d/tune.md && jq -e '.choice.global_weight == 0 and .choice.global_layers == null and .global_weight_stage == []' \$d/tune.json > /dev/null &&
        ! glad-info \$d/val-none.feat.msgpack | grep -q 'feat.image.16:' && ! head -c 4096 \$d/bank-all.safetensors | grep -aq '\"global\"' &&
        cmp -s \$d/val-grid.tsv '$T/tf2/val-grid.tsv'"
    status 2 "tune --global-weight without --no-recon" bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --global-weight 0.01 --out "$T/x"
    status 2 "tune --global-weight with --tile" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --tile 16 --no-recon --global-weight 0.01 --out "$T/x"
    status 2 "tune --global-weight abc" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --global-weight abc --out "$T/x"
    status 2 "tune --map-norm quantile:2" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --map-norm quantile:2 --out "$T/x"
    status 2 "mtd.sh --map-norm median" bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --map-norm median --out "$T/x"
    # with --tile the merged image's map is normalised (its nearest-rank median exactly 0), not each tile's
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --tile 16 --overlap 4 --map-norm quantile:0.5 --out "$T/mtd-tq" > "$T/mtd-tq.md" 2>/dev/null
    check "mtd.sh --tile --map-norm: tiles scored plain, the merged maps normalised and rescored" sh -c "
        glad-info -s '$T/mtd-tq/scored.msgpack' > '$T/mtd-tq.hist' && ! grep 'glad-score .*--bank' '$T/mtd-tq.hist' | grep -q -- --map-norm &&
        grep -A1 'glad-tile .*--merge' '$T/mtd-tq.hist' | grep -q 'glad-score .*--rescore --image-score topk-mean:250 --map-norm quantile:0.5' &&
        /usr/bin/python3 -c 'import sys, numpy as np; sys.path.insert(0, \"$ROOT/formats/python\"); from gladstream import read
recs = read(sys.argv[1])[1]; ok = [np.sort(r[\"amap\"].ravel())[(r[\"amap\"].size - 1) // 2] == 0 and r[\"amap\"].shape == (1, 32, 32) for r in recs]
sys.exit(0 if len(ok) == 18 and all(ok) else 1)' '$T/mtd-tq/scored.msgpack'"
    check "mtd.sh --tile without --tune: calibrated on the folds' merged images (the given normalisation), each image decided on its merged score" sh -c "
        jq -e '.nothing_chosen == true and .choice.map_norm == \"quantile:0.5\"' '$T/mtd-tq/calibrate/tune.json' > /dev/null &&
        t=\$(jq -r .image_threshold '$T/mtd-tq/calibrate/thresholds.json') &&
        awk -F, -v t=\"\$t\" 'NR > 1 { n++; if ((\$5 + 0 > t + 0) != \$6 + 0) bad++ } END { exit !(n == 18 && !bad) }' '$T/mtd-tq/images.csv' &&
        grep -q '^| MTD | [0-9.e+-]* | ' '$T/mtd-tq.md' && ! grep -q -- '--threshold-file' '$T/mtd-tq.hist'"
    # tune.sh with --tile: stage 3 on the merged validation images
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 --tile 16 --overlap 4 \
        --no-recon --grid quick --val-family cutpaste-mix --out "$T/tt" > /dev/null 2>&1
    check "tune --tile: stage 3 normalises the merged validation maps" sh -c "
        test \"\$(tail -n +2 '$T/tt/val-norm.tsv' | cut -f1 | tr '\n' ' ')\" = 'none quantile:0.1 quantile:0.5 ' &&
        glad-info -s '$T/tt/val-chosen-quantile_0_5.scored.msgpack' | grep -A1 'glad-tile .*--merge' | grep -q 'glad-score .*--rescore .*--map-norm quantile:0.5'"
    # mtd-tune.sh --folds 2: the candidates decided by the same rule (floor 0), from each
    # candidate's per-fold criteria as tune.json has them; tuning.md prints the decisions
    GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --no-recon --folds 2 --feat-layers 12 \
        --candidates "size:32 size:32+std:0.8 size:32+std:1.2" --val-family cutpaste-mix --out "$T/mtdcv" > "$T/mtdcv.md" 2> "$T/mtdcv.err"
    check "mtd-tune --folds 2: candidates.tsv has each candidate's per-fold criteria; the one-standard-error rule's candidate is chosen" bash -c "d='$T/mtdcv'
        for c in size-32 size-32+std-0.8 size-32+std-1.2; do
            test \"\$(awk -F'\t' -v c=\$c 'NR > 1 { n = \$1; gsub(/:/, \"-\", n); if (n == c) print \$2 }' \$d/candidates.tsv)\" = \"\$(jq -r '.validation.fold_criteria | map(tostring) | join(\",\")' \$d/\$c/tune.json)\" || exit 1
            jq -e '.validation.fold_criteria | length == 2' \$d/\$c/tune.json > /dev/null || exit 1; done
        w=\$(se_want \$d/candidates.tsv 0) && w=\${w%% *} && s=0 && case \$w in *std:*) s=\${w#*std:} ;; esac &&
        grep -q \"^chosen: --size 32 --tile 0 --overlap 0 --standardize \$s --feat-also-size none \" '$T/mtdcv.md' &&
        grep -q '^Kept by the one-standard-error rule .*: size:32+std:0.8 [-+][0-9.]* points (SE [0-9.]*): [a-z]*; size:32+std:1.2 ' '$T/mtdcv.md'"
    # --folds with a model: each fold trains its own, the grid's rows are the folds'
    # means, --bank's stage 2 scores every fold against its own model's bank
    bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --fg none --size 32 --steps 2 --batch 2 \
        --grid quick --folds 2 --bank --out "$T/trf" > /dev/null 2> "$T/trf.err"
    check "tune --folds 2 with a model: a model per fold, on its own training images; the grid's rows the two folds' means" bash -c "d='$T/trf'
        test -s \$d/model && test -s \$d/fold-1/model && ! cmp -s \$d/model \$d/fold-1/model &&
        ! cmp -s \$d/train.msgpack \$d/fold-1/train.msgpack && ! cmp -s \$d/val.msgpack \$d/fold-1/val.msgpack &&
        test \$(tail -n +2 \$d/val-cv-grid.tsv | wc -l) = 8 &&
        paste <(tail -n +2 \$d/val-grid.tsv) <(tail -n +2 \$d/fold-1/val-grid.tsv) <(tail -n +2 \$d/val-cv-grid.tsv) | awk -F'\t' '
            { for (c = 4; c <= 7; c++) if (\$c != \"null\" && ((\$c + \$(c + 7)) / 2 - \$(c + 14 + (c == 7))) ^ 2 > 1e-10) bad++
              if (\$1 != \$15 || \$8 != \$15 || \$2 != \$16) bad++ } END { exit !(NR == 8 && !bad) }' &&
        jq -e '.validation.folds == 2 and .model.steps == 2' \$d/tune.json > /dev/null && grep -q 'a model per fold' \$d/tune.md"
    check "tune --folds 2 --bank: stage 2 on each fold's own bank; a fold's figure is its rescored run's; the thresholds from both folds" bash -c "d='$T/trf'
        read -r s l r <<< \"\$(jq -r '.choice | \"\\(.strategy) \\(.layers) \\(.image_score)\"' \$d/tune.json)\" &&
        test -s \$d/bank.safetensors && test -s \$d/fold-1/bank.safetensors && ! cmp -s \$d/bank.safetensors \$d/fold-1/bank.safetensors &&
        test \"\$(cut -f1 \$d/val-bank.tsv | tr '\n' ' ')\" = 'bank_mode none replace union add ' &&
        glad-score --preset glad --layers \$l --image-score \$r --bank \$d/fold-1/bank.safetensors --bank-mode union \$d/fold-1/val-\$s.feat.msgpack > \$d/chk.msgpack &&
        test \"\$(awk -F'\t' '\$1 == \"union\" { split(\$5, c, \",\"); print c[2] }' \$d/val-bank.tsv)\" = \"\$(crit_of \$d/chk.msgpack)\" &&
        test \"\$(awk -F'\t' '\$1 == \"none\" { print \$5 }' \$d/val-bank.tsv)\" = \"\$(awk -F'\t' -v s=\$s -v l=\$l -v r=\$r '\$1 == s && \$2 == l && \$3 == r { print \$7 }' \$d/val-cv-grid.tsv)\" &&
        m=\$(jq -r .choice.bank_mode \$d/tune.json) && grep -q \"^TUNE_BANK_MODE=\$m\$\" \$d/tune.env && grep -q '^Stage 2.*each fold' \$d/tune.md &&
        nn=0; for f in \$d/val.msgpack \$d/fold-1/val.msgpack; do nn=\$((nn + \$(glad-info \$f | grep -c 'label=0'))); done;
        test \"\$(jq .counts.normal \$d/thresholds.json)\" = \$nn"
    status 2 "tune --folds 0" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --folds 0 --out "$T/x"
    status 2 "tune --folds more than the hold-out's shards" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --folds 8 --out "$T/x"
    status 2 "tune --fold 1 with --folds 2" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --folds 2 --fold 1 --out "$T/x"
    status 2 "tune --fold 7 (shards 0..6)" env GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --channels 1 --size 32 --no-recon --fold 7 --out "$T/x"
    # mtd-tune.sh --no-recon: a squashed and a native candidate
    GLAD_WEIGHTS=$W bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:32 native native:0.5" --no-recon --grid quick \
        --val-family cutpaste-mix,defect-mix --out "$T/mtdnr" > "$T/mtdnr.md" 2>/dev/null
    check "mtd-tune --no-recon: a row per candidate, the chosen line with no denoising and the bank alone" sh -c "
        grep -q '^| size:32 | none | ' '$T/mtdnr.md' && grep -q '^| native | none | ' '$T/mtdnr.md' &&
        grep -q \"^chosen: --size \(32\|native\|native:0.5\) --tile 0 --overlap 0 --standardize 0 --feat-also-size none --bank-norm none --steps 300 --denoise '' --feat-layers [0-9,]* --image-score [a-z:0-9-]* --bank-mode replace --bank-subsample 1 --map-norm [a-z:0-9.]* --global-weight [0-9.]*\$\" '$T/mtdnr.md' &&
        grep -q '^no model (--no-recon)' '$T/mtdnr.md' && test ! -e '$T/mtdnr/native/model'"
    check "mtd-tune --no-recon native:0.5: the tiles at half their size, the aspect ratio kept" sh -c "
        grep -q '^| native:0.5 | none | ' '$T/mtdnr.md' && glad-info -s '$T/mtdnr/native-0.5/val.msgpack' | grep -q 'glad-encode.* --scale 0.5' &&
        jq -e '.native_scale == 0.5' '$T/mtdnr/native-0.5/tune.json' >/dev/null &&
        test \"\$(glad-info '$T/mtdnr/native/all-train.msgpack' | sed -n 's/.*image:|u1\[1,\([0-9]*\),\([0-9]*\)\].*/\1 \2/p' | awk '{ printf \"%d %d\\n\", \$1 / 2 + 0.5, \$2 / 2 + 0.5 }')\" = \"\$(glad-info '$T/mtdnr/native-0.5/all-train.msgpack' | sed -n 's/.*image:|u1\[1,\([0-9]*\),\([0-9]*\)\].*/\1 \2/p')\""
    status 2 "mtd-tune: native:F with F not a number" bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "native:half" --no-recon --out "$T/x"
    status 2 "mtd-tune: native without --no-recon" bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "native" --out "$T/x"
    # mtd.sh at the native size: the bank alone on unsquashed tiles; a model needs one size
    # native_maps F: F's 18 records have amaps of their image's size, in more than 2 sizes
    native_maps() {
        glad-info "$1" | grep 'amap:' | sed 's/.*image:|u1\[1,\([0-9,]*\)\].*amap:<f4\[1,\([0-9,]*\)\].*/\1 \2/' \
            | awk '$1 != $2 { bad++ } { s[$1] } END { exit !(NR == 18 && !bad && length(s) > 2) }'
    }
    export -f native_maps
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size native --bank-mode replace --feat-layers 5,12 --no-calibrate --out "$T/mtd-n" > "$T/mtd-n.md" 2>/dev/null
    check "mtd.sh --size native: the bank alone, maps at each tile's own size" bash -c "
        grep -q '^| memory bank alone (mobilenetv2 features, no reconstruction)[^|]* | [0-9.]*' '$T/mtd-n.md' && test ! -e '$T/mtd-n/model' &&
        ! glad-info -s '$T/mtd-n/scored.msgpack' | grep -q 'glad-encode.* --size' &&
        native_maps '$T/mtd-n/scored.msgpack'"
    # a model asked for with the defaults (no --size): the sixth run's line, 256 px
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --steps 2 --batch 2 --bank-mode union --out "$T/mtd-u" > "$T/mtd-u.md" 2> "$T/mtd-u.err"
    check "mtd.sh --bank-mode union with the defaults: a model at 256 px, fixed T' 250, blocks 5,12, top-250" sh -c "
        test -s '$T/mtd-u/model' && grep -q '^| GLAD (mobilenetv2 features) | [0-9.]*' '$T/mtd-u.md' && grep -q \"the sixth run's size 256\" '$T/mtd-u.err' &&
        glad-info -s '$T/mtd-u/scored.msgpack' > '$T/mtd-u.hist' && grep -q 'glad-encode.* --size 256 ' '$T/mtd-u.hist' &&
        grep -q 'glad-denoise .*--steps 250 --skip 25 ' '$T/mtd-u.hist' && grep -q 'glad-features .*--layers 5,12' '$T/mtd-u.hist' &&
        grep -q 'glad-score .*--image-score topk-mean:250 .*--bank-mode union' '$T/mtd-u.hist'"
    status 2 "mtd.sh --size native with a model (--bank-mode union)" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size native --bank-mode union --out "$T/x"
    # --global-weight: the bank alone's bank with block 16's whole-image Gaussian, its
    # Mahalanobis distance added to each image score; refused where it would not apply
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --global-weight 0.01 --no-calibrate --out "$T/mtd-g" > "$T/mtd-g.md" 2>/dev/null
    check "mtd.sh --global-weight 0.01: glad-bank --global 16, glad-score --global-weight, score_global on all 18 records" sh -c "
        grep -q '^| memory bank alone (mobilenetv2 features, no reconstruction)[^|]* + whole-image Gaussian of block 16, weight 0.01 | [0-9.]*' '$T/mtd-g.md' &&
        head -c 2000 '$T/mtd-g/bank-global.safetensors' | grep -aq '\"global\":\"16\"' && test ! -e '$T/mtd-g/bank.safetensors' &&
        glad-info -s '$T/mtd-g/scored.msgpack' | grep -q 'glad-score .*--global-weight 0.01' &&
        test \$(glad-info --json '$T/mtd-g/scored.msgpack' | tail -n +2 | grep -c '\"score_global\":') = 18"
    status 2 "mtd.sh --global-weight with a model (--bank-mode union)" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --bank-mode union --global-weight 0.01 --out "$T/x"
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --tune --tune-grid quick --global-weight 0.01 --out "$T/mtd-gt" > "$T/mtd-gt.md" 2>/dev/null
    check "mtd.sh --tune --global-weight 0.01: tune.sh applies it (not tuned), the test tiles scored with it" sh -c "
        jq -e '.choice.global_weight == 0.01 and (.global_weight_stage | length) == 1' '$T/mtd-gt/tune/tune.json' > /dev/null &&
        glad-info -s '$T/mtd-gt/scored.msgpack' | grep -q 'glad-score .*--global-weight 0.01' &&
        test \$(glad-info --json '$T/mtd-gt/scored.msgpack' | tail -n +2 | grep -c '\"score_global\":') = 18 &&
        grep -q '^| MTD | none | [0-9,]* | [a-z:0-9-]*.*, global 0.01 |' '$T/mtd-gt.md'"
    status 2 "mtd.sh --global-weight with --tile" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --tile 16 --global-weight 0.01 --out "$T/x"
    status 2 "mtd.sh --global-weight abc" env GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --global-weight abc --out "$T/x"
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --tune --tune-grid quick --out "$T/mtd-nt" > "$T/mtd-nt.md" 2>/dev/null
    mf=$(sed -n 's/^MTD_FOLDS=\([0-9]*\)$/\1/p' "$R/mtd.sh")   # the folds mtd.sh --tune validates on
    check "mtd.sh --tune with MobileNetV2 features: tune.sh --no-recon, no model, the bank alone" sh -c "
        test -n '$mf' && jq -e '.no_recon == true and .validation.folds == ${mf:-0}' '$T/mtd-nt/tune/tune.json' >/dev/null && test ! -e '$T/mtd-nt/tune/model' &&
        grep -q '^| memory bank alone (mobilenetv2 features, no reconstruction)[^|]* | [0-9.]*' '$T/mtd-nt.md' && grep -q '^| MTD | none | ' '$T/mtd-nt.md'"
    check "mtd.sh --tune: decisions at tune.sh's threshold in the table and the per-image list" sh -c "
        grep -q '^| decisions at the calibrated threshold | ' '$T/mtd-nt.md' && grep -q '^| MTD | [0-9.e+-]* | ' '$T/mtd-nt.md' && test \$(wc -l < '$T/mtd-nt/images.csv') = 19 &&
        jq -e '.nothing_chosen == false' '$T/mtd-nt/tune/tune.json' > /dev/null"
    check "mtd.sh --tune: the test maps normalised as tune.sh chose (glad-score --map-norm, or none)" sh -c "
        n=\$(jq -r .choice.map_norm '$T/mtd-nt/tune/tune.json'); glad-info -s '$T/mtd-nt/scored.msgpack' | grep 'glad-score' > '$T/mtd-nt.hist' &&
        if [ \"\$n\" = none ]; then ! grep -q -- '--map-norm' '$T/mtd-nt.hist'; else grep -q -- \"--map-norm \$n\" '$T/mtd-nt.hist'; fi"
    check "mtd.sh --tune: the test tiles scored with the weight tune.sh chose (glad-score --global-weight, or none)" sh -c "
        w=\$(jq -r .choice.global_weight '$T/mtd-nt/tune/tune.json'); glad-info -s '$T/mtd-nt/scored.msgpack' | grep 'glad-score' > '$T/mtd-nt.hist2' &&
        test -s '$T/mtd-nt/tune/val-global.tsv' &&
        if [ \"\$w\" = 0 ]; then ! grep -q -- '--global-weight' '$T/mtd-nt.hist2'; else grep -q \"glad-score .*--global-weight \$w\" '$T/mtd-nt.hist2'; fi"
    check "mtd.sh --tune: one per-family row per validation family (mtd.sh's MTD_VAL_FAMILY), a metric in [0,1] or null (n/a), never -1 (stage 3's rows too)" sh -c "
        fams=\$(sed -n 's/^MTD_VAL_FAMILY=//p' '$R/mtd.sh'); test -n \"\$fams\" &&
        test \"\$(jq -r '.family_metrics | map(.family) | join(\",\")' '$T/mtd-nt/tune/tune.json')\" = \"\$fams\" &&
        jq -e '(.family_metrics + .map_norm_stage) | all(.[]; [.i_auroc, .p_auroc, .aupro, .criterion] | all(. == null or (. >= 0 and . <= 1)))' '$T/mtd-nt/tune/tune.json' > /dev/null"
    GLAD_WEIGHTS=$W bash "$R/mtd.sh" --data "$SHARED/datasets/mtd-mini" --size 32 --map-norm quantile:0.1 --out "$T/mtd-q" > "$T/mtd-q.md" 2>/dev/null
    check "mtd.sh --map-norm quantile:0.1: the bank alone's maps less their 10th percentile" sh -c "
        grep -q '^| memory bank alone (mobilenetv2 features, no reconstruction)[^|]* | [0-9.]*' '$T/mtd-q.md' &&
        glad-info -s '$T/mtd-q/scored.msgpack' | grep -q 'glad-score .*--map-norm quantile:0.1'"
    # without --tune the bank alone is calibrated all the same: tune.sh with every knob
    # given (nothing chosen), its threshold on the test tiles
    check "mtd.sh without --tune: tune.sh calibrates the given line (nothing chosen, the same knobs)" sh -c "
        jq -e '.nothing_chosen == true and .choice.layers == \"12\" and .choice.map_norm == \"quantile:0.1\" and .validation.folds == ${mf:-0}' '$T/mtd-q/calibrate/tune.json' > /dev/null &&
        grep -q '^Nothing chosen: every knob was given' '$T/mtd-q/calibrate/tune.md' &&
        test ! -e '$T/mtd-q/calibrate/bank.safetensors' && grep -qx 'TUNE_BANK=..' '$T/mtd-q/calibrate/tune.env' &&
        glad-info -s '$T/mtd-q/scored.msgpack' > '$T/mtd-q.hist' &&
        grep -q 'tune.sh .*--chosen-by .*nothing chosen, every knob given: none, layers 12 (given), ' '$T/mtd-q.hist' &&
        grep -q 'glad-score .*--threshold-file $T/mtd-q/calibrate/thresholds.json' '$T/mtd-q.hist'"
    check "mtd.sh without --tune: every test tile's decision is its score above the calibrated threshold" sh -c "
        t=\$(jq -r .image_threshold '$T/mtd-q/calibrate/thresholds.json') &&
        head -1 '$T/mtd-q/images.csv' | grep -q '^id,class,defect,label,score,decision' &&
        awk -F, -v t=\"\$t\" 'NR > 1 { n++; if ((\$5 + 0 > t + 0) != \$6 + 0) bad++; pos += \$6 } END { exit !(n == 18 && !bad && t > 0) }' '$T/mtd-q/images.csv' &&
        test \$(glad-info --json '$T/mtd-q/scored.msgpack' | tail -n +2 | grep -c '\"decision\":') = 18"
    check "mtd.sh without --tune: table.md has the figures at the threshold and how it was calibrated" sh -c "
        grep -q '^| MTD | [0-9.e+-]* | [0-9.na/]* | [0-9.]* | [0-9.]* | [0-9.]* |' '$T/mtd-q/table.md' &&
        grep -q '^Threshold: glad-auroc --calibrate, target-fpr 1 %, on the validation of [0-9]* held-out normal' '$T/mtd-q/table.md' &&
        grep -q '^all ' '$T/mtd-q/decisions.txt'"
    mw=$(sed -n 's/^MTD_GLOBAL_WEIGHT=\([0-9.]*\)$/\1/p' "$R/mtd.sh")
    check "mtd.sh's default whole-image weight (MTD_GLOBAL_WEIGHT=$mw) is used by the bank alone untiled" sh -c "test -n '$mw' &&
        if [ '$mw' = 0 ]; then ! glad-info -s '$T/mtd-q/scored.msgpack' | grep -q 'glad-score .*--global-weight' && test ! -e '$T/mtd-q/bank-global.safetensors'
        else glad-info -s '$T/mtd-q/scored.msgpack' | grep -q 'glad-score .*--global-weight $mw' && test -s '$T/mtd-q/bank-global.safetensors'; fi"
    # --peek with the bank alone: stage 3 and 4 applied to the chosen line's test scores
    GLAD_WEIGHTS=$W bash "$R/tune.sh" --data "$SHARED/datasets/mtd-mini" --format mtd --split-file "$ROOT/datasets/mtd/split.txt" --channels 1 \
        --fg none --size 32 --backbone mobilenetv2 --no-recon --grid quick --val-family cutpaste-mix,defect-mix --peek --out "$T/tnp" > /dev/null 2>&1
    check "tune --no-recon --peek: the chosen line with its normalisation and weight on the test split, its figures recomputed" bash -c "
        v=\$(peek_line '$T/tnp' '$T/tnp/test-none.feat.msgpack' '$T/tnp/bank-all.safetensors') && test -n \"\$v\" &&
        grep -qF \" | \$v |\" <(grep '^| validation-chosen line as the recipes run it (bank replace, map norm [^,]*, global weight [0-9.]*) | none | ' '$T/tnp/peek.md')"
    check "tune --no-recon --peek: the grid's test rows scored as the chosen line (its normalisation and weight): its row equals the last" bash -c "d='$T/tnp'
        a=\$(grep '^| validation-chosen |' \$d/peek.md | cut -d'|' -f3-) && b=\$(grep '^| validation-chosen line as the recipes run it' \$d/peek.md | cut -d'|' -f3-) &&
        test -n \"\$a\" && test \"\$a\" = \"\$b\" &&
        if [ \"\$(jq -r '.choice | \"\\(.map_norm) \\(.global_weight)\"' \$d/tune.json)\" = 'none 0' ]; then test ! -e \$d/test-grid-staged.tsv
        else cmp -s <(cut -f1-3 \$d/test-grid.tsv) <(cut -f1-3 \$d/test-grid-staged.tsv) && grep -q '^| mtd, on the TEST split (each row.s maps with map norm ' \$d/peek.md; fi"
    status 2 "mtd-tune: a malformed candidate" bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "square:64" --out "$T/x"
    status 2 "mtd-tune: a candidate's steps not a number" bash "$R/mtd-tune.sh" --data "$SHARED/datasets/mtd-mini" --candidates "size:16@x" --out "$T/x"
else skip "../shared absent: mtd.sh --tune and mtd-tune.sh are not run"; fi
done_tests
