#!/bin/sh
# sd-roundtrip.sh - a whole SD-v1-4-sized model through a user's path (make
# bench, not make check: about 4 GB of files, tens of minutes on 2 cores):
# tests/ref/sd_random_model.py writes a random SD-v1-4-shaped diffusers
# folder (UNet 860 M + VAE 84 M parameters, torch random init, the hub's
# configs and names; no diffusers needed), random prompt embeddings and a
# random DINO ViT-B/8 teacher checkpoint; datasets/weights/convert.py sd and
# dino convert them; glad-denoise reconstructs one 512x512 image as GLAD
# does on MVTec (t0 750, 25 steps, guidance 9, ADS with the ViT-B/8 at 512,
# tau 0.32, min step 350, SAFF). Prints the wall time and peak resident
# memory (GNU time) of each stage, checks the reconstruction is a finite
# [3,512,512] image, and the seconds per GLAD reconstruction. Threads: 2
# (OMP_NUM_THREADS), waiting threads sleep (OMP_WAIT_POLICY=passive).
# GLAD_ROUNDTRIP_DIR=DIR keeps the files there (reused when present).
B=${GLAD_BUILD:-build}
PY=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if ! $PY -c 'import torch' 2>/dev/null; then echo "   skipped: PyTorch missing (make bench-deps)"; exit 0; fi
if [ ! -x /usr/bin/time ]; then echo "   skipped: GNU time (/usr/bin/time) missing"; exit 0; fi
if [ -n "${GLAD_ROUNDTRIP_DIR:-}" ]; then D=$GLAD_ROUNDTRIP_DIR; mkdir -p "$D"
else D=$(mktemp -d); trap 'rm -rf "$D"' EXIT; fi
SHARED=${GLAD_SHARED:-../shared}
# stage NAME COMMAND...: run, print "NAME: S s, peak RSS M MB", fail the bench on an error
stage() {
    name=$1; shift
    /usr/bin/time -f '%e %M' -o "$D/$name.time" "$@" > "$D/$name.out" 2> "$D/$name.err" || {
        echo "   $name failed:"; tail -5 "$D/$name.err" | sed 's/^/     /'; exit 1; }
    awk -v n="$name" '{ printf "   %s: %.1f s, peak RSS %.0f MB\n", n, $1, $2 / 1024 }' "$D/$name.time"
}
[ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ] || stage random-model $PY tests/ref/sd_random_model.py "$D"
stage convert-sd $PY datasets/weights/convert.py sd "$D/sd" -o "$D/m" --embeddings "$D/prompt.safetensors"
stage convert-dino $PY datasets/weights/convert.py dino "$D/dino_vitbase8_pretrain.pth" "$D/vitb8.safetensors"
ls -l "$D/m" | awk 'NR > 1 { printf "   %s %.0f MB\n", $9, $5 / 1048576 }'
# one 512x512 test image: MVTec bottle from ../shared, else a synthetic one
if [ -d "$SHARED/datasets/mvtec-bottle-xs/test" ]; then
    mkdir -p "$D/data" && ln -sfn "$(cd "$SHARED/datasets/mvtec-bottle-xs" && pwd)" "$D/data/bottle"
    "$B/glad-encode" "$D/data" --class bottle --split test --size 512 --channels 3 --limit 1 > "$D/test.msgpack"
else
    "$B/glad-synth" --make-dataset "$D/data" --classes pill --size 512 --train 1 --test-good 1 --test-defect 0
    "$B/glad-encode" "$D/data" --split test --channels 3 --limit 1 > "$D/test.msgpack"
fi
G="--compat glad --steps 750 --inference-steps 25 --ads --ads-backbone vit --ads-weights $D/vitb8.safetensors --ads-norm raw --threshold 0.32 --min-step 350 --saff"
stage glad-reconstruction "$B/glad-denoise" --model "$D/m" $G -o "$D/recon.msgpack" "$D/test.msgpack"
"$B/glad-info" "$D/recon.msgpack" > "$D/info.txt"
r=$(tr '\t' '\n' < "$D/info.txt" | grep '^recon:<f4\[3,512,512\]')
case "$r" in
'') echo "   recon missing or of another shape"; cat "$D/info.txt"; exit 1 ;;
*[Nn][Aa][Nn]*|*[Ii][Nn][Ff]*) echo "   recon not finite: $r"; exit 1 ;;
*) echo "   $r (min/mean/max): ok" ;;
esac
"$B/glad-info" --json "$D/recon.msgpack" | grep -o '"ads_step":[0-9-]*' | sed 's/^/   /'
awk '{ printf "   GLAD reconstruction of one 512x512 image, 25 steps + ADS (ViT-B/8) + SAFF, f32: %.0f s, peak RSS %.2f GB\n", $1, $2 / 1048576 }' "$D/glad-reconstruction.time"
