#!/bin/bash
# view.sh - glad-view panels (size, one per record) and the gallery order.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import msgpack_numpy' 2>/dev/null; then skip "python3-msgpack-numpy missing"; done_tests; exit; fi
$PY - "$T/s.msgpack" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "formats/python")
from gladstream import write
recs = []
for i, (label, score) in enumerate([(0, 0.9), (0, 0.1), (1, 0.2), (1, 0.8), (0, 0.5)]):
    recs.append({"id": "c/test/%s/%d" % ("bad" if label else "good", i), "label": label, "score": score,
                 "image": np.full((3, 20, 20), 30 * i, np.uint8), "recon": np.zeros((3, 20, 20), np.float32),
                 "amap": np.random.RandomState(i).rand(1, 20, 20).astype(np.float32), "mask": np.zeros((1, 20, 20), np.uint8)})
write(sys.argv[1], {"glad": 1, "history": []}, recs)
PYEOF
glad-view --out "$T/v" --cell 40 --worst 1 "$T/s.msgpack"
check "one panel per record" test "$(ls "$T/v"/*.png | wc -l)" = 5
check "no temporary files left" test "$(ls -A "$T/v" | wc -l)" = 6
# PNG width and height from the IHDR chunk: 4 cells of 40 + 5 gaps of 4 = 180 wide
check "panel size" sh -c "od -An -tu1 -j16 -N8 '$T/v/000000.png' | tr -s ' ' | grep -q '^ 0 0 0 180 0 0 0 66$'"
# worst false positive = the normal record scored 0.9 (record 0), worst false negative = anomalous 0.2 (record 2)
fp=$(sed -n '/id="fp"/,/id="fn"/p' "$T/v/index.html" | grep -o '[0-9]*\.png' | head -1)
fn=$(sed -n '/id="fn"/,/id="all"/p' "$T/v/index.html" | grep -o '[0-9]*\.png' | head -1)
check "worst false positive first" test "$fp" = 000000.png
check "worst false negative first" test "$fn" = 000002.png
check "all records sorted by score" test "$(sed -n '/id="all"/,$p' "$T/v/index.html" | grep -o '[0-9]*\.png' | tr '\n' ' ')" = "000000.png 000003.png 000004.png 000002.png 000001.png "
cat "$T/s.msgpack" | glad-view --out "$T/v2" --norm record > /dev/null
check "standard input" test "$(ls "$T/v2"/*.png | wc -l)" = 5 -a ! -e "$T/v2/.stdin.msgpack"
$PY -c 'import msgpack, msgpack_numpy as m, sys; sys.stdout.buffer.write(msgpack.packb({"glad": 1, "history": []}) + msgpack.packb({"id": "z/1", "label": 0}, default=m.encode))' > "$T/noimg.msgpack"
glad-view --out "$T/v3" "$T/noimg.msgpack" 2> "$T/err"; rc=$?
check "no image: exit 1 naming record and field" sh -c "test $rc = 1 && grep -q \"record 'z/1': 'image' missing\" '$T/err'"
status 2 "no --out" glad-view "$T/s.msgpack"
# decisions in the captions, the per-image list copied and linked
check "no decision: no decision in the captions" sh -c "! grep -q 'decision' '$T/v/index.html'"
printf '{"glad_thresholds":1,"method":"max-f1","image_threshold":0.3}\n' > "$T/thr.json"
glad-auroc -t "$T/thr.json" --per-image "$T/per.csv" "$T/s.msgpack" > /dev/null 2>&1
$PY - "$T/s.msgpack" "$T/d.msgpack" <<'PYEOF'
import sys
sys.path.insert(0, "formats/python")
from gladstream import read, write
h, recs = read(sys.argv[1])
for r in recs: r["decision"] = int(r["score"] > 0.3)
write(sys.argv[2], h, recs)
PYEOF
glad-view --out "$T/v4" --per-image "$T/per.csv" "$T/d.msgpack"; rc=$?
check "--per-image: exit 0" test $rc = 0
check "--per-image: copied beside the index" cmp -s "$T/per.csv" "$T/v4/per-image.csv"
check "--per-image: linked from the index" grep -q '<a href="per-image.csv">Per-image results (CSV)</a>' "$T/v4/index.html"
# record 0: normal scored 0.9 -> flagged (wrong); record 3: anomalous 0.8 -> flagged
check "captions show the decision" grep -q 'c/test/good/0<br>label 0, score 0.9, decision 1 (wrong)</figcaption>' "$T/v4/index.html"
check "a right decision is not marked" grep -q 'c/test/bad/3<br>label 1, score 0.8, decision 1</figcaption>' "$T/v4/index.html"
glad-view --out "$T/v5" --per-image "$T/nope.csv" "$T/s.msgpack" 2> "$T/err"; rc=$?
check "--per-image: a missing file is exit 1 naming it" sh -c "test $rc = 1 && grep -q 'nope.csv: cannot read' '$T/err'"
done_tests
