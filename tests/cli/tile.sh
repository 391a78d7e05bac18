#!/bin/bash
# tile.sh - glad-tile: split and merge of tall images give the input back
# bit for bit (also when the image is one pixel smaller than a tile), a merged
# map of a known per-tile function equals the blend computed independently
# in numpy, the full pipeline with a model trained on tiles gives one record
# per image at its native size, and the errors (exit 1 naming the record and
# the field, exit 2 for usage, truncated input).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import msgpack_numpy' 2>/dev/null; then skip "python3-msgpack-numpy missing"; done_tests; exit; fi
export PYTHONPATH="$ROOT/formats/python"
# the records of two streams, byte for byte (the headers differ by their history)
same_records() { $PY - "$1" "$2" <<'PYEOF'
import sys, msgpack
def body(p):
    d = open(p, "rb").read(); u = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0); u.feed(d)
    next(u); return d[u.tell():]
sys.exit(0 if body(sys.argv[1]) == body(sys.argv[2]) else 1)
PYEOF
}
count() { glad-info -s "$1" | sed -n 's/^# \([0-9]*\) records$/\1/p'; }

glad-synth --make-dataset "$T/demo" --classes pill --size 32 --train 8 --test-good 2 --test-defect 1 >/dev/null
glad-encode "$T/demo" --split test --size 300x90 > "$T/tall.msgpack"
n=$(count "$T/tall.msgpack")
check "7 tall test images (2 good, 5 defect types)" test "$n" = 7

# split: 300 rows in 64-pixel tiles at stride 48 -> 6 (0 48 96 144 192 236), 90 columns -> 2 (0 26)
glad-tile --tile 64 --overlap 16 "$T/tall.msgpack" > "$T/tiles.msgpack"
check "12 tiles per 300x90 image" test "$(count "$T/tiles.msgpack")" = 84
check "tile ids PARENT@Y,X and the last tile on the border" sh -c "glad-info '$T/tiles.msgpack' | grep -q '^pill/test/good/000@236,26	.*image:|u1\[3,64,64\]'"
check "history records the split" sh -c "glad-info -s '$T/tiles.msgpack' | grep -q 'glad-tile 0.1.0 --tile 64 --overlap 16'"
glad-info --json "$T/tiles.msgpack" | sed -n 3p > "$T/t1.json"
check "tile fields" $PY -c "
import json; r = json.load(open('$T/t1.json'))
assert r['tile_of'] == 'pill/test/contamination/000' and (r['tile_y'], r['tile_x'], r['tile_index'], r['tile_count']) == (0, 26, 1, 12), r
assert (r['tile_size'], r['tile_overlap'], r['tile_full_h'], r['tile_full_w']) == (64, 16, 300, 90) and r['class'] == 'pill', r"
glad-tile --merge "$T/tiles.msgpack" > "$T/merged.msgpack"
check "merge: one record per image" test "$(count "$T/merged.msgpack")" = 7
check "split + merge = the input, bit for bit (u8 image and mask)" same_records "$T/tall.msgpack" "$T/merged.msgpack"
# f32 images; a tile one pixel larger than the image both ways (padded); columns padded only
glad-encode "$T/demo" --split test --size 63x63 --float > "$T/small.msgpack"
glad-tile --tile 64 "$T/small.msgpack" | glad-tile --merge > "$T/small2.msgpack"
check "63x63 in a 64 tile (reflect-padded): bit for bit (f32)" same_records "$T/small.msgpack" "$T/small2.msgpack"
check "63x63 in a 64 tile: one tile per image" test "$(glad-tile --tile 64 "$T/small.msgpack" | count -)" = 7
glad-tile --tile 96 --overlap 8 "$T/tall.msgpack" | glad-tile --merge > "$T/tall96.msgpack"
check "300x90 in 96 tiles (columns padded): bit for bit" same_records "$T/tall.msgpack" "$T/tall96.msgpack"
glad-encode "$T/demo" --split test --size 61x47 --channels 1 | glad-synth --seed 3 > "$T/grey.msgpack"
glad-tile --tile 16 --overlap 15 "$T/grey.msgpack" | glad-tile --merge > "$T/grey2.msgpack"
check "grey 61x47 at stride 1, with anomalous and synth_mask: bit for bit" same_records "$T/grey.msgpack" "$T/grey2.msgpack"

# a known per-tile function: amap = tile_index + 1 (f32), recon = the tile's own image; numpy computes the blend
$PY - "$T/tiles.msgpack" "$T/known.msgpack" <<'PYEOF'
import sys, numpy as np
from gladstream import read, write
h, recs = read(sys.argv[1])
for r in recs:
    r["amap"] = np.full((1, 64, 64), r["tile_index"] + 1, np.float32)
    r["recon"] = r["image"].astype(np.float32) / 127.5 - 1
    r["ads_step"] = 100 + r["tile_index"]
write(sys.argv[2], h, recs)
PYEOF
glad-tile --merge "$T/known.msgpack" > "$T/known-m.msgpack"
glad-tile --merge --image-score topk-mean:100 "$T/known.msgpack" > "$T/known-t.msgpack"
check "blend of a known per-tile map = numpy's (ramp weights), scores by the reducer" $PY - "$T/known-m.msgpack" "$T/known-t.msgpack" "$T/tall.msgpack" <<'PYEOF'
import sys, numpy as np
from gladstream import read
_, m = read(sys.argv[1]); _, t = read(sys.argv[2]); _, orig = read(sys.argv[3])
N, P, H, W = 64, 16, 300, 90
ys, xs = [0, 48, 96, 144, 192, 236], [0, 26]
r = np.minimum(1, np.minimum((np.arange(N) + .5) / P, (N - np.arange(N) - .5) / P))
num = np.zeros((H, W)); den = np.zeros((H, W))
for k, (y, x) in enumerate((y, x) for y in ys for x in xs):
    w = np.outer(r, r); num[y:y+N, x:x+N] += w * (k + 1); den[y:y+N, x:x+N] += w
want = (num / den).astype(np.float32)
for a, b, o in zip(m, t, orig):
    assert a["amap"].shape == (1, H, W) and a["amap"].dtype == np.float32
    assert np.abs(a["amap"][0] - want).max() < 1e-6, np.abs(a["amap"][0] - want).max()
    assert a["score"] == 12.0, a["score"]
    top = np.sort(want.ravel())[-100:].mean()
    assert abs(b["score"] - top) < 1e-5, (b["score"], top)
    # tiles that agree blend to the value itself: recon is the image in [-1,1]
    assert np.array_equal(a["recon"], o["image"].astype(np.float32) / 127.5 - 1)
    assert "ads_step" not in a and "tile_of" not in a and a["id"] == o["id"] and a["class"] == "pill"
PYEOF

# the full pipeline on tall images: a tiny model trained on the tiles of the training split
glad-encode "$T/demo" --split train --size 96x32 | glad-tile --tile 32 | glad-synth --seed 1 \
    | glad-train --preset tiny --loss atp --steps 4 --batch 4 -o "$T/m.model" 2>/dev/null
glad-encode "$T/demo" --split test --size 96x32 | glad-tile --tile 32 --overlap 8 \
    | glad-denoise --model "$T/m.model" --steps 100 --skip 50 | glad-features --model "$T/m.model" \
    | glad-score --preset glad | glad-tile --merge > "$T/scored.msgpack"
check "pipeline: one record per image" test "$(count "$T/scored.msgpack")" = 7
check "pipeline: amap, recon and mask at the native 96x32, features dropped" sh -c \
    "glad-info '$T/scored.msgpack' | grep -c 'mask:|u1\[1,96,32\].*recon:<f4\[3,96,32\].*amap:<f4\[1,96,32\]' | grep -qx 7 && ! glad-info '$T/scored.msgpack' | grep -q 'feat\.'"
glad-auroc --format csv "$T/scored.msgpack" > "$T/table.csv"
check "pipeline: glad-auroc reads the merged images" test "$(grep -c '^pill,' "$T/table.csv")" = 1

# errors: usage (2)
status 0 "--help" glad-tile --help
status 0 "--version" glad-tile --version
status 2 "neither --tile nor --merge" glad-tile "$T/tall.msgpack"
status 2 "--overlap not below --tile" glad-tile --tile 8 --overlap 8 "$T/tall.msgpack"
status 2 "--tile 0" glad-tile --tile 0 "$T/tall.msgpack"
status 2 "--merge with --tile" glad-tile --merge --tile 8 "$T/tiles.msgpack"
status 2 "--image-score without --merge" glad-tile --tile 8 --image-score max "$T/tall.msgpack"
status 2 "bad --image-score" glad-tile --merge --image-score top "$T/tiles.msgpack"
status 2 "two inputs" glad-tile --merge "$T/tiles.msgpack" "$T/tiles.msgpack"
# data errors (1), naming the record and the field; no end marker then
edit() { $PY - "$T/tiles.msgpack" "$T/bad.msgpack" "$1" <<'PYEOF'
import sys
from gladstream import read, write
h, r = read(sys.argv[1]); exec(sys.argv[3]); write(sys.argv[2], h, r)
PYEOF
}
merge_err() {  # description, python edit, expected message
    edit "$2"; glad-tile --merge "$T/bad.msgpack" > "$T/out.msgpack" 2> "$T/err"; local rc=$?
    if [ $rc = 1 ] && grep -qF "$3" "$T/err" && ! glad-info -q "$T/out.msgpack" 2>/dev/null; then ok; else fail "$1 (exit $rc): $(cat "$T/err")"; fi
}
merge_err "a missing tile" "del r[3]" "glad-tile: error: record 'pill/test/contamination/000@96,0': 'tile_index' is 4 where 3 was expected (tiles missing or out of order)"
merge_err "a duplicated tile" "r.insert(3, r[2])" "record 'pill/test/contamination/000@48,0': 'tile_index' is 2 where 3 was expected (a duplicated tile)"
merge_err "tiles out of order" "r[2], r[3] = r[3], r[2]" "'tile_index' is 3 where 2 was expected"
merge_err "tile 0 missing" "del r[0]" "record 'pill/test/contamination/000@0,26': 'tile_index' is 1: tile 0 of 'pill/test/contamination/000' is missing"
merge_err "another image before this one is complete" "del r[11]" "record 'pill/test/good/000@0,0': 'tile_of' is 'pill/test/good/000' but image 'pill/test/contamination/000' has only 11 of its 12 tiles"
merge_err "the last image short" "del r[-1]" "image 'pill/test/stain/000' ends after 11 of its 12 tiles"
merge_err "a mismatched full size" "r[1]['tile_full_h'] = 301" "'tile_full_h' is 301, tile 0's is 300"
merge_err "a tile of another size" "import numpy as np; r[1]['image'] = np.zeros((3, 32, 32), np.uint8)" "record 'pill/test/contamination/000@0,26': 'image' is [3,32,32], not the shape of tile 0's"
merge_err "a tile without its mask" "del r[1]['mask']" "'mask' missing or not a tensor (tile 0 has it)"
merge_err "not a tile" "del r[0]['tile_of']" "record 'pill/test/contamination/000@0,0': 'tile_of' missing or not a string (not a glad-tile tile)"
glad-tile --merge "$T/tall.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "merging untiled records: exit 1" sh -c "test $rc = 1 && grep -q \"record 'pill/test/contamination/000': 'tile_of' missing\" '$T/err'"
# glad-score --crop makes the map (and the mask following it) smaller than the tile: refused at merge
glad-encode "$T/demo" --split test --size 96x32 | glad-tile --tile 32 | glad-denoise --model "$T/m.model" --steps 100 --skip 50 \
    | glad-score --feat-dist none --crop 24 > "$T/crop.msgpack"
glad-tile --merge "$T/crop.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "merge of a cropped map: exit 1 naming the field and the cause" sh -c "test $rc = 1 && grep -qF \"record 'pill/test/contamination/000@0,0': 'mask' is [1,24,24], not the tile size [...,32,32] (score tiles without --crop or --size)\" '$T/err'"
glad-tile --tile 16 "$T/tiles.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "splitting tiles again: exit 1" sh -c "test $rc = 1 && grep -qF \"record 'pill/test/contamination/000@0,0': 'tile_of' present: already a tile (merge before splitting again)\" '$T/err'"
glad-tile --tile 64 --overlap 16 --zstd "$T/tall.msgpack" | glad-tile --merge -o "$T/z.msgpack"
check "compressed tiles merge the same" same_records "$T/tall.msgpack" "$T/z.msgpack"
# features are computed on tiles, not before the split
glad-encode "$T/demo" --split test --size 96x32 | glad-features --model "$T/m.model" --input image | glad-tile --tile 32 > /dev/null 2> "$T/err"; rc=$?
check "split of records with features: exit 1 naming the tensor" sh -c "test $rc = 1 && grep -qF \"record 'pill/test/contamination/000': 'feat.image.1' is [64,16,16], not image-sized [...,96,32]\" '$T/err'"
# truncated input: exit 1, the output (a file) not created
head -c 20000 "$T/tiles.msgpack" > "$T/cut.msgpack"
glad-tile --merge -o "$T/cut-out.msgpack" "$T/cut.msgpack" 2> "$T/err"; rc=$?
check "truncated input: exit 1, no output" sh -c "test $rc = 1 && test ! -e '$T/cut-out.msgpack' && grep -q 'truncated' '$T/err'"
head -c 20000 "$T/tall.msgpack" | glad-tile --tile 64 > "$T/cut-out2.msgpack" 2>/dev/null; rc=$?
check "truncated input to split: exit 1, no end marker on stdout" sh -c "test $rc = 1 && ! glad-info -q '$T/cut-out2.msgpack' 2>/dev/null"
done_tests
