#!/bin/bash
# info.sh - glad-info on valid, truncated, corrupt and missing input.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import msgpack_numpy' 2>/dev/null; then skip "python3-msgpack-numpy missing"; done_tests; exit; fi
$PY - "$T/s.msgpack" <<'PYEOF'
import sys, numpy as np, msgpack, msgpack_numpy as m
with open(sys.argv[1], "wb") as f:
    f.write(msgpack.packb({"glad": 1, "history": [{"tool": "t", "version": "1", "args": ["-x"]}]}))
    for k in range(5):
        f.write(msgpack.packb({"id": f"c/test/good/{k}", "class": "c", "split": "test", "label": k % 2,
                               "image": np.full((1, 8, 8), k, np.uint8), "score": float(k)}, default=m.encode))
PYEOF
check "valid stream" glad-info -q "$T/s.msgpack"
glad-info "$T/s.msgpack" > "$T/out"
check "one line per record" test "$(grep -c '^c/test/good/' "$T/out")" = 5
check "history printed" grep -q '^# history 1: t 1 -x' "$T/out"
check "tensor stats" grep -q 'image:|u1\[1,8,8\] 4/4/4' "$T/out"
check "json lines" test "$(glad-info --json "$T/s.msgpack" | wc -l)" = 6
check "stdin" sh -c "glad-info -s < '$T/s.msgpack' | grep -q '# 5 records'"
zstd -q "$T/s.msgpack" -o "$T/s.zst" && check "zstd input" sh -c "glad-info -s '$T/s.zst' | grep -q '# 5 records'"
size=$(stat -c %s "$T/s.msgpack")
bad=0
for cut in $(seq 1 13 $((size - 1))); do
    head -c "$cut" "$T/s.msgpack" > "$T/cut"
    glad-info -q "$T/cut" 2> "$T/err"; rc=$?
    if [ "$rc" != 1 ] || ! grep -q "byte [0-9]*, record [0-9]*" "$T/err"; then bad=1; echo "cut $cut: rc $rc $(cat "$T/err")" >&2; break; fi
done
check "every truncation: exit 1 with offset and record index" test $bad = 0
printf '\x81\xa2id\xc1' > "$T/corrupt"
status 1 "invalid msgpack byte" glad-info "$T/corrupt"
status 1 "missing file" glad-info "$T/does-not-exist"
status 2 "two files" glad-info a b
done_tests
