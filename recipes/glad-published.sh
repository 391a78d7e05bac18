#!/bin/bash
# glad-published.sh - GLAD's own test protocol with GLAD's released models (the
# latent Stable Diffusion UNet fine-tuned per class, the SD-v1-4 VAE, DINO
# ViT-B/8): per class, the images at 512, VAE encode, noising at the class's
# denoise_step, 25 DDIM steps (VisA, PCB-Bank: noised at denoise_step - 1, 15
# steps, as GLAD's code does) at GLAD's timesteps with guidance 9, ADS with
# the frozen DINO at the class's threshold and min step, SAFF, VAE decode;
# then GLAD's scoring (DINO ViT-B/8 blocks 3,6,9,12, nearest-neighbour cosine
# distance, v x pixel distance, sigma 6, object mask, image score = mean of the
# top 250 pixels) and the metrics. The per-class settings are GLAD's
# (datasets/weights/glad-published.tsv, copied from hyao1/GLAD main.py:669-735).
#
#   recipes/glad-published.sh --weights DIR --data DATA [--format mvtec|mpdd|visa|pcbbank]
#       [--classes LIST] [--dino FILE] [--out DIR] [--seed S] [--batch N]
#       [--limit N] [--size N] [--dino-layers LIST]
#
#   --weights DIR    the converted models: DIR/<class>/ for every class (made by
#                    datasets/weights/convert.py glad from GLAD's
#                    <class>_4000step_bs32_eps_anomaly2_0/checkpoint-<step>, the step
#                    of the table) and DIR/dino_vitbase8_pretrain.safetensors
#                    (convert.py dino); VisA and PCB-Bank: <class>_8000step_...,
#                    the PCB classes with their fine-tuned VAE (convert.py glad
#                    --vae) and DIR/<class>/dino.safetensors (the class's DINO at
#                    the table's epoch). datasets/weights/fetch.sh glad (glad-mpdd,
#                    glad-visa, glad-pcbbank) prints where the files are
#                    published and the commands, class by class.
#   --data DATA      the dataset in its published layout (DATA/<class>/test/...)
#   --format F       mvtec (default), mpdd, visa or pcbbank: the table's rows and
#                    the layout. visa: VisA as published (DATA/split_csv/1cls.csv,
#                    glad-encode --format visa) or as GLAD reads it (VisA's
#                    prepare_data.py 1cls output: DATA/<class>/test/{good,bad},
#                    DATA/<class>/ground_truth/bad/<stem>.png); pcbbank: PCB-Bank
#                    in either (as published: <class>/Data/... with the
#                    repository's 1cls_clear.csv copied to DATA/split_csv/1cls.csv). VisA and PCB-Bank run GLAD's
#                    settings for them: 15 steps, noised at denoise_step - 1
#                    (glad-denoise --noise-step), scoring at half the image size
#                    (256 at 512) with the class's fine-tuned DINO
#                    DIR/<class>/dino.safetensors (ADS keeps the frozen --dino)
#   --classes LIST   comma-separated (default: every class of the table found in DATA)
#   --dino FILE      the DINO ViT-B/8 for ADS and scoring (VisA, PCB-Bank: ADS only;
#                    default DIR/dino_vitbase8_pretrain.safetensors)
#   --out DIR        results (default results/glad-published): OUT/<class>/{test,recon,
#                    scored}.msgpack, OUT/table.md, OUT/table.json; existing streams
#                    made by the same command from the same files are reused
#   --seed S         noise seed (default 0, GLAD's SEED)
#   --batch N        images through the networks at once (default 2, GLAD's; results
#                    do not depend on it)
#   --limit N        at most N test images per class (a quick look; not the protocol)
#   --size N         image size (default 512, GLAD's; smaller sizes are for tests
#                    with tiny models); scoring at N (MVTec, MPDD) or N/2 (VisA, PCB-Bank)
#   --dino-layers L  the scoring blocks (default 3,6,9,12, GLAD's; tests with a
#                    shallower ViT)
#
# Differences from GLAD's test(), all documented in the README: images are
# resized by glad-encode (bilinear without PIL's antialiasing), the networks run
# in float32 (GLAD: float16), the fusion maximum of v x pixel distance is per
# image (GLAD: per batch of 2; v is 0 on MVTec and MPDD, so it does not matter
# there; on VisA and PCB-Bank v is 1..7 and GLAD's batches hold 32 images, so
# scores differ), the pixel distance is resized to the scoring size after it is
# taken (GLAD: the images are resized first), and the final min-max
# normalisation of the image scores is left out (it changes no metric). Cost on
# a CPU: see README (tens of minutes per image at 512 on 2 cores).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
TABLE=$ROOT/datasets/weights/glad-published.tsv
WEIGHTS="" DATA="" FORMAT=mvtec CLASSES="" DINO="" OUT="$ROOT/results/glad-published" SEED=0 BATCH=2 LIMIT="" SIZE=512 LAYERS=3,6,9,12
usage() { echo "glad-published.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --weights) WEIGHTS=${2:?}; shift 2 ;;
    --data) DATA=${2:?}; shift 2 ;;
    --format) FORMAT=${2:?}; shift 2 ;;
    --classes) CLASSES=${2:?}; shift 2 ;;
    --dino) DINO=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --batch) BATCH=${2:?}; shift 2 ;;
    --limit) LIMIT=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --dino-layers) LAYERS=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
    *) usage "unknown option $1" ;;
    esac
done
[ -n "$WEIGHTS" ] || usage "--weights DIR is required (datasets/weights/fetch.sh glad says how to make it)"
[ -n "$DATA" ] || usage "--data DIR is required"
[ -d "$WEIGHTS" ] || usage "--weights $WEIGHTS: no such folder"
[ -d "$DATA" ] || usage "--data $DATA: no such folder"
# per dataset (main.py:686-740): inference steps, the noising offset, the
# scoring size, glad-encode's layout; a class is a folder CLASSDIR/<class>
case "$FORMAT" in
mvtec) NINF=25 OFFSET=0 ENC=mvtec CLASSDIR=test FETCH=glad DNOTE="" ;;
mpdd) NINF=25 OFFSET=0 ENC=mpdd CLASSDIR=test FETCH=glad-mpdd DNOTE="" ;;
visa|pcbbank)
    NINF=15 OFFSET=1 ENC=mvtec CLASSDIR=test FETCH=glad-$FORMAT DNOTE=" for ADS; scoring with each class's fine-tuned DINO"
    if [ -f "$DATA/split_csv/1cls.csv" ]; then ENC=visa CLASSDIR=Data; fi ;;
*) usage "--format takes mvtec, mpdd, visa or pcbbank" ;; esac
for n in "$SEED" "$BATCH" "$SIZE" ${LIMIT:+"$LIMIT"}; do
    case "$n" in ''|*[!0-9]*) usage "--seed, --batch, --size and --limit take numbers" ;; esac
done
# GLAD's dino_resolution: the image size (512), or 256 on VisA / PCB-Bank at 512
SSIZE=$(( OFFSET ? SIZE / 2 : SIZE )) SCORESIZE=""
[ "$SSIZE" = "$SIZE" ] || SCORESIZE=" --size $SSIZE"
[[ "$LAYERS" =~ ^[0-9]+(,[0-9]+)*$ ]] || usage "--dino-layers takes a comma-separated list of block numbers"
DINO=${DINO:-$WEIGHTS/dino_vitbase8_pretrain.safetensors}
[ -f "$DINO" ] || usage "no DINO weights $DINO (convert.py dino; or --dino FILE)"
# row CLASS: "denoise_step threshold v min_step checkpoint_step dino_epoch" of FORMAT's table
row() { awk -F'\t' -v f="$FORMAT" -v c="$1" '$1 == f && $2 == c { print $3, $4, $5, $6, $7, $8; exit }' "$TABLE"; }
if [ -z "$CLASSES" ]; then
    CLASSES=$(awk -F'\t' -v f="$FORMAT" '$1 == f { print $2 }' "$TABLE" | while read -r c; do
        if [ -d "$DATA/$c/$CLASSDIR" ]; then printf '%s,' "$c"; fi; done)
    CLASSES=${CLASSES%,}
    [ -n "$CLASSES" ] || usage "no class of GLAD's $FORMAT table in $DATA"
fi
for c in ${CLASSES//,/ }; do
    [ -n "$(row "$c")" ] || usage "$c is not in GLAD's $FORMAT table ($(awk -F'\t' -v f="$FORMAT" '$1 == f { printf "%s ", $2 }' "$TABLE"))"
    [ -f "$WEIGHTS/$c/unet.safetensors" ] || usage "no model for $c in $WEIGHTS/$c (convert.py glad; datasets/weights/fetch.sh $FETCH prints the command)"
    [ "$OFFSET" = 0 ] || [ -f "$WEIGHTS/$c/dino.safetensors" ] ||
        usage "no fine-tuned DINO for $c: $WEIGHTS/$c/dino.safetensors (convert.py dino; datasets/weights/fetch.sh $FETCH prints the command)"
done
mkdir -p "$OUT"
start=$(date +%s)
scored=()
echo "| class | denoise_step | ADS threshold | min step | v | UNet checkpoint | noised at | steps | scoring DINO epoch | seconds |" > "$OUT/settings.md"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" >> "$OUT/settings.md"
for c in ${CLASSES//,/ }; do
    read -r D TAU V MIN CKPT EPOCH <<< "$(row "$c")"
    T0=$(( D - OFFSET ))
    # scoring DINO: the frozen one (MVTec, MPDD) or the class's fine-tuned one (epoch EPOCH of the table)
    SDINO=$DINO NOISE=""
    if [ "$OFFSET" != 0 ]; then SDINO=$WEIGHTS/$c/dino.safetensors NOISE=" --noise-step $T0"; else EPOCH=-; fi
    d=$OUT/$c
    mkdir -p "$d"
    t0=$(date +%s)
    echo "glad-published.sh: [$c] denoise_step $D (noised at $T0, $NINF steps), ADS threshold $TAU, min step $MIN, v $V (checkpoint-$CKPT)" >&2
    cached "$d/test.msgpack" "glad-encode --format $ENC $DATA --class $c --split test --size $SIZE --channels 3${LIMIT:+ --limit $LIMIT}"
    # GLAD's reconstruction (utilize.py reconstruction(), pipeline.py, ddim_scheduling.py)
    cached "$d/recon.msgpack" "glad-denoise --model $WEIGHTS/$c/unet.safetensors --compat glad --steps $D$NOISE --inference-steps $NINF --guidance 9 --ads --ads-backbone vit --ads-weights $DINO --ads-norm raw --threshold $TAU --min-step $MIN --saff --seed $SEED --batch $BATCH $d/test.msgpack"
    # GLAD's test(): images and maps at dino_resolution (bilinear, align_corners),
    # ImageNet normalisation, blocks 3,6,9,12
    cached "$d/scored.msgpack" "glad-features --backbone vit --weights $SDINO --layers $LAYERS --size $SSIZE $d/recon.msgpack | glad-score --preset glad --v $V$SCORESIZE"
    echo "| $c | $D | $TAU | $MIN | $V | $CKPT | $T0 | $NINF | $EPOCH | $(( $(date +%s) - t0 )) |" >> "$OUT/settings.md"
    scored+=("$d/scored.msgpack")
done
glad-auroc --format json "${scored[@]}" > "$OUT/table.json"
{
    echo "GLAD as published ($FORMAT, size $SIZE, seed $SEED; DINO $(basename "$DINO")$DNOTE)"
    echo
    glad-auroc --format markdown "${scored[@]}"
    echo
    cat "$OUT/settings.md"
} > "$OUT/table.md"
cat "$OUT/table.md"
echo "glad-published.sh: done in $(( $(date +%s) - start )) s; results in $OUT" >&2
