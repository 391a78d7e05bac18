#!/bin/bash
# mtd-tune.sh - choose mtd.sh's defaults on the MTD training split alone.
# Runs recipes/tune.sh once per input candidate -- squashed N x N squares
# ("size:N"), the images at their native size and aspect ratio ("native", or
# "native:F" scaled by F; with --no-recon only: no model is trained on them) or N x N tiles of the images at their native size with P pixels of
# overlap ("tile:N:P", aspect ratio and resolution kept), optionally with its own
# number of training steps ("size:256@300": larger inputs cost more per step) and
# optionally with each image standardised before the feature backbone
# ("size:256+std:0.8": glad-features --standardize 0.8, bank and validation alike;
# "size:256+std:tanh:1.2": with --standardize-tail tanh, the values beyond +-1
# squashed instead of clipped; open: left as they are; "std:clip,tanh:1.2": the
# features under both tails, the pixel-wise maximum of their maps)
# and optionally with MobileNetV2's layers at further input sides, their maps
# summed ("size:256+std:1.2+also:192,320": glad-features --also-size 192,320) and
# optionally with the bank's distances read against its radii
# ("size:256+std:1.2+bn:ratio": glad-score --bank-norm ratio, glad-bank --radius; ratio or diff) -- each with its grid of
# denoising strategies, feature layers and image scores, on the same held-out
# training normals (same seed and shard: the same images; half given a
# glad-synth anomaly). The candidate and grid row with the highest validation
# criterion (mean of I-AUROC, P-AUROC, AUPRO) are chosen; ties keep the earlier
# candidate, and with --folds a later candidate replaces the kept one only when
# it beats it by more than the standard error of their per-fold differences
# (lib.sh's kept_row, the one-standard-error rule: list candidates simplest
# first). No test image is read: MTD_TRAIN_ROOT may hold the training split
# only (../shared/datasets/mtd-train).
#
#   recipes/mtd-tune.sh --data MTD_TRAIN_ROOT [--out DIR] [--candidates "size:64 size:128 tile:128:32 size:256@300 size:256+std:0.8"]
#                       [--steps N] [--batch N] [--seed S] [--grid full|quick]
#                       [--backbone auto|unet|mobilenetv2] [--split-file F]
#                       [--bank [--bank-subsample F]] [--val-family F] [--no-recon] [--folds K]
#                       [--feat-layers LIST]
#
#   --bank   also run tune.sh's bank stage (the chosen row against a memory bank
#            of the training tiles' features in each --bank-mode, a random
#            fraction F of the positions, default 1); candidates are then
#            compared by the criterion after it
#   --no-recon   tune.sh --no-recon: the memory bank alone (MobileNetV2 features),
#            no model trained, nothing reconstructed; the grid is the feature
#            layers and image scores (--bank-subsample applies to its bank)
#   --folds K   tune.sh --folds K, every candidate validated on K hold-out shards in
#            turn and compared by the criterion averaged over them (without
#            --no-recon: a model trained per fold, K times the training)
#   (tune.sh's stage 3 chooses each candidate's map normalisation, glad-score
#            --map-norm, on its chosen row, and with --no-recon on untiled
#            candidates stage 4 the weight of block 16's whole-image Gaussian,
#            glad-score --global-weight; candidates are compared after them)
#   --feat-layers LIST   every candidate's feature layers fixed (tune.sh does not
#            choose them; its grid is then the image scores)
#   --val-family   tune.sh's validation anomalies (default draem, the ATP
#            training's own family; cutpaste, scar or cutpaste-mix: CutPaste's;
#            crack, hole, stain, defect-mix, uneven or edge: drawn defects; both unseen
#            in training)
#
# Writes OUT/tuning.md: the command, per candidate its chosen row, validation
# figures and wall/CPU seconds (of a rerun that recomputed only part of the
# candidate: that rerun's, marked "(partial)"), every grid row, and the "chosen:" line in the
# form `recipes/mtd.sh --show-defaults` prints (datasets/mtd/tuning.md is this
# file for the shipped defaults; tests/cli/recipes.sh checks that they agree).
# Note: candidates at different resolutions see the same held-out images but
# different synthetic anomalies (drawn at each resolution), so comparisons
# across candidates are less exact than within one candidate's grid.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
CANDS="size:64" SPLIT="$ROOT/datasets/mtd/split.txt" GRID=full BANK=() BANK_SUB=1 VFAM=draem
DATA="" OUT="" STEPS=300 BATCH=8 SEED=1 BACKBONE=${BACKBONE:-auto} NO_RECON=() FOLDS=() FIXED_LAYERS=()
CMDLINE="recipes/mtd-tune.sh$(printf ' %q' "$@")"
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --candidates) CANDS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --grid) GRID=$2; shift 2 ;;
    --bank) BANK=(--bank); shift ;;
    --no-recon) NO_RECON=(--no-recon); shift ;;
    --folds) FOLDS=(--folds "$2"); shift 2 ;;
    --bank-subsample) BANK_SUB=$2; shift 2 ;;
    --val-family) VFAM=$2; shift 2 ;;
    --backbone) BACKBONE=$2; shift 2 ;;
    --split-file) SPLIT=$2; shift 2 ;;
    --feat-layers) FIXED_LAYERS=(--feat-layers "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "mtd-tune.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$DATA" ] || { echo "mtd-tune.sh: --data MTD_TRAIN_ROOT (the folder with MT_Free/Imgs) is required" >&2; exit 2; }
command -v jq >/dev/null || { echo "mtd-tune.sh: jq is needed (apt-get install jq)" >&2; exit 1; }
OUT=${OUT:-$ROOT/results/mtd-tune}
mkdir -p "$OUT"
FEAT_BACKBONE=$(feat_backbone) || exit 2
# candidate -> tune.sh input options, its directory name and the mtd.sh size/tile;
# "@STEPS" (the candidate's own training steps) is split off first
cand_steps() { case "$1" in *@*) echo "${1#*@}" ;; *) echo "$STEPS" ;; esac; }
cand_dir() { local c=${1//:/-}; echo "$OUT/${c//@/-s}"; }
# "+bn:M" (glad-score --bank-norm M) next, then "+also:LIST" (glad-features --also-size LIST), then "+std:S"
# (glad-features --standardize S on every image the candidate's features see):
# size:256+std:0.8+also:192@300
cand_bn() { local c=${1%@*}; case "$c" in *+bn:*) echo "${c##*+bn:}" ;; *) echo none ;; esac; }
cand_also() { local c=${1%@*}; c=${c%+bn:*}; case "$c" in *+also:*) echo "${c##*+also:}" ;; *) echo none ;; esac; }
cand_std() { local c=${1%@*}; c=${c%+bn:*}; c=${c%+also:*}; case "$c" in *+std:*) echo "${c##*+std:}" ;; *) echo 0 ;; esac; }
cand_opts() {
    case "$1" in *@*) [[ "${1#*@}" =~ ^[1-9][0-9]*$ ]] || return 0; set -- "${1%@*}" ;; esac
    local std="" also="" bn=""
    case "$1" in *+bn:*)
        bn=$(cand_bn "$1"); case "$bn" in ratio|diff) ;; *) return 0 ;; esac
        bn=" --bank-norm $bn"; set -- "${1%+bn:*}" ;;
    esac
    case "$1" in *+also:*)
        also=$(cand_also "$1"); is_also "$also" && [ "$also" != none ] || return 0
        also=" --feat-also-size $also"; set -- "${1%+also:*}" ;;
    esac
    case "$1" in *+std:*)
        std=$(cand_std "$1"); is_std "$std" || return 0
        std=" --standardize $std"; set -- "${1%+std:*}" ;;
    esac
    case "$1" in
    size:[0-9]*) [[ "${1#size:}" =~ ^[0-9]+$ ]] && echo "--size ${1#size:}$std$also$bn" ;;
    native) [ "${#NO_RECON[@]}" = 0 ] || [ -n "$also" ] || echo "--size native$std$bn" ;;
    native:*) [ "${#NO_RECON[@]}" = 0 ] || [ -n "$also" ] || ! is_factor "${1#native:}" || echo "--size $1$std$bn" ;;
    tile:[0-9]*:[0-9]*) local r=${1#tile:}; echo "--tile ${r%%:*} --overlap ${r#*:}$std$also$bn" ;;
    esac
}
cand_defaults() {   # "--size S --tile T --overlap P --standardize S --feat-also-size L --bank-norm M" as in mtd.sh --show-defaults
    local std also bn; std=$(cand_std "$1") also=$(cand_also "$1") bn=$(cand_bn "$1")
    set -- "${1%@*}"
    set -- "${1%+bn:*}"
    set -- "${1%+also:*}"
    set -- "${1%+std:*}"
    case "$1" in
    size:*) echo "--size ${1#size:} --tile 0 --overlap 0 --standardize $std --feat-also-size $also --bank-norm $bn" ;;
    native|native:*) echo "--size $1 --tile 0 --overlap 0 --standardize $std --feat-also-size $also --bank-norm $bn" ;;
    tile:*) local r=${1#tile:}; echo "--size native --tile ${r%%:*} --overlap ${r#*:} --standardize $std --feat-also-size $also --bank-norm $bn" ;;
    esac
}
for c in $CANDS; do
    [ -n "$(cand_opts "$c")" ] || { echo "mtd-tune.sh: a candidate is size:N, tile:N:P (optionally +std:S, +std:T:S or +std:T,U:S, +also:LIST, +bn:ratio or +bn:diff, then @STEPS) or, with --no-recon, native or native:F; not '$c'" >&2; exit 2; }
done
rows=() CAND_TSV=$OUT/candidates.tsv
printf 'candidate\tfold_criteria\tcriterion\n' > "$CAND_TSV.tmp"
for c in $CANDS; do
    d=$(cand_dir "$c")
    echo "mtd-tune.sh: candidate $c -> $d" >&2
    mkdir -p "$d"
    # bash's time (wall, user, sys of tune.sh and its children) to $d.time; tune.sh's stderr
    # to stderr and $d.log. A rerun that recomputed nothing keeps the time of the run that did;
    # one that recomputed some files and took others from the cache is timed as it ran, and
    # its row says so ("partial"), since its time is not the candidate's whole cost.
    { TIMEFORMAT='%R %U %S'; time bash "$ROOT/recipes/tune.sh" --data "$DATA" --format mtd --split-file "$SPLIT" \
        --channels 1 --fg none $(cand_opts "$c") --steps "$(cand_steps "$c")" --batch "$BATCH" --seed "$SEED" \
        --backbone "$FEAT_BACKBONE" --preset tiny --grid "$GRID" ${BANK[@]+"${BANK[@]}"} ${NO_RECON[@]+"${NO_RECON[@]}"} ${FOLDS[@]+"${FOLDS[@]}"} ${FIXED_LAYERS[@]+"${FIXED_LAYERS[@]}"} --bank-subsample "$BANK_SUB" --val-family "$VFAM" --out "$d" > /dev/null 2> >(tee "$d.log" >&3); } 3>&2 2> "$d.time.new"
    if [ -s "$d.time" ] && ! grep -q '^making' "$d.log"; then rm -f "$d.time.new"
    else
        mv "$d.time.new" "$d.time"
        if grep -q "^cached" "$d.log"; then echo partial >> "$d.time"; fi
    fi
    read -r wall usr sys < <(grep -v '^partial' "$d.time" | tail -1)
    grep -q '^partial' "$d.time" && wall="$wall (partial)"
    crit=$(jq -r '.criterion_value // -1' "$d/tune.json")
    rows+=("$c	$(jq -r '[.choice.strategy, .choice.layers, .choice.image_score + '"$JQ_MAP_NORM"',
        (.validation_metrics.i_auroc // "null"), (.validation_metrics.p_auroc // "null"), (.validation_metrics.aupro // "null")] | map(tostring) | join("\t")' "$d/tune.json")	$crit	$wall	$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')")
    printf '%s\t%s\t%s\n' "$c" "$(jq -r '.validation.fold_criteria // [.criterion_value] | map(tostring) | join(",")' "$d/tune.json")" "$crit" >> "$CAND_TSV.tmp"
done
mv "$CAND_TSV.tmp" "$CAND_TSV"
best=$(kept_row "$CAND_TSV" 0 | cut -f1)
[ -n "$best" ] || { echo "mtd-tune.sh: no candidate has a validation criterion" >&2; exit 1; }
d=$(cand_dir "$best")
den=$(jq -r .choice.denoise "$d/tune.json") layers=$(jq -r .choice.layers "$d/tune.json") score=$(jq -r .choice.image_score "$d/tune.json")
bank=$(jq -r '.choice.bank_mode // "none"' "$d/tune.json") banksub=$(jq -r '.choice.bank_subsample // "1"' "$d/tune.json")
norm=$(jq -r '.choice.map_norm // "none"' "$d/tune.json") gw=$(jq -r '.choice.global_weight // 0' "$d/tune.json")
CHOSEN="chosen: $(cand_defaults "$best") --steps $(cand_steps "$best") --denoise '$den' --feat-layers $layers --image-score $score --bank-mode $bank --bank-subsample $banksub --map-norm $norm --global-weight $gw"
pct() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "n/a"; else printf "%.1f", 100 * x }'; }
{
    echo "# MTD defaults chosen on the training split alone"
    echo
    echo "Command (features: $FEAT_BACKBONE; GLAD_WEIGHTS=${GLAD_WEIGHTS:-unset}):"
    echo
    echo "    $CMDLINE"
    echo
    echo "Each candidate: recipes/tune.sh on the MTD training split ($(jq -r '.validation.train_normals' "$d/tune.json") normals):"
    echo "$(jq -r '.validation.held_out' "$d/tune.json") held out ($(jq -r '.validation.holdout_rule' "$d/tune.json")), $(jq -r '.validation.anomalies' "$d/tune.json");"
    if [ "${#NO_RECON[@]}" = 0 ]; then
        echo "model (preset tiny, ATP loss, $STEPS steps unless the candidate says @STEPS, batch $BATCH) trained on the other $(jq -r '.model.trained_on' "$d/tune.json")."
    else
        echo "no model (--no-recon): each image's own features against a memory bank of the other $(( $(jq -r '.validation.train_normals' "$d/tune.json") - $(jq -r '.validation.held_out' "$d/tune.json") )) normals' features (the bank alone)."
    fi
    echo "Criterion: the mean of validation I-AUROC, P-AUROC and AUPRO; ties keep the earlier row/candidate$([ "${FOLDS[1]:-1}" -le 1 ] || echo ";
a later candidate (and in tune.sh's stages 2-4 a later option) replaces the kept one only when it beats it by more than the standard error of the per-fold differences")."
    echo
    echo "| candidate | denoising | layers | image score | val I-AUROC | val P-AUROC | val AUPRO | criterion | wall s | CPU s |"
    echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|"
    for r in "${rows[@]}"; do
        IFS=$'\t' read -r c s l i vi vp vpro cr w cpu <<< "$r"
        echo "| $c | $s | $l | $i | $(pct "$vi") | $(pct "$vp") | $(pct "$vpro") | $(pct "$cr") | $w | $cpu |"
    done
    echo
    [ "${FOLDS[1]:-1}" -le 1 ] || { kept_line "$CAND_TSV" 0; echo; }
    echo "Chosen (the line \`recipes/mtd.sh --show-defaults\` prints when mtd.sh uses these defaults):"
    echo
    echo "$CHOSEN"
    echo
    echo "Wall/CPU seconds are each candidate's whole tune.sh run (encoding; training and every strategy's"
    echo "reconstruction of the validation set unless --no-recon; features, the bank, scoring) on this machine; a rerun"
    echo "that recomputed only some of its files shows that rerun's time, marked \"(partial)\"."
    for c in $CANDS; do
        echo
        echo "## candidate $c: every configuration"
        echo
        sed -n '/^| strategy | layers |/,$p' "$(cand_dir "$c")/tune.md"
    done
} > "$OUT/tuning.md"
cat "$OUT/tuning.md"
