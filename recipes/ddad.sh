#!/bin/bash
# ddad.sh - the DDAD pipeline: DDPM training, conditioned reconstruction
# (w 3, T' 250, skip 25, eta 1, DDAD's timestep spacing), same-position
# feature + pixel distance (the ddad preset); optionally DDAD's domain
# adaptation of a (Wide) ResNet feature backbone first (glad-adapt -m ddad-da).
#
#   recipes/ddad.sh [--data DIR --format F] [--class C] [--out DIR] [--size N] [--steps N] [--batch N] [--seed S]
#                                  [--backbone auto|unet|mobilenetv2]
#                                  [--resnet WEIGHTS] [--adapt-epochs N|published|auto] [--adapt-max N]
#
#   --resnet WEIGHTS     score with this ResNet (safetensors, e.g. wide_resnet101_2 converted
#                        with datasets/weights/convert.py; default $GLAD_RESNET) instead of --backbone
#   --adapt-epochs N     adapt the ResNet for N epochs (glad-adapt, DDAD's DA) and score with
#                        feat{N}; the table then has both rows, without and with domain
#                        adaptation (the ablation). Default 0 = off. "auto" chooses N in
#                        0..--adapt-max (default 4, DDAD's DA_epochs) on synthetic validation,
#                        never the test set: tune.sh's hold-out (15 % of the training normals,
#                        at least 4, half of them given a glad-synth anomaly); the DDPM and the
#                        adaptation then learn from the other normals only, the criterion is
#                        tune.sh's (mean of validation I-AUROC, P-AUROC, AUPRO; ties keep fewer
#                        epochs), the choice is in the table and OUT/da/val.tsv. "published"
#                        takes DDAD's per-class DA_chp (its README; tuned by the authors for
#                        wide_resnet101_2 with ImageNet weights, MVTec and VisA classes only; 0
#                        for other classes).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ADAPT_EPOCHS=0 ADAPT_MAX=4 RESNET=${GLAD_RESNET:-}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --adapt-epochs) ADAPT_EPOCHS=${2:?--adapt-epochs needs N}; shift 2 ;;
    --resnet) RESNET=${2:?--resnet needs a file}; shift 2 ;;
    --adapt-max) ADAPT_MAX=${2:?--adapt-max needs N}; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
recipe_args ${args[@]+"${args[@]}"}
# DDAD README "FE epochs" (DA_chp), MVTec then VisA
published_da() {
    case "$1" in
    carpet|tile|cable|transistor|cashew|chewinggum) echo 0 ;;
    grid) echo 6 ;; leather|pcb1) echo 8 ;; wood) echo 16 ;; bottle|pcb2) echo 5 ;; capsule) echo 8 ;;
    hazelnut|capsules|fryum) echo 3 ;; metal_nut|candle|pcb3|pcb4) echo 1 ;; pill) echo 4 ;; screw) echo 4 ;;
    toothbrush) echo 2 ;; zipper|pipe_fryum) echo 6 ;; macaroni1) echo 7 ;; macaroni2) echo 11 ;;
    *) echo 0 ;;
    esac
}
[ "$ADAPT_EPOCHS" = published ] && ADAPT_EPOCHS=$(published_da "$CLASS")
case "$ADAPT_EPOCHS" in auto) ;; ''|*[!0-9]*) echo "ddad.sh: --adapt-epochs takes a number, 'published' or 'auto'" >&2; exit 2 ;; esac
case "$ADAPT_MAX" in ''|*[!0-9]*|0) echo "ddad.sh: --adapt-max takes a positive number" >&2; exit 2 ;; esac
if [ "$ADAPT_EPOCHS" != 0 ] && [ -z "$RESNET" ]; then
    echo "ddad.sh: --adapt-epochs needs a ResNet (--resnet WEIGHTS or \$GLAD_RESNET)" >&2; exit 2
fi
# the reconstruction of a stream with a DDPM model: DDAD's conditioned denoising
recon_cmd() { echo "glad-denoise --model $1 --steps 250 --skip 25 --eta 1 --cond-w 3 --compat ddad --seed $SEED $2"; }
if [ "$ADAPT_EPOCHS" = auto ]; then
    # tune.sh's hold-out: shard 0/N of the seeded shuffle is the validation set
    # (shard 0/2N kept normal, N/2N given a glad-synth anomaly); the DDPM and the
    # adaptation learn from shards 1..N-1
    ENC="glad-encode --format $FORMAT $DATA --class $CLASS --size $SIZE --channels $CHANNELS"
    cached "$OUT/all-train.msgpack" "$ENC --split train"
    cached "$OUT/test.msgpack" "$ENC --split test"
    n=$(glad-info -s "$OUT/all-train.msgpack" | awk '/^# [0-9]+ records/ { print $2 }')
    [ "${n:-0}" -ge 4 ] || { echo "ddad.sh: $CLASS has ${n:-0} training images: too few to hold some out" >&2; exit 1; }
    N=$(holdout_shards "$n") VSEED=$((SEED + 1000))
    rest=""
    for k in $(seq 1 $((N - 1))); do rest+="$ENC --split train --seed $SEED --shard $k/$N; "; done
    cached "$OUT/train.msgpack" "{ $rest}"
    cached "$OUT/val.msgpack" "$ENC --split train --seed $SEED --shard 0/$((2 * N)); $ENC --split train --seed $SEED --shard $N/$((2 * N)) | glad-synth --as-test --p 1 --seed $VSEED"
    cached "$OUT/ddpm.model" "glad-train --preset tiny --loss ddpm --steps $STEPS --batch $BATCH --lr 1e-3 --seed $SEED -o @OUT $OUT/train.msgpack"
    HOW="validation: $(( (n + N - 1) / N )) held-out training normals (shard 0/$N, seed $SEED), half of them with a glad-synth anomaly (seed $VSEED); DDPM and adaptation on the other $((n - (n + N - 1) / N)); criterion: mean of I-AUROC, P-AUROC, AUPRO"
else
    ddpm_setup
fi
ROW="DDAD (w 3)"
if [ -n "$RESNET" ]; then
    FEAT_BACKBONE=resnet
    cached "$OUT/recon.msgpack" "$(recon_cmd "$OUT/ddpm.model" "$OUT/test.msgpack")"
    # resnet_row NAME WEIGHTS TAG: the test split scored with those ResNet weights
    resnet_row() {
        cached "$OUT/scored-resnet-$3.msgpack" "glad-features --backbone resnet --weights $2 $OUT/recon.msgpack | glad-score --preset ddad"
        metrics_row "$1" "$OUT/scored-resnet-$3.msgpack"
    }
    if [ "$ADAPT_EPOCHS" != 0 ]; then
        # DDAD's DA: batches of 16 split target | input (fewer training images: the largest even batch)
        n=$(glad-info -s "$OUT/train.msgpack" | awk '/^# [0-9]+ records/ { print $2 }')
        b=16; [ -n "$n" ] && [ "$n" -lt 16 ] && b=$(( n / 2 * 2 ))
        E=$ADAPT_EPOCHS; [ "$E" = auto ] && E=$ADAPT_MAX
        cached "$OUT/da/feat$E.safetensors" "glad-adapt -m ddad-da -b $RESNET --model $OUT/ddpm.model --batch $b --epochs $E --seed $SEED -o $OUT/da $OUT/train.msgpack; cp $OUT/da/feat$E.safetensors @OUT"
        if [ "$ADAPT_EPOCHS" = auto ]; then
            cached "$OUT/val-recon.msgpack" "$(recon_cmd "$OUT/ddpm.model" "$OUT/val.msgpack")"
            ADAPT_EPOCHS=$(adapt_choose "$OUT/da" "$ADAPT_MAX" "$OUT/val-recon.msgpack" "--backbone resnet" "--preset ddad")
            CHOICE=$(adapt_md "DDAD DA epochs" "$CLASS" "$OUT/da" "$ADAPT_EPOCHS" "$HOW; candidates 0..$ADAPT_MAX")
        fi
    fi
    {
        md_header "$CLASS: DDAD"
        if [ "$ADAPT_EPOCHS" = 0 ] && [ -z "${CHOICE:-}" ]; then resnet_row "$ROW" "$RESNET" da0
        else resnet_row "$ROW, no domain adaptation" "$RESNET" da0; fi
        if [ "$ADAPT_EPOCHS" != 0 ] || [ -n "${CHOICE:-}" ]; then
            resnet_row "$ROW, domain adaptation $ADAPT_EPOCHS epochs" "$OUT/da/feat$ADAPT_EPOCHS.safetensors" "da$ADAPT_EPOCHS"
        fi
        if [ -n "${CHOICE:-}" ]; then echo; echo "$CHOICE"; fi
    } | tee "$OUT/table.md"
    exit 0
fi
FEAT=$(feat_opts "$OUT/ddpm.model")
SCORED=$OUT/scored.msgpack
cached "$SCORED" "glad-denoise --model $OUT/ddpm.model --steps 250 --skip 25 --eta 1 --cond-w 3 --compat ddad --seed $SEED $OUT/test.msgpack | glad-features $FEAT | glad-score --preset ddad"
{ md_header "$CLASS: DDAD"; metrics_row "$ROW" "$SCORED"; } | tee "$OUT/table.md"
