#!/bin/bash
# score.sh - glad-score presets on the scoring fixture's record (image scores
# must equal the official-code values), map shapes, crop and errors.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import msgpack_numpy' 2>/dev/null; then skip "python3-msgpack-numpy missing"; done_tests; exit; fi
$PY - "$ROOT/tests/fixtures/scoring.case.safetensors" "$T/in.msgpack" "$T/expect.txt" <<'PYEOF'
import sys, json, struct, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
meta = h.pop("__metadata__")
t = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(v["shape"]) for k, v in h.items()}
rec = {"id": "fix/test/x/0", "class": "fix", "split": "test", "label": 1, "image": t["image"], "recon": t["recon"],
       "mask": (t["same_sum"] > 0.15).astype(np.uint8)}
for k in ["feat.image.0", "feat.image.1", "feat.recon.0", "feat.recon.1"]:
    rec[k] = t[k]
write(sys.argv[2], {"glad": 1, "history": []}, [rec])
s = json.loads(meta["scores"])
open(sys.argv[3], "w").write("%.9f %.9f %.9f\n" % (s["glad_top250_mean_of_blur6_nn"], s["ddad_max_of_blur4_fused"], s["mdps_softmax_top500_sum_of_blur4_fused"]))
PYEOF
read g d m < "$T/expect.txt"
getscore() { glad-info --json "$1" | tail -1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["score"])'; }
near() { $PY -c "import sys; sys.exit(0 if abs($1 - $2) <= 1e-5 else 1)"; }
glad-score --preset glad "$T/in.msgpack" > "$T/g.msgpack"
check "glad preset: top-250 mean of blurred nn map" near "$(getscore "$T/g.msgpack")" "$g"
glad-score --preset ddad "$T/in.msgpack" > "$T/d.msgpack"
check "ddad preset: max of blurred fused map" near "$(getscore "$T/d.msgpack")" "$d"
glad-score --preset ddad --image-score softmax-topk:500 "$T/in.msgpack" > "$T/m.msgpack"
check "softmax top-500 (MDPS reducer)" near "$(getscore "$T/m.msgpack")" "$m"
check "amap [1,64,64]" sh -c "glad-info '$T/g.msgpack' | grep -q 'amap:<f4\[1,64,64\]'"
check "inputs passed through" sh -c "glad-info '$T/g.msgpack' | grep -q 'feat.recon.1:<f4\[32,8,8\]'"
glad-score --preset ddad --crop 32 --size 48 --keep-parts "$T/in.msgpack" > "$T/c.msgpack"
check "crop and size: map and mask follow" sh -c "glad-info '$T/c.msgpack' | grep -q 'mask:|u1\[1,32,32\].*amap_pixel:<f4\[1,48,48\].*amap:<f4\[1,32,32\]'"
glad-score --feat-dist none "$T/in.msgpack" > "$T/p.msgpack"
check "pixel-only map" sh -c "glad-info '$T/p.msgpack' | grep -q 'amap:<f4\[1,64,64\]'"
check "history records the invocation" sh -c "glad-info '$T/g.msgpack' | grep -q '^# history 1: glad-score 0.1.0 --preset glad'"
# errors
$PY - "$T/bad.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
write(sys.argv[1], {"glad": 1, "history": []}, [{"id": "c/test/good/7", "label": 0, "image": np.zeros((3, 8, 8), np.uint8)}])
PYEOF
glad-score "$T/bad.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "missing recon: exit 1" test $rc = 1
check "message names record and field" grep -q "glad-score: error: record 'c/test/good/7': 'recon' missing" "$T/err"
$PY - "$T/nan.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
r = np.zeros((3, 8, 8), np.float32); r[0, 1, 1] = np.nan
write(sys.argv[1], {"glad": 1, "history": []}, [{"id": "n/0", "label": 0, "image": np.zeros((3, 8, 8), np.uint8), "recon": r}])
PYEOF
status 1 "NaN in recon" glad-score "$T/nan.msgpack"
status 2 "bad preset" glad-score --preset nope "$T/in.msgpack"
status 2 "an empty --layers list" glad-score --layers '' "$T/in.msgpack"
status 2 "an empty name in --layers" glad-score --layers 0,,1 "$T/in.msgpack"
# the preset applies first wherever it stands; the last preset wins
glad-score --sigma 2 --preset ddad "$T/in.msgpack" | glad-info --json - | tail -n +2 > "$T/o1.json"
glad-score --preset ddad --sigma 2 "$T/in.msgpack" | glad-info --json - | tail -n +2 > "$T/o2.json"
check "options override the preset wherever it stands" cmp -s "$T/o1.json" "$T/o2.json"
glad-score -p mdps --preset=ddad "$T/in.msgpack" > "$T/pp.msgpack"
check "the last preset wins" near "$(getscore "$T/pp.msgpack")" "$d"
# finite inputs whose distance overflows float: the map is not finite -> an error
$PY - "$T/big.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
a = np.full((3, 8, 8), 3e38, np.float32)
write(sys.argv[1], {"glad": 1, "history": []}, [{"id": "b/0", "label": 0, "image": a, "recon": -a}])
PYEOF
glad-score --feat-dist none "$T/big.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "non-finite amap: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"record 'b/0': 'amap' contains NaN or infinity\" '$T/err'"
status 2 "bad reducer" glad-score --image-score top "$T/in.msgpack"
# --threshold-file: decision and pred_mask; without it the output is unchanged
S=$(getscore "$T/g.msgpack")
printf '{"glad_thresholds":1,"method":"max-f1","image_threshold":%s,"pixel_threshold":0.09}\n' "$($PY -c "print($S - 1e-6)")" > "$T/thr.json"
glad-score --preset glad --threshold-file "$T/thr.json" "$T/in.msgpack" > "$T/gt.msgpack"; rc=$?
check "--threshold-file: exit 0" test $rc = 0
check "decision 1 (score just above the threshold)" sh -c "glad-info --json '$T/gt.msgpack' | tail -1 | $PY -c 'import json,sys; assert json.load(sys.stdin)[\"decision\"] == 1'"
check "pred_mask u8 [64,64] at the map's resolution" sh -c "glad-info '$T/gt.msgpack' | grep -q 'pred_mask:|u1\[64,64\]'"
check "pred_mask = amap > 0.09" $PY - "$T/gt.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import read
recs = read(sys.argv[1])[1]
r = recs[0]
assert r["pred_mask"].dtype == np.uint8 and set(np.unique(r["pred_mask"])) <= {0, 1}
assert (r["pred_mask"] == (r["amap"][0].astype(np.float64) > 0.09)).all() and r["pred_mask"].any() and not r["pred_mask"].all()
PYEOF
printf '{"glad_thresholds":1,"method":"max-f1","image_threshold":%s}\n' "$S" > "$T/thr2.json"
glad-score --preset glad --threshold-file "$T/thr2.json" "$T/in.msgpack" > "$T/gt2.msgpack"
check "decision 0 at score == threshold (strictly greater flags); no pixel threshold: no pred_mask" sh -c "glad-info --json '$T/gt2.msgpack' | tail -1 | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d[\"decision\"] == 0 and \"pred_mask\" not in d'"
glad-score --preset glad "$T/in.msgpack" > "$T/g2.msgpack"
check "without --threshold-file: byte-identical output" cmp -s "$T/g.msgpack" "$T/g2.msgpack"
printf '{"glad_thresholds":1,"method":"max-f1","image_threshold":"high"}\n' > "$T/bad.json"
glad-score --threshold-file "$T/bad.json" -o "$T/never.msgpack" "$T/in.msgpack" 2> "$T/err"; rc=$?
check "malformed threshold file: exit 1 naming the field, no output" sh -c "test $rc = 1 && grep -q \"bad.json: 'image_threshold' must be a finite number\" '$T/err' && test ! -e '$T/never.msgpack'"
status 1 "missing threshold file" glad-score --threshold-file "$T/nope.json" "$T/in.msgpack"
status 2 "--threshold-file without its argument" glad-score --threshold-file
# --rescore: the score from the stream's amap equals a full run with that image score;
# the map and every other field are left as they were
for r in max topk-mean:10 softmax-topk:500; do
    glad-score --preset glad --image-score "$r" "$T/in.msgpack" > "$T/full.msgpack"
    glad-score --rescore --image-score "$r" "$T/g.msgpack" > "$T/re.msgpack"
    check "--rescore --image-score $r: the full run's score" near "$(getscore "$T/re.msgpack")" "$(getscore "$T/full.msgpack")"
    check "--rescore --image-score $r: the score changed from top-250's" sh -c "test '$(getscore "$T/re.msgpack")' != '$(getscore "$T/g.msgpack")'"
done
check "--rescore: the amap is the input's" $PY - "$T/g.msgpack" "$T/re.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import read
a, b = read(sys.argv[1])[1][0], read(sys.argv[2])[1][0]
assert set(a) == set(b) and np.array_equal(a["amap"], b["amap"]) and np.array_equal(a["feat.image.0"], b["feat.image.0"])
PYEOF
glad-score --rescore --threshold-file "$T/thr.json" "$T/g.msgpack" > "$T/gr.msgpack"
check "--rescore --threshold-file: decision and pred_mask as a full run's" sh -c "glad-info --json '$T/gr.msgpack' | tail -1 > '$T/gr.json'; glad-info --json '$T/gt.msgpack' | tail -1 > '$T/gt.json'; cmp -s '$T/gr.json' '$T/gt.json'"
glad-score --rescore "$T/in.msgpack" > /dev/null 2> "$T/err"; rc=$?
check "--rescore of an unscored record: exit 1 naming the record and amap" sh -c "test $rc = 1 && grep -q \"record 'fix/test/x/0': 'amap' missing\" '$T/err'"
$PY - "$T/g.msgpack" "$T/gnan.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import read, write
h, recs = read(sys.argv[1]); a = recs[0]["amap"].copy(); a[0, 3, 3] = np.nan; recs[0]["amap"] = a; write(sys.argv[2], h, recs)
PYEOF
status 1 "--rescore of a NaN amap" glad-score --rescore "$T/gnan.msgpack"
status 2 "--rescore with --bank" glad-score --rescore --bank "$T/thr.json" "$T/g.msgpack"
status 2 "--rescore with --keep-parts" glad-score --rescore --keep-parts "$T/g.msgpack"
# --map-norm quantile:Q: the map less its own Q-quantile (nearest rank), the score
# the image score of that map; --rescore of a plain run gives the same stream's
# map and score, and normalising again changes nothing
glad-score --preset glad --map-norm quantile:0.1 "$T/in.msgpack" > "$T/n.msgpack"
glad-score --rescore --map-norm quantile:0.1 "$T/g.msgpack" > "$T/nr.msgpack"
glad-score --rescore --map-norm quantile:0.1 "$T/nr.msgpack" > "$T/nrr.msgpack"
check "--map-norm quantile:0.1: map less its 10th percentile, score of that map" $PY - "$T/g.msgpack" "$T/n.msgpack" "$T/nr.msgpack" "$T/nrr.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import read
g, n, nr, nrr = (read(f)[1][0] for f in sys.argv[1:])
a = g["amap"].ravel(); base = np.sort(a)[int(np.floor(0.1 * (a.size - 1)))]
assert base > 0, base
assert np.array_equal(n["amap"], g["amap"] - base)
top = lambda m: np.sort(m.ravel().astype(np.float64))[-250:].mean()
assert abs(n["score"] - top(n["amap"])) < 1e-5 and abs(n["score"] - (g["score"] - base)) < 1e-5
assert np.array_equal(nr["amap"], n["amap"]) and abs(nr["score"] - n["score"]) < 1e-9
assert np.array_equal(nrr["amap"], nr["amap"]) and nrr["score"] == nr["score"]
PYEOF
glad-score --preset glad --map-norm quantile:0.2 --map-norm none "$T/in.msgpack" > "$T/n0.msgpack"
check "--map-norm none (the last given): the plain run's record" sh -c "glad-info --json '$T/n0.msgpack' | tail -1 > '$T/n0.json'; glad-info --json '$T/g.msgpack' | tail -1 | cmp -s - '$T/n0.json'"
status 2 "--map-norm quantile:1.5" glad-score --map-norm quantile:1.5 "$T/in.msgpack"
status 2 "--map-norm quantile: without Q" glad-score --map-norm quantile: "$T/in.msgpack"
status 2 "--map-norm median (not a mode)" glad-score --map-norm median "$T/in.msgpack"
done_tests
