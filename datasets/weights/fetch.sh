#!/bin/sh
# fetch.sh - download pretrained weights for glad's feature backbones (for users
# with internet; nothing in glad downloads by itself) and check their sha256.
#
#   datasets/weights/fetch.sh [--dir DIR] [NAME...]
#
# NAMEs (default: mobilenet): mobilenet (both MobileNetV2 .tflite files, used as
# they are), dino-vitb8, dino-vits8 (DINO ViT; convert with convert.py dino),
# wrn101, wrn50 (torchvision Wide ResNets; convert with convert.py resnet).
# glad, glad-mpdd, glad-visa, glad-pcbbank: print where GLAD's released models
# (per-class SD UNets; for VisA and PCB-Bank also the per-class fine-tuned DINOs
# and the PCB classes' fine-tuned VAEs) and Stable Diffusion v1-4 are published
# and the convert.py commands that make recipes/glad-published.sh's --weights
# folder (the dataset's classes, with each class's checkpoint step and DINO
# epoch from glad-published.tsv); nothing is downloaded (the files sit behind
# a licence click and a OneDrive share).
# Files go to DIR (default: this script's folder); the recipes look for
# MobileNetV2 there and in $GLAD_WEIGHTS. A file already present with the right
# checksum is not downloaded again; a wrong checksum deletes the file and exits 1.
#
# Checksums: full sha256 for the MobileNetV2 files; torchvision names its files
# with the first 8 hex digits of their sha256, which is what torchvision itself
# checks; Meta publishes no checksum for the DINO checkpoints, so for those the
# sha256 is printed (pin it with GLAD_SHA256_<NAME>, e.g. GLAD_SHA256_DINO_VITB8).
set -eu
DIR=$(cd "$(dirname "$0")" && pwd)
while [ $# -gt 0 ]; do
    case "$1" in
    --dir) DIR=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fetch.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || set -- mobilenet
mkdir -p "$DIR"

get() {   # get URL FILE SHA256|prefix:HEX|none
    url=$1 file=$DIR/$2 want=$3
    if [ ! -f "$file" ]; then
        echo "fetch.sh: downloading $2" >&2
        if command -v curl >/dev/null 2>&1; then curl -fL --retry 3 -o "$file.part" "$url"
        else wget -O "$file.part" "$url"; fi
        mv "$file.part" "$file"
    fi
    got=$(sha256sum "$file" | cut -d' ' -f1)
    case "$want" in
    none) echo "fetch.sh: $2: sha256 $got (no published checksum to compare with)" >&2; return 0 ;;
    prefix:*) ok=$(case "$got" in "${want#prefix:}"*) echo 1 ;; *) echo 0 ;; esac) ;;
    *) ok=$([ "$got" = "$want" ] && echo 1 || echo 0) ;;
    esac
    if [ "$ok" != 1 ]; then
        echo "fetch.sh: $2: sha256 $got does not match $want; file removed" >&2
        rm -f "$file"
        exit 1
    fi
    echo "fetch.sh: $2: ok" >&2
}

# glad_where DATASET: the instructions for GLAD's models (stdout)
glad_where() {
    W=$DIR/glad
    case "$1" in visa|pcbbank) W=$DIR/glad-$1 ;; esac
    cat <<EOT
GLAD's models are not downloaded by fetch.sh. Fetch them by hand:
  Stable Diffusion v1-4, the diffusers folder (unet/ vae/ scheduler/ text_encoder/ tokenizer/):
    https://huggingface.co/CompVis/stable-diffusion-v1-4 (accept the licence on the page, then
    git lfs install; git clone https://huggingface.co/CompVis/stable-diffusion-v1-4)
  GLAD's per-class UNets, model/<class>_<steps>_bs32_eps_anomaly2_0/checkpoint-<step>/pytorch_model.bin
  (and the fine-tuned VAEs and DINOs, and a copy of SD-v1-4), "Models Trained by Us" in hyao1/GLAD's README:
    https://stuhiteducn-my.sharepoint.com/:f:/g/personal/23b903042_stu_hit_edu_cn/Etg1bdDSnOZBt7AydlkCzMUBYKxgmM_9tB-g5M70PJhAVQ
  DINO ViT-B/8 (Meta): $0 --dir $DIR dino-vitb8
Then convert them (python3 with torch and numpy; the prompt embeddings need transformers,
or run 'embed' elsewhere and copy the file), with SD14 the SD-v1-4 folder and GLAD the folder
holding GLAD's model/ directory:
  python3 datasets/weights/convert.py embed SD14 -o $W/prompt.safetensors
  python3 datasets/weights/convert.py dino $DIR/dino_vitbase8_pretrain.pth $W/dino_vitbase8_pretrain.safetensors
EOT
    case "$1" in visa|pcbbank) cat <<EOT
  (VisA and PCB-Bank: GLAD's UNets are model/<class>_8000step_bs32_eps_anomaly2_0; each class also
  needs its fine-tuned DINO, model/$1_dino/<class>_4mlp_256_200_bs16_0.0003_15_no_grad2_lmd<0.01, or 0.0
  for cashew and macaroni2>/epoch<k>.pth (main.py:783-792), converted into <class>/dino.safetensors;
  the PCB classes use a fine-tuned VAE (main.py:499-521 loads DiffAD checkpoints kl_<class>), here
  GLAD_VAE/kl_<class>.ckpt: put the share's files under those names or change the paths)
EOT
    esac
    awk -F'\t' -v f="$1" -v w="$W" '$1 == f {
        ft = f == "visa" || f == "pcbbank"
        vae = ft && $2 ~ /^pcb[1-7]$/ ? sprintf(" --vae GLAD_VAE/kl_%s.ckpt", $2) : ""
        printf "  python3 datasets/weights/convert.py glad GLAD/model/%s_%s_bs32_eps_anomaly2_0/checkpoint-%s --base SD14 -o %s/%s --embeddings %s/prompt.safetensors%s\n", $2, ft ? "8000step" : "4000step", $7, w, $2, w, vae
        if (ft) printf "  python3 datasets/weights/convert.py dino GLAD/model/%s_dino/%s_4mlp_256_200_bs16_0.0003_15_no_grad2_lmd%s/epoch%s.pth %s/%s/dino.safetensors\n", f, $2, ($2 == "cashew" || $2 == "macaroni2") ? "0.0" : "0.01", $8, w, $2 }' \
        "$(dirname "$0")/glad-published.tsv"
    echo "and run: recipes/glad-published.sh --weights $W --data $(echo "$1" | tr a-z A-Z)_FOLDER$([ "$1" = mvtec ] || echo " --format $1")"
}

CORAL=https://github.com/google-coral/test_data/raw/master
for name in "$@"; do
    case "$name" in
    mobilenet)
        get "$CORAL/tf2_mobilenet_v2_1.0_224_ptq.tflite" tf2_mobilenet_v2_1.0_224_ptq.tflite \
            5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c
        get "$CORAL/mobilenet_v2_1.0_224_quant.tflite" mobilenet_v2_1.0_224_quant.tflite \
            7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776 ;;
    dino-vitb8)
        get https://dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth \
            dino_vitbase8_pretrain.pth "${GLAD_SHA256_DINO_VITB8:-none}" ;;
    dino-vits8)
        get https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth \
            dino_deitsmall8_pretrain.pth "${GLAD_SHA256_DINO_VITS8:-none}" ;;
    wrn101)
        get https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth wide_resnet101_2-32ee1156.pth prefix:32ee1156 ;;
    wrn50)
        get https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth wide_resnet50_2-95faca4d.pth prefix:95faca4d ;;
    glad) glad_where mvtec ;;
    glad-mpdd) glad_where mpdd ;;
    glad-visa) glad_where visa ;;
    glad-pcbbank) glad_where pcbbank ;;
    *) echo "fetch.sh: unknown name '$name' (mobilenet dino-vitb8 dino-vits8 wrn101 wrn50 glad glad-mpdd glad-visa glad-pcbbank)" >&2; exit 2 ;;
    esac
done
case " $* " in *" dino-"*|*" wrn"*)
    echo "fetch.sh: convert the .pth files: datasets/weights/convert.py dino|resnet IN.pth OUT.safetensors" >&2 ;;
esac
