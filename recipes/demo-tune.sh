#!/bin/bash
# demo-tune.sh - choose run.sh's defaults (denoising strategy, feature layers,
# image score) on the built-in demo's training split alone. Runs recipes/tune.sh
# for every demo class with the recipes' defaults (size, steps, preset, seed;
# the unet backbone unless --backbone says otherwise) and chooses the grid row
# with the highest validation criterion averaged over the classes (the mean of
# validation I-AUROC, P-AUROC and AUPRO per class; ties keep the earlier row).
# One setting for all classes, since run.sh's defaults are one setting; per class
# choices are what `run.sh --tune` makes.
#
#   recipes/demo-tune.sh [--out DIR] [--classes fabric,pill] [--backbone unet]
#                        [--grid full|quick] [--peek]
#                        [--data DIR --size N --steps N --batch N --seed S]   (passed to tune.sh;
#                                                 defaults: the built-in demo and the recipes')
#
#   --peek   ALSO score every row on each class's test split and report the
#            chosen setting's test metrics beside the former default's and the
#            best row's by test metrics (for RESULTS.md; nothing is chosen from it)
#
# Writes OUT/tuning.md ending in the "chosen:" line `recipes/run.sh --show-defaults`
# prints; datasets/demo/tuning.md is that file for the shipped defaults
# (tests/cli/recipes.sh checks that they agree).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OUT="$ROOT/results/demo-tune" CLASSES=fabric,pill BACKBONE=unet GRID=full PEEK="" pass=()
CMDLINE="recipes/demo-tune.sh$(printf ' %q' "$@")"
while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT=$2; shift 2 ;;
    --classes) CLASSES=$2; shift 2 ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    --grid) GRID=$2; shift 2 ;;
    --peek) PEEK=--peek; shift ;;
    --data|--size|--steps|--batch|--seed) pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "demo-tune.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v jq >/dev/null || { echo "demo-tune.sh: jq is needed (apt-get install jq)" >&2; exit 1; }
mkdir -p "$OUT"
grids=() tests=()
for c in ${CLASSES//,/ }; do
    echo "demo-tune.sh: class $c -> $OUT/$c" >&2
    # wall, user, sys seconds of tune.sh to $c.time (a rerun that recomputed nothing keeps the old)
    { TIMEFORMAT='%R %U %S'; time bash "$ROOT/recipes/tune.sh" --class "$c" --backbone "$BACKBONE" --grid "$GRID" \
        "${pass[@]}" $PEEK --out "$OUT/$c" > /dev/null 2> >(tee "$OUT/$c.log" >&3); } 3>&2 2> "$OUT/$c.time.new"
    if [ -s "$OUT/$c.time" ] && ! grep -q '^making' "$OUT/$c.log"; then rm -f "$OUT/$c.time.new"; else mv "$OUT/$c.time.new" "$OUT/$c.time"; fi
    grids+=("$OUT/$c/val-grid.tsv")
    [ -z "$PEEK" ] || tests+=("$OUT/$c/test-grid.tsv")
done
# mean criterion per configuration over the classes (rows present in every class), in grid order
best=$(awk -F'\t' -v k="${#grids[@]}" 'FNR > 1 { key = $1 "\t" $2 "\t" $3; if (!(key in n)) order[++m] = key; n[key]++; s[key] += $7 }
    END { for (i = 1; i <= m; i++) { key = order[i]; if (n[key] == k && (b == "" || s[key] / k > b)) { b = s[key] / k; best = key } }
          if (best != "") printf "%s\t%.6f\n", best, b }' "${grids[@]}")
[ -n "$best" ] || { echo "demo-tune.sh: no configuration has validation metrics in every class" >&2; exit 1; }
IFS=$'\t' read -r C_STRAT C_LAYERS C_SCORE C_CRIT <<< "$best"
# the strategy's glad-denoise options, from tune.sh's table (name|options)
C_DEN=$(grep -o "\"$C_STRAT|[^\"]*\"" "$ROOT/recipes/tune.sh" | head -1 | sed 's/^"[^|]*|//; s/"$//')
[ -n "$C_DEN" ] || { echo "demo-tune.sh: strategy $C_STRAT not found in tune.sh" >&2; exit 1; }
pct() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "n/a"; else printf "%.1f", 100 * x }'; }
row_of() {   # row_of FILE STRAT LAYERS SCORE -> "I P PRO" (percent)
    awk -F'\t' -v s="$2" -v l="$3" -v r="$4" 'function p(x) { return (x == "" || x == "null") ? "n/a" : sprintf("%.1f", 100 * x) }
        NR > 1 && $1 == s && $2 == l && $3 == r { print p($4) " | " p($5) " | " p($6); exit }' "$1"
}
{
    echo "# run.sh's defaults chosen on the demo's training split alone"
    echo
    echo "Command (features: $BACKBONE):"
    echo
    echo "    $CMDLINE"
    echo
    echo "Per class, recipes/tune.sh with the recipes' defaults: held-out training normals (half given a"
    echo "glad-synth anomaly), model trained on the rest; every grid row's validation criterion (the mean"
    echo "of validation I-AUROC, P-AUROC and AUPRO). Chosen: the row with the highest criterion averaged"
    echo "over the classes (ties keep the earlier row; the first row is the former default)."
    echo
    echo "| class | its own validation choice | chosen setting: val I-AUROC | val P-AUROC | val AUPRO | wall s | CPU s |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for c in ${CLASSES//,/ }; do
        read -r w u s < <(tail -1 "$OUT/$c.time")
        echo "| $c | $(jq -r '[.choice.strategy, .choice.layers, .choice.image_score] | join(", ")' "$OUT/$c/tune.json") | $(row_of "$OUT/$c/val-grid.tsv" "$C_STRAT" "$C_LAYERS" "$C_SCORE") | $w | $(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }') |"
    done
    echo
    echo "Mean validation criterion of the chosen setting: $(pct "$C_CRIT")."
    if [ -n "$PEEK" ]; then
        echo
        echo "## The test split (reported, never used to choose)"
        echo
        echo "| class | setting | strategy | layers | image score | I-AUROC | P-AUROC | AUPRO |"
        echo "|---|---|---|---|---|---:|---:|---:|"
        for c in ${CLASSES//,/ }; do
            t="$OUT/$c/test-grid.tsv"
            echo "| $c | chosen on validation (the default) | $C_STRAT | $C_LAYERS | $C_SCORE | $(row_of "$t" "$C_STRAT" "$C_LAYERS" "$C_SCORE") |"
            awk -F'\t' -v c="$c" 'function p(x) { return (x == "" || x == "null") ? "n/a" : sprintf("%.1f", 100 * x) }
                NR == 2 { printf "| %s | former default (first row) | %s | %s | %s | %s | %s | %s |\n", c, $1, $2, $3, p($4), p($5), p($6) }
                NR > 1 && $7 > b { b = $7; best = sprintf("| %s | best on test (peeking) | %s | %s | %s | %s | %s | %s |", c, $1, $2, $3, p($4), p($5), p($6)) }
                END { print best }' "$t"
        done
    fi
    echo
    echo "Chosen (the line \`recipes/run.sh --show-defaults\` prints when run.sh uses these defaults):"
    echo
    echo "chosen: --denoise '$C_DEN' --feat-layers $C_LAYERS --image-score $C_SCORE"
} > "$OUT/tuning.md"
cat "$OUT/tuning.md"
