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
