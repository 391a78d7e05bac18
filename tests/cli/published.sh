#!/bin/bash
# published.sh - recipes/glad-published.sh (GLAD's test protocol with GLAD's
# released models) on a tiny random latent model folder made by convert.py sd
# from the sd-unet / sd-vae fixtures, the fixture DINO ViT and ../shared's
# MVTec bottle excerpt (4 images) at 32 px: the class's row of GLAD's table reaches
# glad-denoise and glad-score, a metric table comes out, a second run reuses
# the streams, usage errors exit 2; datasets/weights/fetch.sh glad prints the
# conversion commands from the same table. VisA: the same images in GLAD's VisA
# layout and in VisA's own (split_csv/1cls.csv) as class candle: GLAD's VisA
# settings (noised at denoise_step - 1, 15 steps, scoring at half the size with
# the class's fine-tuned DINO) reach the programs.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
R=$ROOT/recipes/glad-published.sh
FETCH=$ROOT/datasets/weights/fetch.sh
VIT=$ROOT/tests/fixtures/dino-vit.weights.safetensors
sh "$FETCH" glad > "$T/fetch.out" 2>&1; rc=$?
check "fetch.sh glad: exit 0, downloads nothing" test $rc = 0
check "fetch.sh glad: says where GLAD's models and SD-v1-4 are published" sh -c "grep -q 'huggingface.co/CompVis/stable-diffusion-v1-4' '$T/fetch.out' && grep -q 'sharepoint.com' '$T/fetch.out'"
check "fetch.sh glad: bottle's command converts GLAD's checkpoint-2500" grep -q "convert.py glad .*bottle_4000step_bs32_eps_anomaly2_0/checkpoint-2500 .*-o .*/bottle" "$T/fetch.out"
check "fetch.sh glad: every MVTec class has its command" test "$(grep -c 'convert.py glad ' "$T/fetch.out")" = 15
status 2 "recipe: --weights is required" bash "$R" --data "$T"
F=$SHARED/fixtures
if ! have_shared || [ ! -f "$F/glad-latent.case.safetensors" ] || [ ! -d "$SHARED/datasets/mvtec-bottle-xs/test" ]; then
    skip "published: ../shared fixtures or datasets/mvtec-bottle-xs absent"; done_tests; exit
fi
if ! $PY -c 'import numpy' 2>/dev/null; then skip "published: python3-numpy not installed"; done_tests; exit; fi
sd_folder "$T/sd" "$T/prompt.safetensors"
$PY "$ROOT/datasets/weights/convert.py" sd "$T/sd" -o "$T/w/bottle" --embeddings "$T/prompt.safetensors" 2>/dev/null
# a 4-image excerpt of the excerpt (2 good, 2 broken_large with their masks), in MVTec's layout
X=$(cd "$SHARED/datasets/mvtec-bottle-xs" && pwd)
mkdir -p "$T/mvtec/bottle/test/good" "$T/mvtec/bottle/test/broken_large" "$T/mvtec/bottle/ground_truth/broken_large"
for i in 000 001; do
    ln -s "$X/test/good/$i.png" "$T/mvtec/bottle/test/good/$i.png"
    ln -s "$X/test/broken_large/$i.png" "$T/mvtec/bottle/test/broken_large/$i.png"
    ln -s "$X/ground_truth/broken_large/${i}_mask.png" "$T/mvtec/bottle/ground_truth/broken_large/${i}_mask.png"
done
A=(--weights "$T/w" --data "$T/mvtec" --dino "$VIT" --size 32 --dino-layers 1,2,3,4 --out "$T/out")
bash "$R" "${A[@]}" > "$T/run.out" 2> "$T/run.err"; rc=$?
check "recipe: runs on the tiny model (exit 0)" test $rc = 0
[ $rc = 0 ] || tail -5 "$T/run.err" >&2
check "recipe: the class found in the data is bottle" test -f "$T/out/bottle/scored.msgpack" -a -f "$T/out/table.md"
n=$(glad-info "$T/out/bottle/scored.msgpack" 2>/dev/null | grep -vc '^#')
check "recipe: every test image scored (4 records, amap [1,32,32] and score)" test "$n" = 4 -a "$(glad-info "$T/out/bottle/scored.msgpack" | grep 'amap:<f4\[1,32,32\]' | grep -c 'score=')" = 4
check "recipe: bottle's row of GLAD's table reaches glad-denoise" grep -q 'glad-denoise.*--compat glad --steps 750 --inference-steps 25 --guidance 9 --ads --ads-backbone vit .*--ads-norm raw --threshold 0.32 --min-step 350 --saff --seed 0' <(glad-info -s "$T/out/bottle/recon.msgpack")
check "recipe: GLAD's scoring (preset glad, v 0, the given DINO blocks)" grep -q 'glad-score.*--preset glad --v 0' <(glad-info -s "$T/out/bottle/scored.msgpack")
check "recipe: the ADS decision of every image is recorded" test "$(glad-info --json "$T/out/bottle/recon.msgpack" | grep -c '"ads_step":')" = 4
check "recipe: the table has bottle's metrics and its settings" sh -c "grep -q '^| bottle ' '$T/out/table.md' && grep -q '| bottle | 750 | 0.32 | 350 | 0 | 2500 |' '$T/out/table.md'"
check "recipe: the metrics as JSON" grep -q '"bottle"' "$T/out/table.json"
bash "$R" "${A[@]}" > /dev/null 2> "$T/run2.err"
check "recipe: a second run reuses the streams" test "$(grep -c '^cached:' "$T/run2.err")" = 3
status 2 "recipe: a class outside GLAD's table" bash "$R" "${A[@]}" --classes bagel
check "recipe: ... names the table's classes" grep -q "carpet grid" "$T/.stderr"
mkdir -p "$T/mvtec/cable/test"
status 2 "recipe: a class without a converted model" bash "$R" "${A[@]}" --classes cable
check "recipe: ... says how to make it" grep -q "fetch.sh glad" "$T/.stderr"
# VisA as GLAD reads it (prepare_data.py's 1cls layout: <stem>.png masks) and as published (split_csv)
V=$T/visa; mkdir -p "$V/candle/test/good" "$V/candle/test/bad" "$V/candle/ground_truth/bad" "$T/wv"
C=$T/visacsv; mkdir -p "$C/split_csv" "$C/candle/Data/Images/Normal" "$C/candle/Data/Images/Anomaly" "$C/candle/Data/Masks/Anomaly"
echo "object,split,label,image,mask" > "$C/split_csv/1cls.csv"
for i in 000 001; do
    ln -s "$X/test/good/$i.png" "$V/candle/test/good/$i.png"
    ln -s "$X/test/broken_large/$i.png" "$V/candle/test/bad/$i.png"
    ln -s "$X/ground_truth/broken_large/${i}_mask.png" "$V/candle/ground_truth/bad/$i.png"
    ln -s "$X/test/good/$i.png" "$C/candle/Data/Images/Normal/$i.png"
    ln -s "$X/test/broken_large/$i.png" "$C/candle/Data/Images/Anomaly/$i.png"
    ln -s "$X/ground_truth/broken_large/${i}_mask.png" "$C/candle/Data/Masks/Anomaly/$i.png"
    echo "candle,test,normal,candle/Data/Images/Normal/$i.png," >> "$C/split_csv/1cls.csv"
    echo "candle,test,anomaly,candle/Data/Images/Anomaly/$i.png,candle/Data/Masks/Anomaly/$i.png" >> "$C/split_csv/1cls.csv"
done
ln -s "$T/w/bottle" "$T/wv/candle"
B=(--weights "$T/wv" --dino "$VIT" --size 32 --dino-layers 1,2,3,4 --format visa)
status 2 "recipe visa: a class without its fine-tuned DINO" bash "$R" "${B[@]}" --data "$V" --out "$T/vout"
check "recipe visa: ... names the file and says how to make it" sh -c "grep -q 'candle/dino.safetensors' '$T/.stderr' && grep -q 'fetch.sh glad-visa' '$T/.stderr'"
rm "$T/wv/candle"; mkdir -p "$T/wv/candle"
for f in unet vae prompt; do ln -s "$T/w/bottle/$f.safetensors" "$T/wv/candle/$f.safetensors"; done
cp "$VIT" "$T/wv/candle/dino.safetensors"
bash "$R" "${B[@]}" --data "$V" --out "$T/vout" > /dev/null 2> "$T/vrun.err"; rc=$?
check "recipe visa (GLAD's layout): runs (exit 0)" test $rc = 0
[ $rc = 0 ] || tail -5 "$T/vrun.err" >&2
check "recipe visa: candle's row, noised at 449 with GLAD's 450 timesteps, 15 steps" grep -q 'glad-denoise.*--compat glad --steps 450 --noise-step 449 --inference-steps 15 --guidance 9 .*--threshold 0.45 --min-step 200 --saff' <(glad-info -s "$T/vout/candle/recon.msgpack")
check "recipe visa: scoring at 16 px with the class's DINO, v 7" sh -c "glad-info -s '$T/vout/candle/scored.msgpack' | grep -q 'glad-features.*candle/dino.safetensors.*--size 16 ' && glad-info -s '$T/vout/candle/scored.msgpack' | grep -q 'glad-score.*--preset glad --v 7 --size 16'"
check "recipe visa: every image scored on a 16 x 16 map" test "$(glad-info "$T/vout/candle/scored.msgpack" | grep -c 'amap:<f4\[1,16,16\]')" = 4
check "recipe visa: the settings row (noised at, steps, DINO epoch)" grep -q '| candle | 450 | 0.45 | 200 | 7 | 4000 | 449 | 15 | 1 |' "$T/vout/table.md"
bash "$R" "${B[@]}" --data "$C" --out "$T/cout" > /dev/null 2> "$T/crun.err"; rc=$?
check "recipe visa (split_csv layout): runs with glad-encode --format visa" sh -c "test $rc = 0 && glad-info -s '$T/cout/candle/test.msgpack' | grep -q 'glad-encode.* --format visa '"
check "recipe visa: both layouts, the same scores" cmp -s <(glad-info "$T/vout/candle/scored.msgpack" | grep -o 'score=[^ ]*' | sort) <(glad-info "$T/cout/candle/scored.msgpack" | grep -o 'score=[^ ]*' | sort)
mkdir -p "$T/pcbbank/pcb5/test"
status 2 "recipe pcbbank: pcb5 without a converted model" bash "$R" "${B[@]}" --format pcbbank --data "$T/pcbbank" --out "$T/pout"
check "recipe pcbbank: ... says fetch.sh glad-pcbbank makes it" grep -q "no model for pcb5 .*fetch.sh glad-pcbbank" "$T/.stderr"
sh "$FETCH" glad-visa > "$T/fetchv.out" 2>&1
check "fetch.sh glad-visa: candle's UNet (8000 steps, checkpoint-4000) and its DINO epoch 1" sh -c "grep -q 'convert.py glad .*candle_8000step_bs32_eps_anomaly2_0/checkpoint-4000 ' '$T/fetchv.out' && grep -q 'convert.py dino .*visa_dino/candle_4mlp_256_200_bs16_0.0003_15_no_grad2_lmd0.01/epoch1.pth .*candle/dino.safetensors' '$T/fetchv.out'"
check "fetch.sh glad-visa: the PCB classes with their fine-tuned VAE" test "$(grep -c 'convert.py glad .*--vae ' "$T/fetchv.out")" = 4
status 2 "recipe: a missing DINO file" bash "$R" "${A[@]}" --dino "$T/none.safetensors"
done_tests
