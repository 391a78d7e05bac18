#!/bin/bash
# published.sh - recipes/glad-published.sh (GLAD's test protocol with GLAD's
# released models) on a tiny random latent model folder made by convert.py sd
# from the sd-unet / sd-vae fixtures, the fixture DINO ViT and ../shared's
# MVTec bottle excerpt (4 images) at 32 px: the class's row of GLAD's table reaches
# glad-denoise and glad-score, a metric table comes out, a second run reuses
# the streams, usage errors exit 2; datasets/weights/fetch.sh glad prints the
# conversion commands from the same table.
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
status 2 "recipe: VisA is refused (not supported yet)" bash "$R" "${A[@]}" --format visa
status 2 "recipe: a missing DINO file" bash "$R" "${A[@]}" --dino "$T/none.safetensors"
done_tests
