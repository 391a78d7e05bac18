#!/bin/sh
# auroc.sh - glad-auroc end to end: table/markdown/csv/json output against the
# Python reference (scikit-learn + the official PRO loop) when available,
# shards merged, per-defect rows, curves, and bad input (exit 1 naming the
# record). Streams are written with python3 + msgpack_numpy.
. "$(dirname "$0")/lib.sh"
PY=${GLAD_PYTHON:-/usr/bin/python3}
REF="$ROOT/tests/ref/metrics_ref.py"

status 0 "--help" glad-auroc --help
status 0 "--version" glad-auroc --version
status 2 "bad --by" glad-auroc --by colour /dev/null
status 2 "bad --format" glad-auroc --format xml /dev/null
status 1 "missing file" glad-auroc "$T/nope.msgpack"

if ! "$PY" -c 'import msgpack, msgpack_numpy, numpy' 2>/dev/null; then
    skip "python3 with msgpack_numpy missing: stream-based checks skipped"
    done_tests; exit $?
fi

# --- a small scored stream: 2 classes, blobs, 48x40 maps
"$PY" "$REF" make "$T/s.msgpack" --n 14 --size 48 --classes 2 --seed 3 || fail "make stream"

glad-auroc "$T/s.msgpack" >"$T/table.txt" 2>"$T/err.txt"; check "table exit 0" [ $? -eq 0 ]
check "table header" grep -q '^class  *n  *anom  *I-AUROC  *I-AP  *I-F1max  *P-AUROC  *P-AP  *P-F1max  *AUPRO  *PRO-compat' "$T/table.txt"
check "table rows" grep -q '^c0 ' "$T/table.txt"
check "table mean row" grep -q '^mean ' "$T/table.txt"
check "table one-decimal percent" grep -Eq '^c1 .* [0-9]+\.[0-9] *$' "$T/table.txt"
check "history under the table" grep -q 'metrics_ref.py make' "$T/table.txt"
glad-auroc -f markdown <"$T/s.msgpack" >"$T/md.txt"; check "markdown from stdin" grep -q '^| \*\*mean\*\* |' "$T/md.txt"
glad-auroc -f csv "$T/s.msgpack" >"$T/one.csv"
check "csv header" grep -q '^class,n,n_anomalous,i_auroc,i_ap,i_f1max,p_auroc,p_ap,p_f1max,aupro,pro_compat$' "$T/one.csv"
check "csv rows" [ "$(wc -l <"$T/one.csv")" -eq 4 ]
glad-auroc -f json "$T/s.msgpack" >"$T/c.json"
check "json parses" "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["by"]=="class" and len(d["rows"])==2 and d["history"][0]["tool"]=="metrics_ref.py"' "$T/c.json"

# --- parity with scikit-learn / official PRO on the same stream
if "$PY" -c 'import sklearn, skimage' 2>/dev/null; then
    "$PY" "$REF" eval "$T/s.msgpack" >"$T/ref.json"
    check "parity with the Python reference (1e-9; PRO 1e-6)" "$PY" - "$T/c.json" "$T/ref.json" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
rb = {r["name"]: r for r in b["rows"]}
bad = 0
for r in a["rows"]:
    for k in ["i_auroc", "i_ap", "i_f1max", "p_auroc", "p_ap", "p_f1max", "aupro", "pro_compat"]:
        x, y = r[k], rb[r["name"]][k]
        tol = 1e-6 if "pro" in k else 1e-9
        if (x is None) != (y is None) or (x is not None and abs(x - y) > tol):
            print(r["name"], k, x, y, file=sys.stderr); bad += 1
sys.exit(bad != 0)
PYEOF
else
    skip "scikit-learn/scikit-image missing: parity check skipped"
fi

# --- shards: the same records split over two files give the same table
"$PY" - "$T/s.msgpack" "$T/shard0.msgpack" "$T/shard1.msgpack" <<'PYEOF'
import sys, msgpack, msgpack_numpy
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), object_hook=msgpack_numpy.decode, raw=False))
hdr, recs = objs[0], objs[1:]
for k, out in enumerate(sys.argv[2:]):
    with open(out, "wb") as f:
        f.write(msgpack.packb(hdr, default=msgpack_numpy.encode))
        for r in recs[k::2]:
            f.write(msgpack.packb(r, default=msgpack_numpy.encode))
PYEOF
glad-auroc -f csv "$T/shard1.msgpack" "$T/shard0.msgpack" >"$T/two.csv"
check "shards merged = one stream" cmp -s "$T/one.csv" "$T/two.csv"
cat "$T/shard0.msgpack" "$T/shard1.msgpack" >"$T/cat.msgpack"
glad-auroc -f csv "$T/cat.msgpack" >"$T/cat.csv"
check "concatenated shards = one stream" cmp -s "$T/one.csv" "$T/cat.csv"
OMP_NUM_THREADS=1 glad-auroc -f csv "$T/s.msgpack" >"$T/t1.csv"
OMP_NUM_THREADS=3 glad-auroc -f csv "$T/s.msgpack" >"$T/t3.csv"
check "same numbers for 1 and 3 threads" cmp -s "$T/t1.csv" "$T/t3.csv"
status 1 "the same file twice (duplicate ids)" glad-auroc "$T/s.msgpack" "$T/s.msgpack"

# --- by defect / none, curves, pixel-size
glad-auroc --by defect -f csv "$T/s.msgpack" >"$T/def.csv"
check "--by defect rows" grep -q '^c0/blob,' "$T/def.csv"
glad-auroc --by none -f csv "$T/s.msgpack" >"$T/none.csv"
check "--by none one row" [ "$(wc -l <"$T/none.csv")" -eq 2 ]
glad-auroc --curves "$T/curves" "$T/s.msgpack" >/dev/null
for f in c0.roc.csv c0.pr.csv c0.pro.csv c1.roc.png c1.pr.png c1.pro.png; do
    check "curve $f" [ -s "$T/curves/$f" ]
done
check "no temporary curve files left" sh -c "! ls -A '$T/curves' | grep -q tmp"
check "curve PNG is a PNG" "$PY" -c 'import sys; assert open(sys.argv[1],"rb").read(8)==b"\x89PNG\r\n\x1a\n"' "$T/curves/c0.roc.png"
check "ROC CSV ends at (1,1)" sh -c "grep '^image,' '$T/curves/c0.roc.csv' | tail -n 1 | grep -q '^image,1,1$'"
check "--pixel-size" sh -c "glad-auroc --pixel-size 24 -f csv '$T/s.msgpack' | grep -q '^c0,'"

# --- calibrated decisions (#20): --calibrate on a validation stream, --threshold-file on a test stream
CREF="$ROOT/tests/ref/calib_ref.py"
"$PY" "$REF" make "$T/val.msgpack" --n 40 --size 24 --classes 2 --seed 11 || fail "make validation stream"
glad-auroc --calibrate "$T/thr.json" "$T/val.msgpack" >"$T/val.txt" 2>"$T/val.err"; rc=$?
check "--calibrate: exit 0" [ $rc -eq 0 ]
check "--calibrate: the validation table still printed" grep -q '^mean ' "$T/val.txt"
check "threshold file: fields and provenance" "$PY" - "$T/thr.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
assert t["glad_thresholds"] == 1 and t["method"] == "target-fpr" and t["target_fpr"] == 0.01
assert isinstance(t["image_threshold"], float) and isinstance(t["pixel_threshold"], float)
c = t["counts"]; v = t["validation"]
assert c["normal"] + c["anomalous"] == 40 and c["pixels"] == 40 * 24 * 24
assert v["image"]["fp"] + v["image"]["tn"] == c["normal"] and v["image"]["fpr"] <= 0.01
assert v["pixel"]["fpr"] <= 0.01 and v["pixel"]["tp"] + v["pixel"]["fn"] > 0
assert t["history"][0]["tool"] == "metrics_ref.py" and "make" in t["history"][0]["args"]
PYEOF
glad-auroc --calibrate "$T/thr20.json" --target-fpr 0.2 "$T/val.msgpack" >/dev/null 2>&1
check "--target-fpr 0.2 recorded" "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); assert t["target_fpr"]==0.2 and 0 < t["validation"]["image"]["fpr"] <= 0.2' "$T/thr20.json"
check "a lower target gives a higher threshold" "$PY" -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); assert a["image_threshold"] >= b["image_threshold"] and a["pixel_threshold"] > b["pixel_threshold"]' "$T/thr.json" "$T/thr20.json"
glad-auroc --calibrate "$T/f1.json" --max-f1 "$T/val.msgpack" >/dev/null 2>&1
glad-auroc --by none -f json "$T/val.msgpack" >"$T/valnone.json" 2>/dev/null
check "--max-f1: validation F1 at the threshold = I-F1max and P-F1max of the stream" "$PY" - "$T/f1.json" "$T/valnone.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))["rows"][0]
assert t["method"] == "max-f1" and t["target_fpr"] is None
assert abs(t["validation"]["image"]["f1"] - r["i_f1max"]) < 1e-12, (t["validation"]["image"]["f1"], r["i_f1max"])
assert abs(t["validation"]["pixel"]["f1"] - r["p_f1max"]) < 1e-12, (t["validation"]["pixel"]["f1"], r["p_f1max"])
PYEOF

glad-auroc -t "$T/thr.json" "$T/s.msgpack" >"$T/dt.txt" 2>/dev/null; rc=$?
check "--threshold-file: exit 0" [ $rc -eq 0 ]
check "table: decision columns" grep -q 'PRO-compat  *I-Prec  *I-Rec  *I-F1  *I-Acc  *P-Prec  *P-Rec  *P-F1  *P-Acc$' "$T/dt.txt"
check "table: mean row has them" grep -Eq '^mean .* [0-9]+\.[0-9] *$' "$T/dt.txt"
check "table: the thresholds named" grep -q '^decisions: image score > .*, pixel amap > .* (calibrated at target FPR 0.01)$' "$T/dt.txt"
glad-auroc -t "$T/thr.json" -f markdown "$T/s.msgpack" 2>/dev/null >"$T/dt.md"
check "markdown: decision columns" grep -q '| PRO-compat | I-Prec | I-Rec | I-F1 | I-Acc | P-Prec | P-Rec | P-F1 | P-Acc |$' "$T/dt.md"
check "markdown: aligned separator" sh -c "grep -q '^|:--|--:|--:|\(--:|\)\{16\}$' '$T/dt.md'"
glad-auroc -t "$T/thr.json" -f csv "$T/s.msgpack" 2>/dev/null >"$T/dt.csv"
check "csv: decision columns" grep -q ',pro_compat,i_precision,i_recall,i_f1,i_accuracy,p_precision,p_recall,p_f1,p_accuracy$' "$T/dt.csv"
check "csv: mean row" grep -q '^mean,,' "$T/dt.csv"
glad-auroc -t "$T/thr.json" -f json "$T/s.msgpack" 2>/dev/null >"$T/dt.json"
check "json: thresholds and counts" "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); t=json.load(open(sys.argv[2])); assert d["decisions"]=="threshold-file" and d["image_threshold"]==t["image_threshold"] and d["pixel_threshold"]==t["pixel_threshold"]; r=d["rows"][0]; assert r["tp"]+r["fp"]+r["tn"]+r["fn"]==r["n"] and "i_f1" in d["mean"] and "p_accuracy" in d["mean"]' "$T/dt.json" "$T/thr.json"
if "$PY" -c 'import sklearn' 2>/dev/null; then
    (cd "$ROOT/tests/ref" && "$PY" "$CREF" eval "$T/thr.json" "$T/s.msgpack") >"$T/cref.json"
    check "precision, recall, F1, accuracy = scikit-learn's (rows and mean, image and pixel)" "$PY" - "$T/dt.json" "$T/cref.json" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
rb = {r["name"]: r for r in b["rows"]}
bad = 0
keys = ["i_precision", "i_recall", "i_f1", "i_accuracy", "p_precision", "p_recall", "p_f1", "p_accuracy"]
for x, y in [(r, rb[r["name"]]) for r in a["rows"]] + [(a["mean"], b["mean"])]:
    for k in keys:
        if (x[k] is None) != (y[k] is None) or (x[k] is not None and abs(x[k] - y[k]) > 1e-12):
            print(k, x[k], y[k], file=sys.stderr); bad += 1
sys.exit(bad != 0)
PYEOF
    check "target-FPR rule by its definition (sklearn roc_curve), 1 %" sh -c "cd '$ROOT/tests/ref' && '$PY' '$CREF' check-fpr '$T/thr.json' '$T/val.msgpack' >/dev/null"
    check "target-FPR rule by its definition (sklearn roc_curve), 20 %" sh -c "cd '$ROOT/tests/ref' && '$PY' '$CREF' check-fpr '$T/thr20.json' '$T/val.msgpack' >/dev/null"
else
    skip "scikit-learn missing: precision/recall/F1/accuracy parity and the target-FPR check skipped"
fi

# records that carry their own decision / pred_mask give the same figures as the file
"$PY" - "$T/s.msgpack" "$T/thr.json" "$T/dec.msgpack" <<'PYEOF'
import sys, json, numpy as np, msgpack, msgpack_numpy
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), object_hook=msgpack_numpy.decode, raw=False))
t = json.load(open(sys.argv[2]))
with open(sys.argv[3], "wb") as f:
    f.write(msgpack.packb(objs[0], default=msgpack_numpy.encode))
    for r in objs[1:]:
        r["decision"] = int(r["score"] > t["image_threshold"])
        r["pred_mask"] = (r["amap"][0].astype(np.float64) > t["pixel_threshold"]).astype(np.uint8)
        r["ads_step"] = 7
        f.write(msgpack.packb(r, default=msgpack_numpy.encode))
PYEOF
glad-auroc -f csv "$T/dec.msgpack" >"$T/dec.csv" 2>/dev/null
check "records' decision and pred_mask = the threshold file's" cmp -s "$T/dt.csv" "$T/dec.csv"
check "records' decisions named under the table" sh -c "glad-auroc '$T/dec.msgpack' 2>/dev/null | grep -q \"^decisions: the records' 'decision' and 'pred_mask'\""

# --per-image
glad-auroc -t "$T/thr.json" --per-image "$T/per.csv" "$T/s.msgpack" >/dev/null 2>&1; rc=$?
check "--per-image: exit 0" [ $rc -eq 0 ]
check "--per-image: header" sh -c "head -1 '$T/per.csv' | grep -qx 'id,class,defect,label,score,decision,ads_step,score_global'"
check "--per-image: one line per record, stream order, decision = score > threshold" "$PY" - "$T/per.csv" "$T/s.msgpack" "$T/thr.json" <<'PYEOF'
import csv, json, sys, msgpack, msgpack_numpy
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
recs = list(msgpack.Unpacker(open(sys.argv[2], "rb"), object_hook=msgpack_numpy.decode, raw=False))[1:]
t = json.load(open(sys.argv[3]))
assert [r["id"] for r in rows] == [r["id"] for r in recs]
for a, b in zip(rows, recs):
    assert a["class"] == b["class"] and a["defect"] == b["defect"] and int(a["label"]) == b["label"]
    assert float(a["score"]) == b["score"] and int(a["decision"]) == int(b["score"] > t["image_threshold"]) and a["ads_step"] == "" and a["score_global"] == ""
PYEOF
check "--per-image: no temporary left" sh -c "! ls -A '$T' | grep -q 'per.csv.'"
glad-auroc --per-image "$T/per2.csv" "$T/dec.msgpack" >/dev/null 2>&1
check "--per-image: the records' decision and ads_step" sh -c "sed -n 2p '$T/per2.csv' | grep -q ',[01],7,$'"
glad-auroc --per-image "$T/per3.csv" "$T/s.msgpack" >/dev/null 2>&1
check "--per-image without decisions: empty column" sh -c "sed -n 2p '$T/per3.csv' | grep -q ',,$'"
status 1 "--per-image into a missing directory" glad-auroc --per-image "$T/no/such/dir/p.csv" "$T/s.msgpack"
status 1 "--per-image: bad data leaves no file" glad-auroc --per-image "$T/per4.csv" "$T/bad-nonexistent.msgpack"
check "--per-image: nothing written on failure" [ ! -e "$T/per4.csv" ]

# errors and usage
printf '{"glad_thresholds":1,"method":"target-fpr","target_fpr":0.01}\n' >"$T/bad.json"
glad-auroc -t "$T/bad.json" "$T/s.msgpack" >/dev/null 2>"$T/bad.err"; rc=$?
check "malformed threshold file: exit 1 naming the field" sh -c "[ $rc -eq 1 ] && grep -q \"bad.json: 'image_threshold' missing\" '$T/bad.err'"
status 1 "missing threshold file" glad-auroc -t "$T/nope.json" "$T/s.msgpack"
status 1 "not JSON" glad-auroc -t "$T/s.msgpack" "$T/s.msgpack"
status 2 "--max-f1 without --calibrate" glad-auroc --max-f1 "$T/s.msgpack"
status 2 "--target-fpr without --calibrate" glad-auroc --target-fpr 0.05 "$T/s.msgpack"
status 2 "--target-fpr 1" glad-auroc --calibrate "$T/x.json" --target-fpr 1 "$T/s.msgpack"
status 2 "--target-fpr with --max-f1" glad-auroc --calibrate "$T/x.json" --target-fpr 0.1 --max-f1 "$T/s.msgpack"
cp "$T/s.msgpack" "$T/keep.msgpack"
status 1 "--calibrate naming an input is refused" glad-auroc --calibrate "$T/keep.msgpack" "$T/keep.msgpack"
status 1 "--per-image naming an input is refused" glad-auroc --per-image "$T/keep.msgpack" "$T/keep.msgpack"
check "the input is intact" cmp -s "$T/s.msgpack" "$T/keep.msgpack"
status 2 "--calibrate with --threshold-file" glad-auroc --calibrate "$T/x.json" -t "$T/thr.json" "$T/s.msgpack"

# --- own records: no anomalies, errors naming the record
mk() {  # mk OUT CASE
"$PY" - "$1" "$2" <<'PYEOF'
import sys, numpy as np, msgpack, msgpack_numpy
out, case = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
def rec(i, label, cls="a", amap=None, mask=None, score=None, **kw):
    r = {"id": "%s/%02d" % (cls, i), "class": cls, "split": "test", "label": label,
         "defect": "good" if label == 0 else "hole", "score": float(rng.random() + label) if score is None else score}
    if amap is not None: r["amap"] = amap
    if mask is not None: r["mask"] = mask
    r.update(kw)
    return r
def pix(label, h=8, w=8):
    m = np.zeros((1, h, w), np.uint8)
    if label: m[0, 2:5, 2:5] = 1
    return (rng.random((1, h, w)) + m).astype(np.float32), m
recs = []
for i in range(6):
    a, m = pix(i % 2); recs.append(rec(i, i % 2, "a", a, m))
if case == "nolabel":
    del recs[3]["label"]
elif case == "nan":
    recs[4]["score"] = float("nan")
elif case == "shape":
    recs[2]["mask"] = np.zeros((1, 8, 7), np.uint8)
elif case == "nanmap":
    recs[1]["amap"][0, 1, 1] = np.nan
elif case == "noanom":
    for i in range(4):
        a, m = pix(0); recs.append(rec(10 + i, 0, "b", a, m))
elif case == "nomask":
    del recs[1]["mask"]
elif case == "noamap":
    del recs[5]["amap"]
elif case == "somedec":
    for r in recs[:4]: r["decision"] = 1
elif case == "baddec":
    for r in recs: r["decision"] = 1
    recs[2]["decision"] = 2
elif case == "quote":
    recs[1]["id"] = 'a/x,"y"'
    recs[1]["class"] = "a b,c"
with open(out, "wb") as f:
    f.write(msgpack.packb({"glad": 1, "history": []}))
    for r in recs: f.write(msgpack.packb(r, default=msgpack_numpy.encode))
PYEOF
}
err_case() {  # err_case CASE ID FIELD
    mk "$T/e.msgpack" "$1"
    glad-auroc "$T/e.msgpack" >/dev/null 2>"$T/e.err"; rc=$?
    if [ $rc -eq 1 ] && grep -q "record '$2'" "$T/e.err" && grep -q "'$3'" "$T/e.err"; then ok
    else fail "$1: exit $rc, want 1 naming '$2' and '$3': $(cat "$T/e.err")"; fi
}
err_case nolabel a/03 label
err_case nan a/04 score
err_case shape a/02 amap
err_case nanmap a/01 amap
err_case nomask a/01 mask
err_case noamap a/05 amap
err_case somedec a/04 decision
err_case baddec a/02 decision
mk "$T/q.msgpack" quote
glad-auroc --per-image "$T/q.csv" "$T/q.msgpack" >/dev/null 2>&1
check "--per-image: CSV quoting" "$PY" -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1], newline=""))); assert r[1]["id"]=="a/x,\"y\"" and r[1]["class"]=="a b,c" and len(r)==6' "$T/q.csv"
mk "$T/na2.msgpack" noanom
glad-auroc --calibrate "$T/naf1.json" --max-f1 "$T/na2.msgpack" >/dev/null 2>"$T/naf1.err"; rc=$?
check "--max-f1 with anomalies in one class only: fine" [ $rc -eq 0 ]
"$PY" - "$T/na2.msgpack" "$T/normals.msgpack" <<'PYEOF'
import sys, msgpack, msgpack_numpy
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), object_hook=msgpack_numpy.decode, raw=False))
with open(sys.argv[2], "wb") as f:
    for o in objs:
        if o.get("label", 0) == 0: f.write(msgpack.packb(o, default=msgpack_numpy.encode))
PYEOF
glad-auroc --calibrate "$T/nf.json" --max-f1 "$T/normals.msgpack" >/dev/null 2>"$T/nf.err"; rc=$?
check "--max-f1 on normal records only: exit 1, says why" sh -c "[ $rc -eq 1 ] && grep -q 'max F1 needs them' '$T/nf.err' && [ ! -e '$T/nf.json' ]"
glad-auroc --calibrate "$T/nn.json" "$T/normals.msgpack" >/dev/null 2>&1
check "target FPR on normal records only: fine" "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); assert t["counts"]["anomalous"]==0 and t["validation"]["image"]["tpr"] is None' "$T/nn.json"

mk "$T/na.msgpack" noanom
glad-auroc "$T/na.msgpack" >"$T/na.txt" 2>"$T/na.err"; rc=$?
check "class without anomalies: exit 0" [ $rc -eq 0 ]
check "class without anomalies: n/a" grep -q '^b .*n/a' "$T/na.txt"
check "class without anomalies: warning names it" grep -q "warning: b: no anomalous records" "$T/na.err"
glad-auroc -f json "$T/na.msgpack" 2>/dev/null >"$T/na.json"
check "class without anomalies: json null" "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=[x for x in d["rows"] if x["name"]=="b"][0]; assert r["i_auroc"] is None and r["aupro"] is None; assert d["mean"]["i_auroc"] is not None' "$T/na.json"
mk "$T/ok.msgpack" plain
check "a normal record without mask is fine" sh -c "glad-auroc '$T/ok.msgpack' >/dev/null 2>&1"
printf 'garbage' >"$T/bad.msgpack"
status 1 "corrupt stream" glad-auroc "$T/bad.msgpack"
: >"$T/empty.msgpack"
status 1 "no records" glad-auroc "$T/empty.msgpack"

done_tests
