#!/bin/bash
# latent.sh - glad-denoise with a Stable Diffusion latent model (GLAD as
# published): a diffusers-like folder made from the sd-unet / sd-vae fixtures
# and glad-latent's prompt embeddings, converted by convert.py sd, then
# reconstructions through VAE + guided UNet: shape, batch independence, the
# guidance scale, GLAD's timesteps in ADS decisions, the errors. The numbers
# themselves are checked against GLAD's pipeline in tests/test_latent.c.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
F=$SHARED/fixtures
if ! have_shared || [ ! -f "$F/glad-latent.case.safetensors" ]; then skip "latent: ../shared/fixtures/sd-* absent"; done_tests; exit; fi
if ! $PY -c 'import numpy' 2>/dev/null; then skip "latent: python3-numpy not installed"; done_tests; exit; fi
sd_folder "$T/sd" "$T/prompt.safetensors"
$PY "$ROOT/datasets/weights/convert.py" sd "$T/sd" -o "$T/m" --embeddings "$T/prompt.safetensors" 2>/dev/null
check "convert.py sd wrote the latent model folder" test -f "$T/m/unet.safetensors" -a -f "$T/m/vae.safetensors" -a -f "$T/m/prompt.safetensors"
glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 1 --test-good 1 --test-defect 1
glad-encode "$T/demo" --split test --size 16 > "$T/test.msgpack"
n=$(glad-info "$T/test.msgpack" | grep -vc '^#')
G="--compat glad --steps 750 --inference-steps 5"
glad-denoise --model "$T/m" $G --batch 1 "$T/test.msgpack" > "$T/b1.msgpack"
glad-denoise --model "$T/m" $G --batch 2 "$T/test.msgpack" > "$T/b3.msgpack"
check "latent: recon [3,16,16] in image space for every record" test "$(glad-info "$T/b1.msgpack" | grep -c 'recon:<f4\[3,16,16\]')" = "$n"
check "latent: batch 1 == batch 2" cmp -s <(glad-info --json "$T/b1.msgpack" | tail -n +2) <(glad-info --json "$T/b3.msgpack" | tail -n +2)
glad-denoise --model "$T/m/unet.safetensors" $G "$T/test.msgpack" > "$T/u.msgpack"
check "latent: the folder's unet.safetensors names the same model" cmp -s <(glad-info --json "$T/b1.msgpack" | tail -n +2) <(glad-info --json "$T/u.msgpack" | tail -n +2)
glad-denoise --model "$T/m" $G --guidance 9 "$T/test.msgpack" > "$T/g9.msgpack"
check "latent: guidance 9 is the default" cmp -s <(glad-info --json "$T/b1.msgpack" | tail -n +2) <(glad-info --json "$T/g9.msgpack" | tail -n +2)
glad-denoise --model "$T/m" $G --guidance 1 "$T/test.msgpack" > "$T/g1.msgpack"
check "latent: another guidance scale, another reconstruction" bash -c "! cmp -s <(glad-info --json '$T/b1.msgpack' | tail -n +2) <(glad-info --json '$T/g1.msgpack' | tail -n +2)"
glad-denoise --model "$T/m" $G --seed 5 "$T/test.msgpack" > "$T/s5.msgpack"
check "latent: another seed, another reconstruction" bash -c "! cmp -s <(glad-info --json '$T/b1.msgpack' | tail -n +2) <(glad-info --json '$T/s5.msgpack' | tail -n +2)"
# ADS on the decoded estimates with DINO (the fixture ViT), GLAD's timesteps 601, 451, 301, 151, 1
VIT=$ROOT/tests/fixtures/dino-vit.weights.safetensors
A="--ads --ads-backbone vit --ads-weights $VIT --ads-norm raw"
glad-denoise --model "$T/m" $G $A --saff --threshold -1 "$T/test.msgpack" > "$T/ads.msgpack"
check "latent ads: threshold -1 stops at GLAD's first timestep" test "$(glad-info --json "$T/ads.msgpack" | grep -c '"ads_step":601')" = "$n"
glad-denoise --model "$T/m" $G $A --threshold 10 --min-step 400 "$T/test.msgpack" > "$T/ads2.msgpack"
check "latent ads: forced stop at the first timestep below --min-step" test "$(glad-info --json "$T/ads2.msgpack" | grep -c '"ads_step":301')" = "$n"
glad-denoise --model "$T/m" $G --ads --ads-weights "$VIT" --threshold 10 --min-step 400 "$T/test.msgpack" > "$T/ads3.msgpack"
check "latent ads: vit is the default backbone" cmp -s <(glad-info --json "$T/ads2.msgpack" | tail -n +2 | sed 's/"ads_norm[^,]*,//') <(glad-info --json "$T/ads3.msgpack" | tail -n +2 | sed 's/"ads_norm[^,]*,//')
status 2 "latent: --ads needs DINO weights" glad-denoise --model "$T/m" --ads "$T/test.msgpack"
status 2 "latent: no unet backbone" glad-denoise --model "$T/m" --ads --ads-backbone unet --ads-weights "$VIT" "$T/test.msgpack"
status 2 "latent: no mdps" glad-denoise --model "$T/m" --mdps "$T/test.msgpack"
# GLAD's VisA / PCB-Bank bookkeeping: noised at T0 = denoise_step - 1, model calls those of denoise_step
glad-denoise --model "$T/m" $G --noise-step 750 "$T/test.msgpack" > "$T/n750.msgpack"
check "latent: --noise-step equal to --steps is the default" cmp -s <(glad-info --json "$T/b1.msgpack" | tail -n +2) <(glad-info --json "$T/n750.msgpack" | tail -n +2)
glad-denoise --model "$T/m" $G --noise-step 749 "$T/test.msgpack" > "$T/n749.msgpack"
check "latent: --noise-step 749, another reconstruction" bash -c "! cmp -s <(glad-info --json '$T/b1.msgpack' | tail -n +2) <(glad-info --json '$T/n749.msgpack' | tail -n +2)"
glad-denoise --model "$T/m" $G $A --saff --threshold -1 --noise-step 749 "$T/test.msgpack" > "$T/n749a.msgpack"
check "latent: --noise-step keeps GLAD's model-call timesteps (ADS stops at 601)" test "$(glad-info --json "$T/n749a.msgpack" | grep -c '"ads_step":601')" = "$n"
glad-denoise --model "$T/m" $G --noise-step 1000 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "latent: --noise-step beyond the schedule: exit 2 naming T" sh -c "test $rc = 2 && grep -q 'noise-step 1000: the model has T = 1000 diffusion steps (use 0..999)' '$T/err'"
glad-denoise --model "$F/sd-vae.weights.safetensors" --noise-step 10 "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "latent: --noise-step with a pixel-space model is a usage error" sh -c "test $rc = 2 && grep -q 'noise-step works with a latent model' '$T/err'"
# non-square images (glad-encode --size HxW): the latent grid is H/f x W/f, DINO's grid H/8 x W/8
glad-encode "$T/demo" --split test --size 24x16 > "$T/wide.msgpack"
glad-denoise --model "$T/m" $G --batch 1 "$T/wide.msgpack" > "$T/w1.msgpack"
glad-denoise --model "$T/m" $G --batch 2 "$T/wide.msgpack" > "$T/w2.msgpack"
check "latent 24x16: recon [3,24,16] for every record" test "$(glad-info "$T/w1.msgpack" | grep -c 'recon:<f4\[3,24,16\]')" = "$n"
check "latent 24x16: batch 1 == batch 2" cmp -s <(glad-info --json "$T/w1.msgpack" | tail -n +2) <(glad-info --json "$T/w2.msgpack" | tail -n +2)
glad-denoise --model "$T/m" $G $A --saff --threshold -1 "$T/wide.msgpack" > "$T/wads.msgpack"
check "latent 24x16: ADS + SAFF with DINO on the non-square grid" test "$(glad-info --json "$T/wads.msgpack" | grep -c '"ads_step":601')" = "$n"
glad-encode "$T/demo" --split test --size 16x18 > "$T/odd2.msgpack"
glad-denoise --model "$T/m" "$T/odd2.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "latent: a width that is no multiple: exit 1 naming the size" sh -c "test $rc = 1 && grep -q \"'image' is \[3,16,18\].*multiples of 4\" '$T/err'"
cat "$T/wide.msgpack" "$T/test.msgpack" | glad-denoise --model "$T/m" $G > /dev/null 2> "$T/err"; rc=$?
check "latent: a record of another size than the first: exit 1 with HxW" sh -c "test $rc = 1 && grep -q 'takes \[3,24,16\] (glad-encode --size 24x16' '$T/err'"
glad-encode "$T/demo" --split test --size 18 > "$T/odd.msgpack"
glad-denoise --model "$T/m" "$T/odd.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "latent: a size the model cannot take: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"record 'pill/test/.*': 'image' is \[3,18,18\].*multiples of 4\" '$T/err'"
rm "$T/m/prompt.safetensors"
glad-denoise --model "$T/m" "$T/test.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "latent: no prompt embeddings: exit 1 saying how to make them" sh -c "test $rc = 1 && grep -q 'prompt.safetensors.*--embeddings' '$T/err'"
done_tests
