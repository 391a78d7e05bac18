#!/bin/sh
# auroc.sh - benchmark: glad-auroc against the Python reference
# (tests/ref/metrics_ref.py: scikit-learn + the official GLAD/RD4AD PRO loop
# + an exact numpy AUPRO) on the same stream in the same run: 100 images of
# 256x256 maps with blob masks, 2 classes. Prints both times, the ratio and
# whether every number agrees (1e-9; PRO 1e-6). Target: >= 50x.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${GLAD_BUILD:-$ROOT/build}
PY=${GLAD_PYTHON:-/usr/bin/python3}
N=${AUROC_BENCH_N:-100}
SIZE=${AUROC_BENCH_SIZE:-256}
if ! "$PY" -c 'import msgpack_numpy, sklearn, skimage' 2>/dev/null; then
    echo "auroc bench: SKIP (needs python3-msgpack-numpy python3-sklearn python3-skimage: make bench-deps)"
    exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/glad-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$PY" "$ROOT/tests/ref/metrics_ref.py" make "$T/s.msgpack" --n "$N" --size "$SIZE" --classes 2 --seed 1 || exit 1
now() { date +%s.%N; }
t0=$(now)
"$BUILD/glad-auroc" -f json "$T/s.msgpack" >"$T/c.json" || exit 1
t1=$(now)
"$PY" "$ROOT/tests/ref/metrics_ref.py" eval "$T/s.msgpack" >"$T/ref.json" || exit 1
t2=$(now)
"$PY" - "$T/c.json" "$T/ref.json" "$t0" "$t1" "$t2" "$N" "$SIZE" <<'PYEOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
t0, t1, t2 = map(float, sys.argv[3:6])
rb = {r["name"]: r for r in b["rows"]}
worst = {}
agree = True
for r in a["rows"]:
    for k in ["i_auroc", "i_ap", "i_f1max", "p_auroc", "p_ap", "p_f1max", "aupro", "pro_compat"]:
        x, y = r[k], rb[r["name"]][k]
        d = abs(x - y) if x is not None and y is not None else (0 if x is y else 1)
        worst[k] = max(worst.get(k, 0), d)
        if d > (1e-6 if "pro" in k else 1e-9): agree = False
c, p = t1 - t0, t2 - t1
print("auroc: %s images %sx%s, 2 classes: glad-auroc %.3f s, Python reference %.2f s, ratio %.0fx (target >= 50x)"
      % (sys.argv[6], sys.argv[7], sys.argv[7], c, p, p / c))
print("auroc: all numbers agree: %s (max abs diff %s)" % ("yes" if agree else "NO",
      ", ".join("%s %.1e" % (k, v) for k, v in worst.items())))
sys.exit(0 if agree else 1)
PYEOF
